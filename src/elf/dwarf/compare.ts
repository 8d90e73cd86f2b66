// Comparing the layouts of the pre and post objects.
import {
  type ChangeKind,
  type LayoutChange,
  type MemberLayout,
  type TypeLayout,
  type TypeLayouts,
} from './model.js';

/**
 * What changed between the pre and post layouts, for the given keys (normally the types
 * and enums the changed functions use) or for every type defined in pre. Types only in
 * post are new and cannot affect existing data, so they are not reported.
 */
export function compareLayouts(pre: TypeLayouts, post: TypeLayouts, typeKeys?: Iterable<string>): LayoutChange[] {
  const keys = typeKeys === undefined ? [...pre.types.keys()] : [...new Set(typeKeys)];
  keys.sort();
  const sameBytes = (before: string, after: string): boolean => before === after || layoutSpelling(before, pre) === layoutSpelling(after, post);
  const changes: LayoutChange[] = [];
  for (const key of keys) {
    const a = pre.types.get(key);
    const b = post.types.get(key);
    if (a !== undefined && b !== undefined) {
      changes.push(...compareTypeLayout(a, b, sameBytes));
    } else if (a !== undefined) {
      if (post.declarations.has(key)) {
        changes.push(change(key, 'definition lost', true, `${key}: defined before, only declared after; its layout cannot be checked`));
      } else {
        changes.push(change(key, 'type removed', false, `${key}: type removed`));
      }
    } else if (b !== undefined && pre.declarations.has(key)) {
      changes.push(
        change(key, 'definition gained', false, `${key}: only declared before, defined after; its layout cannot be checked against the old object`),
      );
    }
  }
  return changes;
}

/** True if two definitions have the same layout (a fast check before compareTypeLayout). */
export function sameLayout(a: TypeLayout, b: TypeLayout): boolean {
  if (a.kind !== b.kind || a.size !== b.size || a.target !== b.target) return false;
  if (a.members.length !== b.members.length || a.enumerators.length !== b.enumerators.length) return false;
  for (let i = 0; i < a.members.length; i++) {
    const x = a.members[i]!;
    const y = b.members[i]!;
    if (x.name !== y.name || !Object.is(x.offset, y.offset) || x.type !== y.type) return false;
    if (x.bitOffset !== y.bitOffset || x.bitSize !== y.bitSize) return false;
  }
  for (let i = 0; i < a.enumerators.length; i++) {
    const x = a.enumerators[i]!;
    const y = b.enumerators[i]!;
    if (x.name !== y.name || x.value !== y.value) return false;
  }
  return true;
}

/**
 * Whether a type spelled `before` in the old object and `after` in the new one lays out the
 * same bytes. By default only the same spelling does; compareLayouts also looks through the
 * typedefs of each side (`u8` and `unsigned char`).
 */
export type SameBytes = (before: string, after: string) => boolean;

/**
 * A type's spelling with every typedef of `layouts` replaced by what it names and the
 * qualifiers that do not change a layout dropped: `const u8 *` and `unsigned char *` both
 * become `unsigned char *`. Why: upstream fixes re-spell members (6pack.c turned `unsigned
 * char` into `u8`), which moves no byte, and refusing them as layout changes refuses a fix
 * for nothing. Struct, union and enum names stay, since their own layouts are compared under
 * their own keys.
 */
export function layoutSpelling(type: string, layouts: TypeLayouts): string {
  let spelling = type;
  for (let depth = 0; depth < 16; depth++) {
    let expanded = false;
    spelling = spelling.replace(/\b(struct |union |enum )?([A-Za-z_]\w*)/g, (whole: string, tagWord: string | undefined, name: string) => {
      if (tagWord !== undefined) return whole;
      const typedef = layouts.types.get(name);
      if (typedef?.kind !== 'typedef' || typedef.target === undefined) return whole;
      expanded = true;
      return typedef.target;
    });
    if (!expanded) break;
  }
  return spelling
    .replace(/\b(const|volatile|restrict)\b/g, '')
    .replace(/\s+/g, ' ')
    .replace(/ ?([*[\](),]) ?/g, '$1')
    .trim();
}

/** The differences between two definitions of one type, as changes from a to b. */
export function compareTypeLayout(a: TypeLayout, b: TypeLayout, sameBytes: SameBytes = (x, y) => x === y): LayoutChange[] {
  const key = a.key;
  if (a.kind !== b.kind) {
    return [change(key, 'kind changed', true, `${key}: kind ${a.kind} -> ${b.kind}`, { before: a.kind, after: b.kind })];
  }
  const out: LayoutChange[] = [];
  if (a.size !== b.size) {
    const before = String(a.size ?? 'unknown');
    const after = String(b.size ?? 'unknown');
    out.push(change(key, 'size changed', true, `${key}: size ${before} -> ${after}`, { before, after }));
  }
  if (a.target !== b.target && (a.target === undefined || b.target === undefined || !sameBytes(a.target, b.target))) {
    const before = a.target ?? 'none';
    const after = b.target ?? 'none';
    const what = a.kind === 'enum' ? 'underlying type' : 'type';
    out.push(change(key, 'target changed', true, `${key}: ${what} ${before} -> ${after}`, { before, after }));
  }
  compareMembers(key, a.members, b.members, sameBytes, out);
  compareEnumerators(key, a, b, out);
  return out;
}

/** Members match by name; unnamed members by their type, which is a key unique within the unit. */
function memberIds(members: readonly MemberLayout[]): Map<string, MemberLayout> {
  const byId = new Map<string, MemberLayout>();
  for (const m of members) {
    const base = m.name === '' ? `<${m.type}>` : m.name;
    let id = base;
    for (let n = 2; byId.has(id); n++) id = `${base}#${n}`;
    byId.set(id, m);
  }
  return byId;
}

function position(m: MemberLayout): string {
  const offset = Number.isNaN(m.offset) ? 'unknown' : `0x${m.offset.toString(16)}`;
  return m.bitSize === undefined ? offset : `${offset} bit ${m.bitOffset ?? 0} width ${m.bitSize}`;
}

function compareMembers(key: string, a: readonly MemberLayout[], b: readonly MemberLayout[], sameBytes: SameBytes, out: LayoutChange[]): void {
  const before = memberIds(a);
  const after = memberIds(b);
  const removed: [string, MemberLayout][] = [];
  for (const [id, ma] of before) {
    const mb = after.get(id);
    if (mb === undefined) {
      removed.push([id, ma]);
      continue;
    }
    const pa = position(ma);
    const pb = position(mb);
    if (pa !== pb) {
      out.push(change(key, 'member moved', true, `${key}: member '${id}' offset ${pa} -> ${pb}`, { member: id, before: pa, after: pb }));
    }
    if (ma.type !== mb.type && !sameBytes(ma.type, mb.type)) {
      out.push(
        change(key, 'member type changed', true, `${key}: member '${id}' type ${ma.type} -> ${mb.type}`, {
          member: id,
          before: ma.type,
          after: mb.type,
        }),
      );
    }
  }
  const added = [...after].filter(([id]) => !before.has(id));
  // A member removed and another added at the same place with the same bytes is a rename
  // (sch_taprio's close_time -> end_time): the new code reads what the old code wrote.
  for (const [id, ma] of removed) {
    const at = added.findIndex(([, mb]) => position(mb) === position(ma) && sameBytes(ma.type, mb.type));
    if (at < 0) {
      out.push(change(key, 'member removed', true, `${key}: member '${id}' removed (was at offset ${position(ma)})`, { member: id, before: position(ma) }));
      continue;
    }
    const [newId] = added.splice(at, 1)[0]!;
    out.push(
      change(key, 'member renamed', false, `${key}: member '${id}' renamed '${newId}' in place (offset ${position(ma)}, ${ma.type})`, {
        member: id,
        before: id,
        after: newId,
      }),
    );
  }
  for (const [id, mb] of added) {
    out.push(change(key, 'member added', true, `${key}: member '${id}' added at offset ${position(mb)}`, { member: id, after: position(mb) }));
  }
}

function compareEnumerators(key: string, a: TypeLayout, b: TypeLayout, out: LayoutChange[]): void {
  if (a.enumerators.length === 0 && b.enumerators.length === 0) return;
  const before = new Map(a.enumerators.map((e) => [e.name, e.value]));
  const after = new Map(b.enumerators.map((e) => [e.name, e.value]));
  const oldValues = new Set(a.enumerators.map((e) => e.value));
  let existingMoved = false;
  for (const [name, va] of before) {
    const vb = after.get(name);
    if (vb === undefined) {
      existingMoved = true;
      out.push(change(key, 'enumerator removed', true, `${key}: enumerator ${name} removed`, { enumerator: name, before: String(va) }));
    } else if (va !== vb) {
      existingMoved = true;
      out.push(
        change(key, 'enumerator value changed', true, `${key}: enumerator ${name} value ${va} -> ${vb}`, {
          enumerator: name,
          before: String(va),
          after: String(vb),
        }),
      );
    }
  }
  for (const [name, vb] of after) {
    if (before.has(name)) continue;
    // Harmless only if nothing else in the enum moved and the value meant nothing before
    // (an enumerator appended at the end); the caller decides what to do with it.
    const shifts = existingMoved || oldValues.has(vb);
    out.push(change(key, 'enumerator added', shifts, `${key}: enumerator ${name} added with value ${vb}`, { enumerator: name, after: String(vb) }));
  }
}

function change(
  key: string,
  kind: ChangeKind,
  shiftsExisting: boolean,
  message: string,
  detail: { member?: string; enumerator?: string; before?: string; after?: string } = {},
): LayoutChange {
  return { key, change: kind, ...detail, shiftsExisting, message };
}
