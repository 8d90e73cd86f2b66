// Type layouts: every struct, union, enum and typedef definition of every unit, by key.
import { compareTypeLayout, sameLayout } from './compare.js';
import { ATE_signed, ATE_signed_char, TAG } from './constants.js';
import { type DieTable, NO_VALUE } from './dietable.js';
import { type TypeKeys, isAggregate, layoutKind } from './keys.js';
import {
  type EnumeratorLayout,
  type LayoutConflict,
  type MemberLayout,
  type TypeDeclaration,
  type TypeLayout,
  type TypeLayouts,
} from './model.js';
import { type TypeNamer } from './typenames.js';

export function buildLayouts(t: DieTable, keys: TypeKeys, namer: TypeNamer): TypeLayouts {
  const types = new Map<string, TypeLayout>();
  const declarations = new Map<string, TypeDeclaration>();
  const conflicts: LayoutConflict[] = [];

  // Types can sit at unit level, inside functions and blocks (local types) and in type
  // units; every DIE is looked at once, in section order, so the first unit wins.
  for (let die = 0; die < t.size; die++) {
    const tag = t.tag[die]!;
    if (!isAggregate(tag) && (tag !== TAG.typedef || keys.isNamingTypedef(die))) continue;
    const key = keys.keyOf(die);
    if (key === undefined) continue;
    const unit = t.unitOf(die).name;
    if (isDeclaration(t, die)) {
      const prev = declarations.get(key);
      if (prev === undefined) {
        declarations.set(key, { key, kind: layoutKind(tag), name: t.name(die), units: [unit] });
      } else if (!prev.units.includes(unit)) {
        declarations.set(key, { ...prev, units: [...prev.units, unit] });
      }
      continue;
    }
    const prev = types.get(key);
    // Every unit repeats the definitions of the headers it includes: check those in place
    // before building anything.
    if (prev !== undefined && matches(t, die, prev, namer)) continue;
    const layout = layoutOf(t, die, key, namer);
    if (prev === undefined) {
      types.set(key, layout);
      continue;
    }
    if (sameLayout(prev, layout)) continue;
    const differences = compareTypeLayout(prev, layout).map((c) => c.message);
    if (differences.length > 0) conflicts.push({ key, units: [prev.unit, unit], differences });
  }
  return { types, declarations, conflicts };
}

/** DW_AT_declaration, or an aggregate with neither a size nor members (an incomplete type). */
export function isDeclaration(t: DieTable, die: number): boolean {
  if (t.isDeclaration(die)) return true;
  return isAggregate(t.tag[die]!) && t.value(t.byteSize, die) === undefined && t.firstChild[die]! < 0;
}

function layoutOf(t: DieTable, die: number, key: string, namer: TypeNamer): TypeLayout {
  const kind = layoutKind(t.tag[die]!);
  const name = t.name(die);
  const unit = t.unitOf(die).name;
  const type = t.type[die]!;
  if (kind === 'typedef') {
    return { key, kind, name, size: namer.sizeOf(type), members: [], enumerators: [], target: namer.name(type), unit };
  }
  const size = t.value(t.byteSize, die);
  if (kind === 'enum') {
    const target = type === -1 ? undefined : namer.name(type);
    return { key, kind, name, size, members: [], enumerators: enumerators(t, die), target, unit };
  }
  const members: MemberLayout[] = [];
  for (let m = t.firstChild[die]!; m >= 0; m = t.nextSibling[m]!) {
    if (t.tag[m] === TAG.member) members.push(memberOf(t, m, namer));
  }
  return { key, kind, name, size, members, enumerators: [], target: undefined, unit };
}

/** True if the DIE's definition is the layout already recorded (no allocation when it is). */
function matches(t: DieTable, die: number, layout: TypeLayout, namer: TypeNamer): boolean {
  const tag = t.tag[die]!;
  if (layoutKind(tag) !== layout.kind) return false;
  if (tag === TAG.typedef) return namer.name(t.type[die]!) === layout.target && namer.sizeOf(t.type[die]!) === layout.size;
  if (t.value(t.byteSize, die) !== layout.size) return false;
  if (tag === TAG.enumeration_type) {
    const values = enumerators(t, die);
    return sameLayout(layout, { ...layout, enumerators: values, target: t.type[die] === -1 ? undefined : namer.name(t.type[die]!) });
  }
  let i = 0;
  for (let m = t.firstChild[die]!; m >= 0; m = t.nextSibling[m]!) {
    if (t.tag[m] !== TAG.member) continue;
    const want = layout.members[i++];
    if (want === undefined) return false;
    if (t.bitSize[m] !== NO_VALUE) {
      const got = memberOf(t, m, namer);
      if (got.offset !== want.offset || got.bitOffset !== want.bitOffset || got.bitSize !== want.bitSize) return false;
    } else if (want.bitSize !== undefined || (t.value(t.memberLocation, m) ?? (t.memberLocation[m] === NO_VALUE ? 0 : Number.NaN)) !== want.offset) {
      return false;
    }
    if ((t.name(m) ?? '') !== want.name || namer.name(t.type[m]!) !== want.type) return false;
  }
  return i === layout.members.length;
}

function memberOf(t: DieTable, m: number, namer: TypeNamer): MemberLayout {
  const name = t.name(m) ?? '';
  const type = namer.name(t.type[m]!);
  const rawLocation = t.memberLocation[m]!;
  // Union members and (for some producers) a first member at 0 omit the location.
  const location = t.value(t.memberLocation, m) ?? (rawLocation === NO_VALUE ? 0 : Number.NaN);
  const bitSize = t.value(t.bitSize, m);
  if (bitSize === undefined) return { name, offset: location, type };
  const dataBitOffset = t.value(t.dataBitOffset, m);
  const bitOffset = t.value(t.bitOffset, m);
  let bit: number;
  if (dataBitOffset !== undefined) {
    // DWARF 4+: counted from the start of the containing type (DWARF 5 §5.7.6).
    bit = dataBitOffset + (rawLocation === NO_VALUE ? 0 : location * 8);
  } else if (bitOffset !== undefined) {
    // DWARF 2/3 style (gcc -gdwarf-4 still emits it): DW_AT_bit_offset counts from the
    // most significant bit of a storage unit of DW_AT_byte_size bytes at the member
    // location. On a little-endian machine the low bit is therefore at
    // storage_bits - bit_offset - bit_size.
    const storage = t.value(t.byteSize, m) ?? namer.sizeOf(t.type[m]!) ?? 0;
    bit = location * 8 + storage * 8 - bitOffset - bitSize;
  } else {
    bit = location * 8;
  }
  const offset = Math.floor(bit / 8);
  return { name, offset, bitOffset: bit - offset * 8, bitSize, type };
}

function enumerators(t: DieTable, die: number): EnumeratorLayout[] {
  const signed = enumIsSigned(t, die);
  const out: EnumeratorLayout[] = [];
  for (let e = t.firstChild[die]!; e >= 0; e = t.nextSibling[e]!) {
    const c = t.constValue.get(e);
    if (t.tag[e] !== TAG.enumerator || c === undefined) continue;
    // data1..data8 carry no sign; the enum's underlying type decides (DWARF 5 §7.5.5).
    const value = signed && c.ambiguousSize > 0 ? BigInt.asIntN(c.ambiguousSize * 8, c.value) : c.value;
    out.push({ name: t.name(e) ?? '', value });
  }
  return out;
}

/** The encoding of the enum (gcc puts DW_AT_encoding on it) or of its underlying base type. */
function enumIsSigned(t: DieTable, die: number): boolean {
  let d = die;
  let encoding = t.encoding.get(d);
  for (let n = 0; encoding === undefined && d >= 0 && n < 16; n++) {
    d = t.type[d]!;
    encoding = d >= 0 ? t.encoding.get(d) : undefined;
  }
  return encoding === ATE_signed || encoding === ATE_signed_char;
}
