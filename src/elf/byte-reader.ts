import { FormatError } from './format-error.js';

/**
 * Little-endian field access over a file's bytes that turns every problem into
 * a FormatError naming the file and offset. Callers check a structure's bounds
 * once with require() and then read its fields; the typed getters never see an
 * out-of-range offset (DataView would throw a RangeError without the context).
 */
export class ByteReader {
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly file?: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.length;
  }

  error(detail: string, offset: number): FormatError {
    return new FormatError(detail, offset, this.file);
  }

  /** Throws unless [offset, offset + size) lies within the file; `what` names the structure. */
  require(offset: number, size: number, what: string): void {
    if (offset < 0 || offset + size > this.bytes.length) {
      throw this.error(`${what} extends past end of file (file size 0x${this.bytes.length.toString(16)})`, offset);
    }
  }

  u8(offset: number): number {
    return this.view.getUint8(offset);
  }

  u16(offset: number): number {
    return this.view.getUint16(offset, true);
  }

  u32(offset: number): number {
    return this.view.getUint32(offset, true);
  }

  u64(offset: number): bigint {
    return this.view.getBigUint64(offset, true);
  }

  i64(offset: number): bigint {
    return this.view.getBigInt64(offset, true);
  }

  /** A 64-bit offset or size field as a number; a FormatError at the field if it is not exact. */
  safeU64(offset: number, field: string): number {
    const value = this.u64(offset);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw this.error(`${field} 0x${value.toString(16)} is too large`, offset);
    }
    return Number(value);
  }
}
