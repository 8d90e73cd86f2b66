// Attribute forms (DWARF 5 §7.5.6): how many bytes a value occupies, and how to read the
// few classes of value this reader keeps (constants, references, strings, flags).
// Everything else is skipped by size, which is what keeps a multi-megabyte .debug_info fast.
import { FORM } from './constants.js';
import { Cursor } from './reader.js';

/** What a form needs to know about its unit. */
export interface FormContext {
  readonly version: number;
  readonly addressSize: number;
  /** 4 for 32-bit DWARF, 8 for 64-bit DWARF. */
  readonly offsetSize: number;
  /** Section offset of the unit header: unit-relative references are relative to it. */
  readonly unitOffset: number;
  /** DW_AT_str_offsets_base of the unit, for the strx forms. */
  strOffsetsBase: number | undefined;
}

/** Size in bytes of a form whose size does not depend on its value, or -1. */
export function fixedFormSize(form: number, ctx: FormContext): number {
  switch (form) {
    case FORM.flag_present:
    case FORM.implicit_const:
      return 0;
    case FORM.data1:
    case FORM.ref1:
    case FORM.flag:
    case FORM.strx1:
    case FORM.addrx1:
      return 1;
    case FORM.data2:
    case FORM.ref2:
    case FORM.strx2:
    case FORM.addrx2:
      return 2;
    case FORM.strx3:
    case FORM.addrx3:
      return 3;
    case FORM.data4:
    case FORM.ref4:
    case FORM.ref_sup4:
    case FORM.strx4:
    case FORM.addrx4:
      return 4;
    case FORM.data8:
    case FORM.ref8:
    case FORM.ref_sig8:
    case FORM.ref_sup8:
      return 8;
    case FORM.data16:
      return 16;
    case FORM.addr:
      return ctx.addressSize;
    case FORM.ref_addr:
      // DWARF 2 sized DW_FORM_ref_addr like an address; later versions like an offset.
      return ctx.version <= 2 ? ctx.addressSize : ctx.offsetSize;
    case FORM.strp:
    case FORM.line_strp:
    case FORM.sec_offset:
    case FORM.strp_sup:
    case FORM.GNU_ref_alt:
    case FORM.GNU_strp_alt:
      return ctx.offsetSize;
    default:
      return -1;
  }
}

/** Step over one attribute value. */
export function skipForm(cur: Cursor, form: number, ctx: FormContext): void {
  const size = fixedFormSize(form, ctx);
  if (size >= 0) {
    cur.skip(size);
    return;
  }
  switch (form) {
    case FORM.sdata:
    case FORM.udata:
    case FORM.ref_udata:
    case FORM.strx:
    case FORM.addrx:
    case FORM.loclistx:
    case FORM.rnglistx:
    case FORM.GNU_addr_index:
    case FORM.GNU_str_index:
      cur.skipLeb();
      return;
    case FORM.string: {
      const end = cur.bytes.indexOf(0, cur.pos);
      if (end < 0) cur.fail('DW_FORM_string is not NUL-terminated');
      cur.pos = end + 1;
      return;
    }
    case FORM.block1:
      cur.skip(cur.u8());
      return;
    case FORM.block2:
      cur.skip(cur.u16());
      return;
    case FORM.block4:
      cur.skip(cur.u32());
      return;
    case FORM.block:
    case FORM.exprloc:
      cur.skip(cur.uleb());
      return;
    case FORM.indirect:
      skipForm(cur, readIndirectForm(cur), ctx);
      return;
    default:
      cur.fail(`unknown attribute form 0x${form.toString(16)}`);
  }
}

/** DW_FORM_indirect: the real form is a ULEB128 in the DIE, just before the value. */
export function readIndirectForm(cur: Cursor): number {
  const at = cur.pos;
  const form = cur.uleb();
  if (form === FORM.indirect || form === FORM.implicit_const) {
    cur.fail(`DW_FORM_indirect names form 0x${form.toString(16)}, which cannot be indirect`, at);
  }
  return form;
}

/**
 * Size in bytes of a constant form whose signedness the reader cannot know (DWARF 5
 * §7.5.5: data1..data8 are "constants of unspecified signedness"), or 0 when the form
 * itself fixes the sign (sdata, udata, implicit_const).
 */
export function ambiguousConstSize(form: number): number {
  switch (form) {
    case FORM.data1:
      return 1;
    case FORM.data2:
      return 2;
    case FORM.data4:
      return 4;
    case FORM.data8:
      return 8;
    case FORM.data16:
      return 16;
    default:
      return 0;
  }
}

/** True if the form is one of the constant class. */
export function isConstantForm(form: number): boolean {
  switch (form) {
    case FORM.data1:
    case FORM.data2:
    case FORM.data4:
    case FORM.data8:
    case FORM.data16:
    case FORM.sdata:
    case FORM.udata:
    case FORM.implicit_const:
      return true;
    default:
      return false;
  }
}

/**
 * A constant-class value as a bigint; data1..data8 are returned as unsigned (see
 * ambiguousConstSize for how callers sign-extend them when the type says so).
 */
export function readConstBig(cur: Cursor, form: number, implicitConst: bigint): bigint {
  switch (form) {
    case FORM.data1:
      return BigInt(cur.u8());
    case FORM.data2:
      return BigInt(cur.u16());
    case FORM.data4:
      return BigInt(cur.u32());
    case FORM.data8:
      return cur.u64Big();
    case FORM.data16: {
      const lo = cur.u64Big();
      const hi = cur.u64Big();
      return (hi << 64n) | lo;
    }
    case FORM.sdata:
      return cur.slebBig();
    case FORM.udata:
      return cur.ulebBig();
    case FORM.implicit_const:
      return implicitConst;
    default:
      return cur.fail(`form 0x${form.toString(16)} is not a constant`);
  }
}

/** A constant-class value that is a size, offset or bound: small enough for a number. */
export function readConst(cur: Cursor, form: number, implicitConst: bigint): number {
  switch (form) {
    case FORM.data1:
      return cur.u8();
    case FORM.data2:
      return cur.u16();
    case FORM.data4:
      return cur.u32();
    case FORM.udata:
      return cur.uleb();
    case FORM.sdata:
      return cur.sleb();
    default: {
      const at = cur.pos;
      const v = readConstBig(cur, form, implicitConst);
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) cur.fail('constant too large', at);
      return Number(v);
    }
  }
}

/**
 * A reference as an absolute .debug_info offset. References into another file
 * (supplementary or dwz "alt" files) cannot be followed and give -1.
 */
export function readRef(cur: Cursor, form: number, ctx: FormContext): number {
  switch (form) {
    case FORM.ref1:
      return ctx.unitOffset + cur.u8();
    case FORM.ref2:
      return ctx.unitOffset + cur.u16();
    case FORM.ref4:
      return ctx.unitOffset + cur.u32();
    case FORM.ref8:
      return ctx.unitOffset + cur.u64();
    case FORM.ref_udata:
      return ctx.unitOffset + cur.uleb();
    case FORM.ref_addr:
      return cur.offset(ctx.version <= 2 ? ctx.addressSize : ctx.offsetSize);
    case FORM.ref_sup4:
    case FORM.ref_sup8:
    case FORM.GNU_ref_alt:
      skipForm(cur, form, ctx);
      return -1;
    default:
      return cur.fail(`form 0x${form.toString(16)} is not a reference`);
  }
}

/** True if the form is one of the reference class (other than ref_sig8). */
export function isRefForm(form: number): boolean {
  switch (form) {
    case FORM.ref1:
    case FORM.ref2:
    case FORM.ref4:
    case FORM.ref8:
    case FORM.ref_udata:
    case FORM.ref_addr:
    case FORM.ref_sup4:
    case FORM.ref_sup8:
    case FORM.GNU_ref_alt:
      return true;
    default:
      return false;
  }
}

/** A flag-class value. */
export function readFlag(cur: Cursor, form: number, ctx: FormContext): boolean {
  if (form === FORM.flag_present) return true;
  if (form === FORM.flag) return cur.u8() !== 0;
  // Anything else (seen from old producers): present means true.
  skipForm(cur, form, ctx);
  return true;
}
