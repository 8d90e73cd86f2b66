// SHT_STRTAB sections: NUL-terminated strings referenced by byte offset
// (sh_name, st_name). Reading validates the reference; building deduplicates.

import type { ByteReader } from './byte-reader.js';

const utf8 = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

/** What readString needs to know about the table: its bytes, and a name for messages. */
export interface StringTableRef {
  readonly data: Uint8Array;
  readonly label: string;
}

/**
 * The string at `nameOffset` in `table`. `fieldOffset` is the file offset of the
 * field holding `nameOffset` (st_name, sh_name): that is where the FormatError
 * points, because that field is what is wrong if the string is not there.
 */
export function readString(
  r: ByteReader,
  table: StringTableRef,
  nameOffset: number,
  fieldOffset: number,
  what: string,
): string {
  const data = table.data;
  if (nameOffset >= data.length) {
    throw r.error(
      `${what}: name offset 0x${nameOffset.toString(16)} is outside string table ${table.label} (size 0x${data.length.toString(16)})`,
      fieldOffset,
    );
  }
  const end = data.indexOf(0, nameOffset);
  if (end < 0) {
    throw r.error(
      `${what}: string at offset 0x${nameOffset.toString(16)} in string table ${table.label} is not NUL-terminated`,
      fieldOffset,
    );
  }
  return decode(data, nameOffset, end);
}

// Symbol and section names are nearly always ASCII; building those directly is
// much cheaper than a TextDecoder call per name (vmlinux has ~10^5 symbols).
function decode(data: Uint8Array, start: number, end: number): string {
  let ascii = '';
  for (let i = start; i < end; i++) {
    const byte = data[i] as number;
    if (byte >= 0x80) return utf8.decode(data.subarray(start, end));
    ascii += String.fromCharCode(byte);
  }
  return ascii;
}

/** Builds a string table: offset 0 is the empty string, equal strings share one copy. */
export class StringTableBuilder {
  private readonly offsets = new Map<string, number>([['', 0]]);
  private readonly chunks: Uint8Array[] = [Uint8Array.of(0)];
  private size = 1;

  add(name: string): number {
    const known = this.offsets.get(name);
    if (known !== undefined) return known;
    const encoded = utf8Encoder.encode(name);
    if (encoded.includes(0)) throw new RangeError(`name ${JSON.stringify(name)} contains a NUL character`);
    const offset = this.size;
    this.chunks.push(encoded, Uint8Array.of(0));
    this.size += encoded.length + 1;
    this.offsets.set(name, offset);
    return offset;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}
