// Unit headers of .debug_info (DWARF 5 §7.5.1; DWARF 2-4 §7.5.1.1 of their standards).
// A unit is a compile unit, a partial unit or (DWARF 5, -fdebug-types-section) a type unit.
import { UT } from './constants.js';
import { Cursor } from './reader.js';

export interface UnitHeader {
  /** Section offset of the unit header. */
  readonly offset: number;
  /** Section offset just past the unit. */
  readonly end: number;
  readonly version: number;
  /** DW_UT_*; DWARF 2-4 units are compile units (their type units live in .debug_types). */
  readonly unitType: number;
  readonly addressSize: number;
  readonly offsetSize: number;
  readonly abbrevOffset: number;
  /** Section offset of the unit's first DIE. */
  readonly firstDie: number;
  /** Type units: the 8-byte signature that DW_FORM_ref_sig8 uses, and the type DIE's section offset. */
  readonly typeSignature?: bigint;
  readonly typeDie?: number;
}

/** Read the header of the unit at cur.pos and leave cur at its first DIE. */
export function readUnitHeader(cur: Cursor): UnitHeader {
  const offset = cur.pos;
  let length = cur.u32();
  let offsetSize = 4;
  if (length === 0xffffffff) {
    length = cur.u64();
    offsetSize = 8;
  } else if (length >= 0xfffffff0) {
    cur.fail(`reserved unit length 0x${length.toString(16)}`, offset);
  }
  const end = cur.pos + length;
  if (end > cur.length) cur.fail(`unit length ${length} runs past the end of the section`, offset);
  const version = cur.u16();
  if (version < 2 || version > 5) cur.fail(`unsupported DWARF version ${version}`, offset);
  let unitType: number = UT.compile;
  let addressSize: number;
  let abbrevOffset: number;
  let typeSignature: bigint | undefined;
  let typeDie: number | undefined;
  if (version === 5) {
    unitType = cur.u8();
    addressSize = cur.u8();
    abbrevOffset = cur.offset(offsetSize);
    switch (unitType) {
      case UT.compile:
      case UT.partial:
        break;
      case UT.type:
      case UT.split_type:
        typeSignature = cur.u64Big();
        typeDie = offset + cur.offset(offsetSize);
        break;
      case UT.skeleton:
      case UT.split_compile:
        cur.skip(8); // dwo_id
        break;
      default:
        cur.fail(`unknown unit type 0x${unitType.toString(16)}`, offset + (offsetSize === 8 ? 14 : 6));
    }
  } else {
    abbrevOffset = cur.offset(offsetSize);
    addressSize = cur.u8();
  }
  if (addressSize !== 4 && addressSize !== 8) cur.fail(`unsupported address size ${addressSize}`, offset);
  if (cur.pos > end) cur.fail('unit header is longer than the unit', offset);
  const header: UnitHeader = { offset, end, version, unitType, addressSize, offsetSize, abbrevOffset, firstDie: cur.pos };
  return typeSignature === undefined ? header : { ...header, typeSignature, typeDie };
}
