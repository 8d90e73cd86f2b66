// LEB128 decoding (DWARF 5 §7.6). Most values in .debug_info and .debug_abbrev are
// small, so the hot paths return a plain number; enumerator values use the bigint variants
// because kernel enums hold 64-bit masks and negative numbers.
import { DwarfError } from './errors.js';

/** A mutable position in one section, shared with Cursor so both decode in place. */
export interface ByteSource {
  readonly bytes: Uint8Array;
  readonly section: string;
  pos: number;
}

function truncated(src: ByteSource, start: number): never {
  throw new DwarfError(src.section, start, 'LEB128 number runs past the end of the section');
}

/**
 * Unsigned LEB128 as a number. Offsets, codes and sizes fit easily in 53 bits; a larger
 * value means the input is not what we think it is, so it is an error rather than a
 * silently rounded number.
 */
export function readUleb(src: ByteSource): number {
  const bytes = src.bytes;
  const start = src.pos;
  let p = start;
  let result = 0;
  let scale = 1;
  for (;;) {
    if (p >= bytes.length) truncated(src, start);
    const b = bytes[p++]!;
    result += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) break;
    scale *= 128;
  }
  if (result > Number.MAX_SAFE_INTEGER) {
    throw new DwarfError(src.section, start, 'unsigned LEB128 number too large');
  }
  src.pos = p;
  return result;
}

/** Unsigned LEB128 of any size. */
export function readUlebBig(src: ByteSource): bigint {
  const bytes = src.bytes;
  const start = src.pos;
  let p = start;
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (p >= bytes.length) truncated(src, start);
    const b = bytes[p++]!;
    result |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if ((b & 0x80) === 0) break;
  }
  src.pos = p;
  return result;
}

/** Signed LEB128 of any size. */
export function readSlebBig(src: ByteSource): bigint {
  const bytes = src.bytes;
  const start = src.pos;
  let p = start;
  let result = 0n;
  let shift = 0n;
  let b: number;
  do {
    if (p >= bytes.length) truncated(src, start);
    b = bytes[p++]!;
    result |= BigInt(b & 0x7f) << shift;
    shift += 7n;
  } while ((b & 0x80) !== 0);
  if ((b & 0x40) !== 0) result -= 1n << shift;
  src.pos = p;
  return result;
}

/** Signed LEB128 as a number (for bounds and offsets, which are small). */
export function readSleb(src: ByteSource): number {
  const start = src.pos;
  const v = readSlebBig(src);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new DwarfError(src.section, start, 'signed LEB128 number too large');
  }
  return Number(v);
}

/** Step over a LEB128 number of either signedness without decoding it. */
export function skipLeb(src: ByteSource): void {
  const bytes = src.bytes;
  const start = src.pos;
  let p = start;
  for (;;) {
    if (p >= bytes.length) truncated(src, start);
    if ((bytes[p++]! & 0x80) === 0) break;
  }
  src.pos = p;
}
