// Section header table: reading each Elf64_Shdr, resolving names, and checking
// that every header is self-consistent (data inside the file, sh_link/sh_info
// naming sections of the right type, entry sizes the code relies on).

import type { ByteReader } from './byte-reader.js';
import {
  ELF64_REL_SIZE,
  ELF64_RELA_SIZE,
  ELF64_SHDR_SIZE,
  ELF64_SYM_SIZE,
  SHF_INFO_LINK,
  SHN_UNDEF,
  SHT_DYNSYM,
  SHT_GROUP,
  SHT_NOBITS,
  SHT_NULL,
  SHT_REL,
  SHT_RELA,
  SHT_STRTAB,
  SHT_SYMTAB,
  SHT_SYMTAB_SHNDX,
} from './constants.js';
import { EHDR, SHDR } from './layout.js';
import { readString } from './string-table.js';
import type { ElfHeader, Section } from './types.js';

/** File offset of section header `index`. */
export function sectionHeaderOffset(header: ElfHeader, index: number): number {
  return header.shoff + index * ELF64_SHDR_SIZE;
}

/** "section 12 (.rela.text)" for messages. */
export function describeSection(section: Section): string {
  return section.name === '' ? `section ${section.index}` : `section ${section.index} (${section.name})`;
}

interface RawSection {
  readonly fields: Omit<Section, 'name'>;
  readonly nameOffset: number;
}

export function readSections(r: ByteReader, header: ElfHeader): Section[] {
  const raw: RawSection[] = [];
  for (let index = 0; index < header.shnum; index++) raw.push(readSectionHeader(r, header, index));
  if (raw.length === 0) return [];

  let names: { data: Uint8Array; label: string } | undefined;
  if (header.shstrndx !== SHN_UNDEF) {
    const table = (raw[header.shstrndx] as RawSection).fields;
    if (table.type !== SHT_STRTAB) {
      throw r.error(`section name table (section ${header.shstrndx}) has type ${table.type}, not SHT_STRTAB`, EHDR.shstrndx);
    }
    names = { data: table.data, label: `section ${header.shstrndx}` };
  }
  return raw.map(({ fields, nameOffset }) => {
    const index = fields.index;
    // Section 0 is a placeholder (or holds extended-numbering counts); its
    // sh_name is meaningless.
    const name =
      names === undefined || index === 0
        ? ''
        : readString(r, names, nameOffset, sectionHeaderOffset(header, index) + SHDR.name, `section ${index} name`);
    return Object.freeze({ ...fields, name });
  });
}

function readSectionHeader(r: ByteReader, header: ElfHeader, index: number): RawSection {
  const at = sectionHeaderOffset(header, index);
  r.require(at, ELF64_SHDR_SIZE, `section header ${index}`);
  const type = r.u32(at + SHDR.type);
  const offset = r.safeU64(at + SHDR.offset, `section ${index} sh_offset`);
  const size = r.safeU64(at + SHDR.size, `section ${index} sh_size`);
  const addralign = r.safeU64(at + SHDR.addralign, `section ${index} sh_addralign`);
  const entsize = r.safeU64(at + SHDR.entsize, `section ${index} sh_entsize`);
  let data: Uint8Array = new Uint8Array(0);
  if (index !== 0 && type !== SHT_NOBITS && type !== SHT_NULL && size > 0) {
    if (offset + size > r.length) {
      throw r.error(
        `section ${index} data [0x${offset.toString(16)}, 0x${(offset + size).toString(16)}) extends past end of file (file size 0x${r.length.toString(16)})`,
        at + SHDR.offset,
      );
    }
    data = r.bytes.subarray(offset, offset + size);
  }
  if (index !== 0 && addralign > 1 && (addralign & (addralign - 1)) !== 0) {
    throw r.error(`section ${index} sh_addralign ${addralign} is not a power of two`, at + SHDR.addralign);
  }
  const fields = {
    index,
    type,
    flags: r.u64(at + SHDR.flags),
    addr: r.u64(at + SHDR.addr),
    offset,
    size,
    link: r.u32(at + SHDR.link),
    info: r.u32(at + SHDR.info),
    addralign,
    entsize,
    data,
  };
  return { fields, nameOffset: r.u32(at + SHDR.name) };
}

/** Entry size the reader requires for table sections, by sh_type. */
const ENTRY_SIZE: ReadonlyMap<number, number> = new Map([
  [SHT_SYMTAB, ELF64_SYM_SIZE],
  [SHT_DYNSYM, ELF64_SYM_SIZE],
  [SHT_RELA, ELF64_RELA_SIZE],
  [SHT_REL, ELF64_REL_SIZE],
  [SHT_SYMTAB_SHNDX, 4],
  [SHT_GROUP, 4],
]);

/** Which section types sh_link must name, for the types where the spec fixes it. */
const LINK_TYPES: ReadonlyMap<number, readonly number[]> = new Map([
  [SHT_SYMTAB, [SHT_STRTAB]],
  [SHT_DYNSYM, [SHT_STRTAB]],
  [SHT_RELA, [SHT_SYMTAB, SHT_DYNSYM]],
  [SHT_REL, [SHT_SYMTAB, SHT_DYNSYM]],
  [SHT_SYMTAB_SHNDX, [SHT_SYMTAB, SHT_DYNSYM]],
  [SHT_GROUP, [SHT_SYMTAB]],
]);

/** Checks entry sizes and the section indices in sh_link and sh_info. */
export function validateSections(r: ByteReader, header: ElfHeader, sections: readonly Section[]): void {
  for (const s of sections) {
    if (s.index === 0) continue;
    const at = sectionHeaderOffset(header, s.index);
    const what = describeSection(s);

    const entry = ENTRY_SIZE.get(s.type);
    if (entry !== undefined) {
      // SHT_GROUP and SHT_SYMTAB_SHNDX entries are always 4 bytes; some tools
      // leave sh_entsize 0 for them, which is harmless.
      const lenient = s.type === SHT_GROUP || s.type === SHT_SYMTAB_SHNDX;
      if (s.entsize !== entry && !(lenient && s.entsize === 0)) {
        throw r.error(`${what}: sh_entsize is ${s.entsize}, expected ${entry}`, at + SHDR.entsize);
      }
      if (s.size % entry !== 0) {
        throw r.error(`${what}: sh_size 0x${s.size.toString(16)} is not a multiple of the entry size ${entry}`, at + SHDR.size);
      }
    }

    // sh_link is a section index for every section type that uses it.
    if (s.link >= sections.length) {
      throw r.error(`${what}: sh_link ${s.link} out of range (${sections.length} sections)`, at + SHDR.link);
    }
    const linkTypes = LINK_TYPES.get(s.type);
    const optionalLink = s.type === SHT_REL || s.type === SHT_RELA; // e.g. .rela.dyn with no symbols
    if (linkTypes !== undefined && !(optionalLink && s.link === 0)) {
      const linked = sections[s.link] as Section;
      if (!linkTypes.includes(linked.type)) {
        throw r.error(`${what}: sh_link ${s.link} names a section of type ${linked.type}`, at + SHDR.link);
      }
    }

    // sh_info is a section index for relocation sections and SHF_INFO_LINK.
    if (s.type === SHT_REL || s.type === SHT_RELA || (s.flags & SHF_INFO_LINK) !== 0n) {
      if (s.info >= sections.length) {
        throw r.error(`${what}: sh_info ${s.info} out of range (${sections.length} sections)`, at + SHDR.info);
      }
    }
  }
}
