// The DIEs this package keeps, as a table of typed-array columns (see DieTable).
import { type StringRef, type StringTables } from './strings.js';
import { type UnitHeader } from './units.js';

export interface Unit {
  readonly header: UnitHeader;
  /** Index of the unit DIE (DW_TAG_compile_unit, partial_unit or type_unit), or -1. */
  root: number;
  /** DW_AT_name of the unit DIE (the source file), or a description for type units. */
  name: string;
}

/** A reference that is present but leads to no DIE we kept (another file, a call site, a missing type unit). */
export const UNRESOLVED = -2;

/** An int32 attribute that is absent. */
export const NO_VALUE = -0x80000000;
/** An int32 attribute that is present but not a constant (a location expression). */
export const NOT_CONSTANT = -0x7fffffff;

/** Bits of DieTable.flags. */
export const F_DECLARATION = 1;
export const F_HAS_CODE = 2;
export const F_PROTOTYPED = 4;
export const F_DYNAMIC_BOUND = 8;

type Column = Int32Array | Uint32Array | Uint16Array | Uint8Array | Float64Array;

function grow<T extends Column>(a: T, capacity: number, fill: number): T {
  const b = new (a.constructor as new (n: number) => T)(capacity);
  b.set(a);
  if (fill !== 0) b.fill(fill, a.length);
  return b;
}

/**
 * The DIEs of interest, one row per DIE, in columns. A kernel object has hundreds of
 * thousands of DIEs; typed-array columns keep them out of the garbage collector's way,
 * which is most of the cost of an object per DIE. DIEs are numbered in section order,
 * so a section offset maps to its index by binary search.
 *
 * References (type, abstractOrigin, specification) hold DIE indices once reading is
 * done, -1 when absent (for DW_AT_type: void), or UNRESOLVED.
 */
export class DieTable {
  size = 0;
  readonly units: Unit[] = [];
  offset: Uint32Array;
  tag: Uint16Array;
  unit: Uint32Array;
  parent: Int32Array;
  firstChild: Int32Array;
  nextSibling: Int32Array;
  nameRef: Float64Array;
  type: Int32Array;
  abstractOrigin: Int32Array;
  specification: Int32Array;
  flags: Uint8Array;
  byteSize: Int32Array;
  bitSize: Int32Array;
  /** DW_AT_bit_offset (DWARF 2-4): counted from the most significant bit of the storage unit. */
  bitOffset: Int32Array;
  /** DW_AT_data_bit_offset (DWARF 4-5): counted from the start of the containing type. */
  dataBitOffset: Int32Array;
  /** DW_AT_data_member_location when constant, NOT_CONSTANT for an expression we cannot fold. */
  memberLocation: Int32Array;
  /** Sparse attributes: few DIEs have them. */
  readonly encoding = new Map<number, number>();
  readonly upperBound = new Map<number, number>();
  readonly lowerBound = new Map<number, number>();
  readonly elementCount = new Map<number, number>();
  readonly linkageNameRef = new Map<number, StringRef>();
  /** Enumerator values; with the byte size of a data1..data8 form, whose sign the enum's type decides (0: the form fixed it). */
  readonly constValue = new Map<number, { value: bigint; ambiguousSize: number }>();
  /** DW_FORM_ref_sig8 type references and DW_AT_signature values, resolved after all units are read. */
  readonly typeSig = new Map<number, bigint>();

  constructor(
    capacity: number,
    private readonly strings: StringTables,
  ) {
    const n = Math.max(capacity, 64);
    this.offset = new Uint32Array(n);
    this.tag = new Uint16Array(n);
    this.unit = new Uint32Array(n);
    this.parent = new Int32Array(n);
    this.firstChild = new Int32Array(n).fill(-1);
    this.nextSibling = new Int32Array(n).fill(-1);
    this.nameRef = new Float64Array(n).fill(Number.NaN);
    this.type = new Int32Array(n).fill(-1);
    this.abstractOrigin = new Int32Array(n).fill(-1);
    this.specification = new Int32Array(n).fill(-1);
    this.flags = new Uint8Array(n);
    this.byteSize = new Int32Array(n).fill(NO_VALUE);
    this.bitSize = new Int32Array(n).fill(NO_VALUE);
    this.bitOffset = new Int32Array(n).fill(NO_VALUE);
    this.dataBitOffset = new Int32Array(n).fill(NO_VALUE);
    this.memberLocation = new Int32Array(n).fill(NO_VALUE);
  }

  /** Append a row and return its index. */
  add(offset: number, tag: number, unit: number, parent: number): number {
    if (this.size === this.offset.length) this.grow();
    const i = this.size++;
    this.offset[i] = offset;
    this.tag[i] = tag;
    this.unit[i] = unit;
    this.parent[i] = parent;
    return i;
  }

  private grow(): void {
    const n = Math.ceil(this.offset.length * 1.75);
    this.offset = grow(this.offset, n, 0);
    this.tag = grow(this.tag, n, 0);
    this.unit = grow(this.unit, n, 0);
    this.parent = grow(this.parent, n, 0);
    this.firstChild = grow(this.firstChild, n, -1);
    this.nextSibling = grow(this.nextSibling, n, -1);
    this.nameRef = grow(this.nameRef, n, Number.NaN);
    this.type = grow(this.type, n, -1);
    this.abstractOrigin = grow(this.abstractOrigin, n, -1);
    this.specification = grow(this.specification, n, -1);
    this.flags = grow(this.flags, n, 0);
    this.byteSize = grow(this.byteSize, n, NO_VALUE);
    this.bitSize = grow(this.bitSize, n, NO_VALUE);
    this.bitOffset = grow(this.bitOffset, n, NO_VALUE);
    this.dataBitOffset = grow(this.dataBitOffset, n, NO_VALUE);
    this.memberLocation = grow(this.memberLocation, n, NO_VALUE);
  }

  name(i: number): string | undefined {
    return this.strings.decode(this.nameRef[i]!);
  }

  linkageName(i: number): string | undefined {
    const ref = this.linkageNameRef.get(i);
    return ref === undefined ? undefined : this.strings.decode(ref);
  }

  isDeclaration(i: number): boolean {
    return (this.flags[i]! & F_DECLARATION) !== 0;
  }

  hasCode(i: number): boolean {
    return (this.flags[i]! & F_HAS_CODE) !== 0;
  }

  isPrototyped(i: number): boolean {
    return (this.flags[i]! & F_PROTOTYPED) !== 0;
  }

  hasDynamicBound(i: number): boolean {
    return (this.flags[i]! & F_DYNAMIC_BOUND) !== 0;
  }

  /** An int32 column value, or undefined when absent or not a constant. */
  value(column: Int32Array, i: number): number | undefined {
    const v = column[i]!;
    return v === NO_VALUE || v === NOT_CONSTANT ? undefined : v;
  }

  /** The children of a DIE, in order. */
  children(i: number): number[] {
    const out: number[] = [];
    for (let c = this.firstChild[i]!; c >= 0; c = this.nextSibling[c]!) out.push(c);
    return out;
  }

  /** Index of the DIE at a section offset, or -1 if no kept DIE starts there. */
  indexOf(offset: number): number {
    let lo = 0;
    let hi = this.size - 1;
    const offsets = this.offset;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = offsets[mid]!;
      if (v === offset) return mid;
      if (v < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** The unit a DIE belongs to. */
  unitOf(i: number): Unit {
    return this.units[this.unit[i]!]!;
  }

  setFlag(i: number, flag: number, on: boolean): void {
    if (on) this.flags[i]! |= flag;
    else this.flags[i]! &= ~flag;
  }
}

