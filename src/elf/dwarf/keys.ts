// Stable keys for named and anonymous types.
//
// A key must name the same type in the pre and post objects, which are different
// compilations, so it cannot contain DIE offsets. Named types use their C spelling
// (`struct device`). Anonymous ones are named by the context that reaches them, in this
// order of preference:
//   1. the typedef that names them:               `anon_t`
//   2. the member whose type they are:            `union page.<anon1>`, `struct foo.bar`
//      (<anonN> is the Nth unnamed member; the path grows for nesting)
//   3. the variable or parameter whose type they are: `struct <var state>`
//   4. their own contents: the first enumerator, or the first member names:
//      `enum {CPUHP_A, ...}`, `struct {a, b, c, ...}`
// Types declared inside a function are prefixed with the function's name: `fn::struct x`.
// Keys are unique within a unit; a clash (two local types, say) gets a `#2` suffix.
import { TAG } from './constants.js';
import { type DieTable } from './dietable.js';
import { type LayoutKind } from './model.js';

export function isAggregate(tag: number): boolean {
  return tag === TAG.structure_type || tag === TAG.union_type || tag === TAG.class_type || tag === TAG.enumeration_type;
}

export function layoutKind(tag: number): LayoutKind {
  switch (tag) {
    case TAG.union_type:
      return 'union';
    case TAG.class_type:
      return 'class';
    case TAG.enumeration_type:
      return 'enum';
    case TAG.typedef:
      return 'typedef';
    default:
      return 'struct';
  }
}

/** Qualifiers, pointers and arrays: what separates a member or variable from an anonymous type it uses. */
function isWrapper(tag: number): boolean {
  return (
    tag === TAG.pointer_type ||
    tag === TAG.const_type ||
    tag === TAG.volatile_type ||
    tag === TAG.restrict_type ||
    tag === TAG.atomic_type ||
    tag === TAG.array_type ||
    tag === TAG.reference_type ||
    tag === TAG.rvalue_reference_type
  );
}

/** Follow DW_AT_abstract_origin, then DW_AT_specification, from a concrete DIE to the one with the attributes. */
export function originOf(t: DieTable, i: number): number {
  const o = t.abstractOrigin[i]!;
  return o >= 0 ? o : t.specification[i]!;
}

/** The name of a subprogram, following abstract origins and specifications. */
export function functionName(t: DieTable, i: number): string | undefined {
  for (let d = i, n = 0; d >= 0 && n < 16; d = originOf(t, d), n++) {
    const name = t.name(d);
    if (name !== undefined) return name;
  }
  return undefined;
}

export interface TypeKeys {
  /** Key of a struct, union, enum or typedef DIE (including declarations). */
  keyOf(die: number): string | undefined;
  /** True for a typedef that only names an anonymous type (that type carries the typedef's name as its key). */
  isNamingTypedef(die: number): boolean;
}

interface Entry {
  readonly key: string;
  /** The name nested anonymous types extend: `page`, `page.<anon1>`, `anon_t`. */
  readonly path: string;
  readonly scope: string;
}

export function assignTypeKeys(t: DieTable): TypeKeys {
  const entries = new Map<number, Entry>();
  const naming = new Set<number>();
  // DIEs are in section order, so each unit's DIEs are a contiguous run of indices.
  let start = 0;
  for (let u = 0; u < t.units.length; u++) {
    let end = start;
    while (end < t.size && t.unit[end] === u) end++;
    assignUnit(t, start, end, entries, naming);
    start = end;
  }
  // Flatten to a column: keyOf is asked for every DIE by layouts and type use.
  const column: (string | undefined)[] = new Array<string | undefined>(t.size).fill(undefined);
  for (const [die, entry] of entries) column[die] = entry.key;
  // Stubs standing for a type in a type unit (-fdebug-types-section) carry no name; they
  // take the key of the type they stand for.
  for (const stub of t.typeSig.keys()) {
    const target = t.type[stub]!;
    if (isAggregate(t.tag[stub]!) && target >= 0) column[stub] = column[target];
  }
  return {
    keyOf: (die) => column[die],
    isNamingTypedef: (die) => naming.has(die),
  };
}

function assignUnit(t: DieTable, start: number, end: number, entries: Map<number, Entry>, naming: Set<number>): void {
  const taken = new Set<string>();
  const aggregates: number[] = [];
  const typedefs: number[] = [];
  const objects: number[] = [];
  for (let i = start; i < end; i++) {
    const tag = t.tag[i]!;
    if (isAggregate(tag)) aggregates.push(i);
    else if (tag === TAG.typedef) typedefs.push(i);
    else if (tag === TAG.variable || tag === TAG.formal_parameter) objects.push(i);
  }

  /** `fn::` for DIEs inside a function (at any block depth), '' at file scope. */
  const scopeOf = (i: number): string => {
    for (let p = t.parent[i]!; p >= 0; p = t.parent[p]!) {
      if (t.tag[p] === TAG.subprogram) return `${functionName(t, p) ?? '<function>'}::`;
    }
    return '';
  };
  const set = (die: number, key: string, path: string, scope: string): void => {
    let unique = key;
    for (let n = 2; taken.has(unique); n++) unique = `${key}#${n}`;
    taken.add(unique);
    // A clashing key's suffix goes into the path too, so nested keys stay distinct.
    entries.set(die, { key: unique, path: path + unique.slice(key.length), scope });
  };
  const kw = (die: number): string => layoutKind(t.tag[die]!);
  const anonymousTarget = (ref: number, throughWrappers: boolean): number => {
    let d = ref;
    for (let n = 0; d >= 0 && n < 32; n++) {
      const tag = t.tag[d]!;
      // A type unit stub (DW_AT_signature) is named by what it stands for, below.
      if (isAggregate(tag)) return Number.isNaN(t.nameRef[d]!) && !entries.has(d) && !t.typeSig.has(d) ? d : -1;
      if (!throughWrappers || !isWrapper(tag)) return -1;
      d = t.type[d]!;
    }
    return -1;
  };
  // Key the anonymous types of a keyed aggregate's members, recursively.
  const keyMembers = (root: number): void => {
    const work = [root];
    for (let w = 0; w < work.length; w++) {
      const parent = work[w]!;
      const pe = entries.get(parent)!;
      let unnamed = 0;
      for (let m = t.firstChild[parent]!; m >= 0; m = t.nextSibling[m]!) {
        if (t.tag[m] !== TAG.member) continue;
        const unnamedMember = Number.isNaN(t.nameRef[m]!);
        if (unnamedMember) unnamed++;
        const anon = anonymousTarget(t.type[m]!, true);
        if (anon < 0) continue;
        const name = unnamedMember ? undefined : t.name(m);
        const path = `${pe.path}.${name ?? `<anon${unnamed}>`}`;
        set(anon, `${pe.scope}${kw(anon)} ${path}`, path, pe.scope);
        work.push(anon);
      }
    }
  };

  // 1. Named aggregates.
  for (const die of aggregates) {
    const name = t.name(die);
    if (name === undefined) continue;
    const scope = scopeOf(die);
    set(die, `${scope}${kw(die)} ${name}`, name, scope);
  }
  // 2. Typedefs: the ones that name an anonymous aggregate give it their name.
  for (const td of typedefs) {
    const scope = scopeOf(td);
    const name = t.name(td) ?? '<unnamed typedef>';
    const anon = anonymousTarget(t.type[td]!, false);
    if (anon >= 0) {
      set(anon, `${scope}${name}`, name, scope);
      naming.add(td);
    } else {
      set(td, `${scope}${name}`, name, scope);
    }
  }
  // 3. Members, outward-in: a keyed aggregate keys the anonymous types of its members.
  for (const die of aggregates.filter((d) => entries.has(d))) keyMembers(die);
  // 4. Variables and parameters.
  for (const v of objects) {
    const anon = anonymousTarget(t.type[v]!, true);
    if (anon < 0) continue;
    const name = t.name(v);
    if (name === undefined) continue;
    const scope = scopeOf(v);
    const path = `<var ${name}>`;
    set(anon, `${scope}${kw(anon)} ${path}`, path, scope);
    keyMembers(anon);
  }
  // 5. Whatever is left, by its contents.
  for (const die of aggregates) {
    if (entries.has(die) || t.typeSig.has(die)) continue;
    const names: string[] = [];
    for (let c = t.firstChild[die]!; c >= 0; c = t.nextSibling[c]!) {
      const n = t.name(c);
      if (n !== undefined) names.push(n);
    }
    const shown = t.tag[die] === TAG.enumeration_type ? 1 : 3;
    const path = `{${names.slice(0, shown).join(', ')}${names.length > shown ? ', ...' : ''}}`;
    const scope = scopeOf(die);
    set(die, `${scope}${kw(die)} ${path}`, path, scope);
    keyMembers(die);
  }
}
