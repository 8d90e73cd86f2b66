// Symbol tables (SHT_SYMTAB, SHT_DYNSYM): Elf64_Sym entries with names from the
// linked string table and st_shndx resolved through SHT_SYMTAB_SHNDX when it
// holds the SHN_XINDEX escape (objects with 0xff00 or more sections).

import type { ByteReader } from './byte-reader.js';
import { ELF64_SYM_SIZE, SHN_LORESERVE, SHN_UNDEF, SHN_XINDEX, SHT_SYMTAB_SHNDX } from './constants.js';
import { SHDR, SYM } from './layout.js';
import { describeSection, sectionHeaderOffset } from './sections.js';
import { readString } from './string-table.js';
import type { ElfFile, ElfHeader, ElfSymbol, Section } from './types.js';

/**
 * The section a symbol is defined in; undefined for an undefined symbol
 * (SHN_UNDEF) and for the reserved indices that name no section (SHN_ABS,
 * SHN_COMMON), which `special` marks. Testing shndx against SHN_LORESERVE
 * instead would lose real symbols of objects with 0xff00 or more sections.
 */
export function definingSection(elf: Pick<ElfFile, 'sections'>, symbol: ElfSymbol): Section | undefined {
  if (symbol.special || symbol.shndx === SHN_UNDEF) return undefined;
  return elf.sections[symbol.shndx];
}

export function readSymbolTable(
  r: ByteReader,
  header: ElfHeader,
  sections: readonly Section[],
  table: Section,
): ElfSymbol[] {
  const count = table.size / ELF64_SYM_SIZE;
  const strtab = sections[table.link] as Section; // type checked by validateSections
  const strings = { data: strtab.data, label: describeSection(strtab) };
  const tableHeader = sectionHeaderOffset(header, table.index);
  if (table.info > count) {
    throw r.error(
      `${describeSection(table)}: sh_info ${table.info} (first non-local symbol) exceeds the symbol count ${count}`,
      tableHeader + SHDR.info,
    );
  }
  const shndxTable = findShndxTable(r, header, sections, table, count);

  const symbols: ElfSymbol[] = new Array<ElfSymbol>(count);
  for (let index = 0; index < count; index++) {
    const at = table.offset + index * ELF64_SYM_SIZE;
    const info = r.u8(at + SYM.info);
    const rawShndx = r.u16(at + SYM.shndx);
    let shndx = rawShndx;
    if (rawShndx === SHN_XINDEX) {
      if (shndxTable === undefined) {
        throw r.error(`symbol ${index} has st_shndx SHN_XINDEX but there is no SHT_SYMTAB_SHNDX section for ${describeSection(table)}`, at + SYM.shndx);
      }
      const wordAt = shndxTable.offset + index * 4;
      shndx = r.u32(wordAt);
      if (shndx >= sections.length) {
        throw r.error(`symbol ${index}: extended section index ${shndx} out of range (${sections.length} sections)`, wordAt);
      }
    } else if (rawShndx < SHN_LORESERVE && rawShndx >= sections.length) {
      throw r.error(`symbol ${index}: st_shndx ${rawShndx} out of range (${sections.length} sections)`, at + SYM.shndx);
    }
    symbols[index] = Object.freeze({
      index,
      name: readString(r, strings, r.u32(at + SYM.name), at + SYM.name, `symbol ${index}`),
      value: r.u64(at + SYM.value),
      size: r.safeU64(at + SYM.size, `symbol ${index} st_size`),
      bind: info >> 4,
      type: info & 0xf,
      visibility: r.u8(at + SYM.other) & 0x3,
      shndx,
      special: rawShndx >= SHN_LORESERVE && rawShndx !== SHN_XINDEX,
    });
  }
  return symbols;
}

function findShndxTable(
  r: ByteReader,
  header: ElfHeader,
  sections: readonly Section[],
  table: Section,
  count: number,
): Section | undefined {
  const shndx = sections.find((s) => s.type === SHT_SYMTAB_SHNDX && s.link === table.index);
  if (shndx !== undefined && shndx.size !== count * 4) {
    throw r.error(
      `${describeSection(shndx)}: size 0x${shndx.size.toString(16)} does not match ${count} symbols in ${describeSection(table)}`,
      sectionHeaderOffset(header, shndx.index) + SHDR.size,
    );
  }
  return shndx;
}
