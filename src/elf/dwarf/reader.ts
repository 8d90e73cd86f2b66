// A bounds-checked little-endian cursor over one DWARF section. tsplice targets x86-64,
// whose objects are little-endian; DWARF itself carries no byte-order mark, so a
// big-endian object would need the caller to say so (not supported).
import { Buffer } from 'node:buffer';
import { DwarfError } from './errors.js';
import { type ByteSource, readSleb, readSlebBig, readUleb, readUlebBig, skipLeb } from './leb128.js';

export class Cursor implements ByteSource {
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly section: string,
    public pos = 0,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.length;
  }

  fail(detail: string, at = this.pos): never {
    throw new DwarfError(this.section, at, detail);
  }

  /** Throw unless n more bytes are available. */
  need(n: number): void {
    if (this.pos + n > this.bytes.length) {
      this.fail(`${n}-byte read runs past the end of the section (${this.bytes.length} bytes)`);
    }
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  u8(): number {
    if (this.pos >= this.bytes.length) this.need(1);
    return this.bytes[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u24(): number {
    this.need(3);
    const b = this.bytes;
    const p = this.pos;
    this.pos += 3;
    return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16);
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u64Big(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A 64-bit offset or size; must fit in a JavaScript number to be meaningful here. */
  u64(): number {
    const at = this.pos;
    this.need(8);
    const lo = this.view.getUint32(at, true);
    const hi = this.view.getUint32(at + 4, true);
    if (hi >= 0x200000) this.fail('64-bit value too large', at);
    this.pos += 8;
    return hi * 0x100000000 + lo;
  }

  /** An offset of the unit's offset size (4 for 32-bit DWARF, 8 for 64-bit DWARF). */
  offset(size: number): number {
    return size === 8 ? this.u64() : this.u32();
  }

  uleb(): number {
    return readUleb(this);
  }

  ulebBig(): bigint {
    return readUlebBig(this);
  }

  sleb(): number {
    return readSleb(this);
  }

  slebBig(): bigint {
    return readSlebBig(this);
  }

  skipLeb(): void {
    skipLeb(this);
  }

  /** A NUL-terminated string in place (DW_FORM_string). */
  cstring(): string {
    const s = cstringAt(this.bytes, this.pos, this.section);
    this.pos = s.end + 1;
    return s.text;
  }
}

const nodeBuffers = new WeakMap<Uint8Array, Buffer>();

/** Decode the NUL-terminated UTF-8 string starting at offset. */
export function cstringAt(bytes: Uint8Array, offset: number, section: string): { text: string; end: number } {
  if (offset >= bytes.length) throw new DwarfError(section, offset, 'string offset past the end of the section');
  const end = bytes.indexOf(0, offset);
  if (end < 0) throw new DwarfError(section, offset, 'string is not NUL-terminated');
  let buf = nodeBuffers.get(bytes);
  if (buf === undefined) {
    // Buffer's native UTF-8 slicing is much faster than TextDecoder on many short strings.
    buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    nodeBuffers.set(bytes, buf);
  }
  return { text: buf.toString('utf8', offset, end), end };
}
