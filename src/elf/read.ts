// parseElf: the whole-file reader. It validates everything up front (so later
// stages can index freely) and returns an immutable view over the bytes;
// section data are subarrays of the input, not copies.

import { ByteReader } from './byte-reader.js';
import { ELF64_PHDR_SIZE, ET_REL, SHT_DYNSYM, SHT_GROUP, SHT_REL, SHT_RELA, SHT_SYMTAB } from './constants.js';
import { validateGroup } from './groups.js';
import { readHeaders } from './header.js';
import { PHDR } from './layout.js';
import { checkRelocationSymbols, readRelocations } from './relocations.js';
import { readSections, validateSections } from './sections.js';
import { readSymbolTable } from './symbols.js';
import type { ElfFile, ElfHeader, ElfSymbol, ProgramHeader, Rela, Section } from './types.js';

export function parseElf(bytes: Uint8Array, fileName?: string): ElfFile {
  const r = new ByteReader(bytes, fileName);
  const { header, programHeaders } = readHeaders(r);
  for (const ph of programHeaders) {
    if (ph.filesz > 0n && ph.offset + ph.filesz > BigInt(r.length)) {
      throw r.error(
        `program header ${ph.index} segment [0x${ph.offset.toString(16)}, 0x${(ph.offset + ph.filesz).toString(16)}) extends past end of file (file size 0x${r.length.toString(16)})`,
        header.phoff + ph.index * ELF64_PHDR_SIZE + PHDR.offset,
      );
    }
  }
  const sections = readSections(r, header);
  validateSections(r, header, sections);

  const symbolTables = new Map<number, readonly ElfSymbol[]>();
  for (const s of sections) {
    if (s.type === SHT_SYMTAB || s.type === SHT_DYNSYM) {
      symbolTables.set(s.index, Object.freeze(readSymbolTable(r, header, sections, s)));
    }
  }
  for (const s of sections) if (s.type === SHT_GROUP) validateGroup(r, header, sections, s);

  const relocations = new Map<number, readonly Rela[]>();
  for (const s of sections) {
    if (s.type !== SHT_RELA && s.type !== SHT_REL) continue;
    // Objects are small and relocations are what later stages read most:
    // decode them now. For linked files r_offset is an address that may not
    // fit a number, so only the symbol indices are checked now.
    if (header.type === ET_REL) relocations.set(s.index, Object.freeze(readRelocations(r, header, sections, s)));
    else checkRelocationSymbols(r, sections, s);
  }
  return new ParsedElf(r, header, Object.freeze(sections), Object.freeze(programHeaders.slice()), symbolTables, relocations);
}

class ParsedElf implements ElfFile {
  readonly fileName: string | undefined;
  readonly symbols: readonly ElfSymbol[];
  readonly dynamicSymbols: readonly ElfSymbol[];
  private byName: Map<string, Section> | undefined;
  private bySection: Map<number, ElfSymbol[]> | undefined;
  private relocationSectionsByTarget: Map<number, Section[]> | undefined;

  constructor(
    private readonly reader: ByteReader,
    readonly header: ElfHeader,
    readonly sections: readonly Section[],
    readonly programHeaders: readonly ProgramHeader[],
    private readonly symbolTables: Map<number, readonly ElfSymbol[]>,
    private readonly relocationCache: Map<number, readonly Rela[]>,
  ) {
    this.fileName = reader.file;
    const first = (type: number): readonly ElfSymbol[] => {
      const table = sections.find((s) => s.type === type);
      return table === undefined ? [] : (symbolTables.get(table.index) ?? []);
    };
    this.symbols = first(SHT_SYMTAB);
    this.dynamicSymbols = first(SHT_DYNSYM);
  }

  sectionByName(name: string): Section | undefined {
    if (this.byName === undefined) {
      this.byName = new Map();
      for (const s of this.sections) if (!this.byName.has(s.name)) this.byName.set(s.name, s);
    }
    return this.byName.get(name);
  }

  symbolTable(section: Section): readonly ElfSymbol[] {
    const table = this.symbolTables.get(this.own(section).index);
    if (table === undefined) throw new TypeError(`section ${section.index} is not a symbol table`);
    return table;
  }

  relocations(relocationSection: Section): readonly Rela[] {
    const s = this.own(relocationSection);
    if (s.type !== SHT_RELA && s.type !== SHT_REL) throw new TypeError(`section ${s.index} is not a relocation section`);
    let result = this.relocationCache.get(s.index);
    if (result === undefined) {
      result = Object.freeze(readRelocations(this.reader, this.header, this.sections, s));
      this.relocationCache.set(s.index, result);
    }
    return result;
  }

  relocationSectionsFor(section: Section): readonly Section[] {
    const index = this.own(section).index;
    if (index === 0) return [];
    // Built once: a per-call scan would make "relocations of every section" quadratic.
    if (this.relocationSectionsByTarget === undefined) {
      this.relocationSectionsByTarget = new Map();
      for (const s of this.sections) {
        if (s.type !== SHT_RELA && s.type !== SHT_REL) continue;
        const list = this.relocationSectionsByTarget.get(s.info);
        if (list === undefined) this.relocationSectionsByTarget.set(s.info, [s]);
        else list.push(s);
      }
    }
    return this.relocationSectionsByTarget.get(index) ?? [];
  }

  relaFor(section: Section): readonly Rela[] {
    return this.relocationSectionsFor(section).flatMap((s) => this.relocations(s));
  }

  symbolsIn(section: Section): readonly ElfSymbol[] {
    if (this.bySection === undefined) {
      this.bySection = new Map();
      for (const sym of this.symbols) {
        if (sym.index === 0 || sym.special) continue;
        const list = this.bySection.get(sym.shndx);
        if (list === undefined) this.bySection.set(sym.shndx, [sym]);
        else list.push(sym);
      }
      for (const list of this.bySection.values()) {
        list.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : a.index - b.index));
        Object.freeze(list);
      }
    }
    return this.bySection.get(this.own(section).index) ?? [];
  }

  /** Accepts only this file's sections: a Section from another file would silently index the wrong one. */
  private own(section: Section): Section {
    if (this.sections[section.index] !== section) {
      throw new TypeError(`section ${section.index} (${section.name}) does not belong to this ELF file`);
    }
    return section;
  }
}
