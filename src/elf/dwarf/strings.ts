// String-class attribute values. Most names are never looked at (parameters, locals), so
// the reader keeps a number that says where the string is and decodes it on first use.
// The reference is checked when read, so bad offsets still fail at the attribute.
import { FORM } from './constants.js';
import { DwarfError } from './errors.js';
import { type FormContext } from './forms.js';
import { Cursor, cstringAt } from './reader.js';

/** A string reference: kind * 2^32 + offset; NaN when there is no readable string. */
export type StringRef = number;

const KIND_STR = 1;
const KIND_LINE_STR = 2;
const KIND_INFO = 3;
const KIND_SCALE = 0x100000000;

export class StringTables {
  // Decoded strings by offset. .debug_str and .debug_line_str are small next to
  // .debug_info and their strings are shared by many DIEs, so they get arrays indexed
  // by offset; strings inline in .debug_info get a map.
  private readonly strCache: (string | undefined)[];
  private readonly lineStrCache: (string | undefined)[];
  private readonly infoCache = new Map<number, string>();
  constructor(
    private readonly info: Uint8Array,
    private readonly str: Uint8Array | undefined,
    private readonly lineStr: Uint8Array | undefined,
    private readonly strOffsets: Uint8Array | undefined,
  ) {
    this.strCache = new Array<string | undefined>(str?.length ?? 0).fill(undefined);
    this.lineStrCache = new Array<string | undefined>(lineStr?.length ?? 0).fill(undefined);
  }

  /** Read a string-class attribute value as a reference. */
  read(cur: Cursor, form: number, ctx: FormContext): StringRef {
    const at = cur.pos;
    switch (form) {
      case FORM.string: {
        const end = cur.bytes.indexOf(0, at);
        if (end < 0) cur.fail('DW_FORM_string is not NUL-terminated');
        cur.pos = end + 1;
        return KIND_INFO * KIND_SCALE + at;
      }
      case FORM.strp:
        return this.ref(KIND_STR, cur.offset(ctx.offsetSize), cur, at);
      case FORM.line_strp:
        return this.ref(KIND_LINE_STR, cur.offset(ctx.offsetSize), cur, at);
      case FORM.strx:
      case FORM.GNU_str_index:
        return this.strx(cur.uleb(), ctx, cur, at);
      case FORM.strx1:
        return this.strx(cur.u8(), ctx, cur, at);
      case FORM.strx2:
        return this.strx(cur.u16(), ctx, cur, at);
      case FORM.strx3:
        return this.strx(cur.u24(), ctx, cur, at);
      case FORM.strx4:
        return this.strx(cur.u32(), ctx, cur, at);
      case FORM.strp_sup:
      case FORM.GNU_strp_alt:
        // In a supplementary (dwz) file we are not given.
        cur.skip(ctx.offsetSize);
        return Number.NaN;
      default:
        return cur.fail(`form 0x${form.toString(16)} is not a string`);
    }
  }

  /** Decode a reference (cached: the same names come back many times). */
  decode(ref: StringRef): string | undefined {
    if (Number.isNaN(ref)) return undefined;
    if (ref < KIND_SCALE * 2) {
      const offset = ref - KIND_SCALE;
      return this.strCache[offset] ?? (this.strCache[offset] = cstringAt(this.str!, offset, '.debug_str').text);
    }
    const kind = Math.floor(ref / KIND_SCALE);
    const offset = ref - kind * KIND_SCALE;
    if (kind === KIND_LINE_STR) {
      return this.lineStrCache[offset] ?? (this.lineStrCache[offset] = cstringAt(this.lineStr!, offset, '.debug_line_str').text);
    }
    let s = this.infoCache.get(offset);
    if (s === undefined) {
      s = cstringAt(this.info, offset, '.debug_info').text;
      this.infoCache.set(offset, s);
    }
    return s;
  }

  private section(kind: number): [Uint8Array | undefined, string] {
    switch (kind) {
      case KIND_STR:
        return [this.str, '.debug_str'];
      case KIND_LINE_STR:
        return [this.lineStr, '.debug_line_str'];
      default:
        return [this.info, '.debug_info'];
    }
  }

  private ref(kind: number, offset: number, cur: Cursor, at: number): StringRef {
    const [bytes, name] = this.section(kind);
    if (bytes === undefined) cur.fail(`string form used but there is no ${name} section`, at);
    if (offset >= bytes.length) cur.fail(`string offset 0x${offset.toString(16)} is past the end of ${name}`, at);
    return kind * KIND_SCALE + offset;
  }

  /** DW_FORM_strx*: an index into the unit's slice of .debug_str_offsets. */
  private strx(index: number, ctx: FormContext, cur: Cursor, at: number): StringRef {
    const table = this.strOffsets;
    if (table === undefined) cur.fail('DW_FORM_strx used but there is no .debug_str_offsets section', at);
    // Without DW_AT_str_offsets_base (split units), the table starts right after its 8- or 16-byte header.
    const base = ctx.strOffsetsBase ?? (ctx.offsetSize === 8 ? 16 : 8);
    const entry = base + index * ctx.offsetSize;
    if (entry + ctx.offsetSize > table.length) {
      throw new DwarfError('.debug_str_offsets', entry, `string index ${index} (from .debug_info offset 0x${at.toString(16)}) past the end of the section`);
    }
    const c = new Cursor(table, '.debug_str_offsets', entry);
    return this.ref(KIND_STR, c.offset(ctx.offsetSize), cur, at);
  }
}
