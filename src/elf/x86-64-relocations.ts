// x86-64 relocation types (System V x86-64 psABI, table "Relocation Types").
// Later stages patch and read instruction bytes themselves, so besides the
// number they need each type's field width and whether the value is relative
// to the place being relocated (P): that is what relocationInfo() provides,
// and readRelocatedField() reads such a field's value.

export const R_X86_64_NONE = 0;
export const R_X86_64_64 = 1;
export const R_X86_64_PC32 = 2;
export const R_X86_64_GOT32 = 3;
export const R_X86_64_PLT32 = 4;
export const R_X86_64_COPY = 5;
export const R_X86_64_GLOB_DAT = 6;
export const R_X86_64_JUMP_SLOT = 7;
export const R_X86_64_RELATIVE = 8;
export const R_X86_64_GOTPCREL = 9;
export const R_X86_64_32 = 10;
export const R_X86_64_32S = 11;
export const R_X86_64_16 = 12;
export const R_X86_64_PC16 = 13;
export const R_X86_64_8 = 14;
export const R_X86_64_PC8 = 15;
export const R_X86_64_DTPMOD64 = 16;
export const R_X86_64_DTPOFF64 = 17;
export const R_X86_64_TPOFF64 = 18;
export const R_X86_64_TLSGD = 19;
export const R_X86_64_TLSLD = 20;
export const R_X86_64_DTPOFF32 = 21;
export const R_X86_64_GOTTPOFF = 22;
export const R_X86_64_TPOFF32 = 23;
export const R_X86_64_PC64 = 24;
export const R_X86_64_GOTOFF64 = 25;
export const R_X86_64_GOTPC32 = 26;
export const R_X86_64_GOT64 = 27;
export const R_X86_64_GOTPCREL64 = 28;
export const R_X86_64_GOTPC64 = 29;
export const R_X86_64_GOTPLT64 = 30;
export const R_X86_64_PLTOFF64 = 31;
export const R_X86_64_SIZE32 = 32;
export const R_X86_64_SIZE64 = 33;
export const R_X86_64_GOTPC32_TLSDESC = 34;
export const R_X86_64_TLSDESC_CALL = 35;
export const R_X86_64_TLSDESC = 36;
export const R_X86_64_IRELATIVE = 37;
export const R_X86_64_RELATIVE64 = 38;
export const R_X86_64_GOTPCRELX = 41;
export const R_X86_64_REX_GOTPCRELX = 42;

export interface RelocationInfo {
  /** The psABI name, e.g. "R_X86_64_PC32" (what readelf prints). */
  readonly name: string;
  /** Width in bytes of the field the relocation writes (0 for markers). */
  readonly size: number;
  /**
   * True when the psABI's calculation subtracts P, the place's own address
   * (S + A - P, L + A - P, G + GOT + A - P, ...). Not for PLTOFF64 (L - GOT + A)
   * or GOTOFF64 (S + A - GOT), whose names merely mention the PLT or GOT.
   */
  readonly pcRelative: boolean;
  /**
   * True when the field is sign-extended by the CPU (or the psABI requires
   * the value to fit a signed field); false for zero-extended fields like
   * R_X86_64_32. Needed to read an implicit (SHT_REL) addend exactly.
   */
  readonly signed: boolean;
}

// [type, name suffix, size, pcRelative, signed]
const TABLE: ReadonlyArray<readonly [number, string, number, boolean, boolean]> = [
  [R_X86_64_NONE, 'NONE', 0, false, false],
  [R_X86_64_64, '64', 8, false, true],
  [R_X86_64_PC32, 'PC32', 4, true, true],
  [R_X86_64_GOT32, 'GOT32', 4, false, true],
  [R_X86_64_PLT32, 'PLT32', 4, true, true],
  [R_X86_64_COPY, 'COPY', 0, false, false],
  [R_X86_64_GLOB_DAT, 'GLOB_DAT', 8, false, true],
  [R_X86_64_JUMP_SLOT, 'JUMP_SLOT', 8, false, true],
  [R_X86_64_RELATIVE, 'RELATIVE', 8, false, true],
  [R_X86_64_GOTPCREL, 'GOTPCREL', 4, true, true],
  [R_X86_64_32, '32', 4, false, false],
  [R_X86_64_32S, '32S', 4, false, true],
  [R_X86_64_16, '16', 2, false, false],
  [R_X86_64_PC16, 'PC16', 2, true, true],
  [R_X86_64_8, '8', 1, false, false],
  [R_X86_64_PC8, 'PC8', 1, true, true],
  [R_X86_64_DTPMOD64, 'DTPMOD64', 8, false, true],
  [R_X86_64_DTPOFF64, 'DTPOFF64', 8, false, true],
  [R_X86_64_TPOFF64, 'TPOFF64', 8, false, true],
  [R_X86_64_TLSGD, 'TLSGD', 4, true, true],
  [R_X86_64_TLSLD, 'TLSLD', 4, true, true],
  [R_X86_64_DTPOFF32, 'DTPOFF32', 4, false, true],
  [R_X86_64_GOTTPOFF, 'GOTTPOFF', 4, true, true],
  [R_X86_64_TPOFF32, 'TPOFF32', 4, false, true],
  [R_X86_64_PC64, 'PC64', 8, true, true],
  [R_X86_64_GOTOFF64, 'GOTOFF64', 8, false, true],
  [R_X86_64_GOTPC32, 'GOTPC32', 4, true, true],
  [R_X86_64_GOT64, 'GOT64', 8, false, true],
  [R_X86_64_GOTPCREL64, 'GOTPCREL64', 8, true, true],
  [R_X86_64_GOTPC64, 'GOTPC64', 8, true, true],
  [R_X86_64_GOTPLT64, 'GOTPLT64', 8, false, true],
  [R_X86_64_PLTOFF64, 'PLTOFF64', 8, false, true],
  [R_X86_64_SIZE32, 'SIZE32', 4, false, false],
  [R_X86_64_SIZE64, 'SIZE64', 8, false, true],
  [R_X86_64_GOTPC32_TLSDESC, 'GOTPC32_TLSDESC', 4, true, true],
  [R_X86_64_TLSDESC_CALL, 'TLSDESC_CALL', 0, false, false],
  // A TLS descriptor is two words; the relocation fills both.
  [R_X86_64_TLSDESC, 'TLSDESC', 16, false, false],
  [R_X86_64_IRELATIVE, 'IRELATIVE', 8, false, true],
  [R_X86_64_RELATIVE64, 'RELATIVE64', 8, false, true],
  [R_X86_64_GOTPCRELX, 'GOTPCRELX', 4, true, true],
  [R_X86_64_REX_GOTPCRELX, 'REX_GOTPCRELX', 4, true, true],
];

const BY_NAME: ReadonlyMap<string, number> = new Map(TABLE.map(([type, suffix]) => [`R_X86_64_${suffix}`, type]));

const BY_TYPE: ReadonlyMap<number, RelocationInfo> = new Map(
  TABLE.map(([type, suffix, size, pcRelative, signed]) => [
    type,
    Object.freeze({ name: `R_X86_64_${suffix}`, size, pcRelative, signed }),
  ]),
);

/** Name, width and PC-relativity of an x86-64 relocation type, or undefined if unknown. */
export function relocationInfo(type: number): RelocationInfo | undefined {
  return BY_TYPE.get(type);
}

/** The psABI name of a relocation type, or "R_X86_64_<n>" for unknown ones (for messages). */
export function relocationName(type: number): string {
  return BY_TYPE.get(type)?.name ?? `R_X86_64_<${type}>`;
}

/** The type number of a psABI name such as "R_X86_64_PLT32" (as relocationName gives), or undefined. */
export function relocationType(name: string): number | undefined {
  return BY_NAME.get(name);
}

/**
 * The width of the field a relocation named `name` writes, for masking it out of a comparison:
 * 4 (the common width) when the name is unknown.
 */
export function relocationFieldSize(name: string): number {
  const type = relocationType(name);
  return (type === undefined ? undefined : relocationInfo(type)?.size) ?? 4;
}

/**
 * The value held in a relocated field of `size` bytes (1, 2, 4 or 8) at `at`,
 * sign- or zero-extended as RelocationInfo.signed says for its type.
 */
export function readRelocatedField(bytes: Uint8Array, at: number, size: number, signed: boolean): bigint {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (size) {
    case 1:
      return BigInt(signed ? view.getInt8(at) : view.getUint8(at));
    case 2:
      return BigInt(signed ? view.getInt16(at, true) : view.getUint16(at, true));
    case 4:
      return BigInt(signed ? view.getInt32(at, true) : view.getUint32(at, true));
    case 8:
      return signed ? view.getBigInt64(at, true) : view.getBigUint64(at, true);
    default:
      throw new RangeError(`no relocated field is ${size} bytes wide`);
  }
}
