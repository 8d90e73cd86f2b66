// The parsed form of an ELF64 file. Field names follow the spec's structure
// members without their prefixes (sh_addralign -> addralign). Addresses, symbol
// values and addends are bigint because kernel addresses (0xffffffff81000000)
// and negative addends do not fit a double exactly; file offsets and sizes are
// numbers, and the reader rejects any that exceeds Number.MAX_SAFE_INTEGER.
// Program headers are the exception: a core file's segments may lie far past
// 2^53 (/proc/kcore with 5-level paging), so all their 64-bit fields are bigint.

/** Elf64_Ehdr, with extended numbering (e_shnum/e_shstrndx/e_phnum escapes) already resolved. */
export interface ElfHeader {
  readonly osabi: number;
  readonly abiVersion: number;
  readonly type: number;
  readonly machine: number;
  readonly version: number;
  readonly entry: bigint;
  readonly phoff: number;
  readonly shoff: number;
  readonly flags: number;
  readonly ehsize: number;
  readonly phentsize: number;
  /** Real number of program headers (from section 0's sh_info if e_phnum is PN_XNUM). */
  readonly phnum: number;
  readonly shentsize: number;
  /** Real number of section headers (from section 0's sh_size if e_shnum is 0). */
  readonly shnum: number;
  /** Real index of the section name table (from section 0's sh_link if e_shstrndx is SHN_XINDEX). */
  readonly shstrndx: number;
}

/**
 * Elf64_Phdr. Every 64-bit field is a bigint: in /proc/kcore on a machine with
 * 5-level paging, p_offset of the kernel text segment is about 2^56.
 */
export interface ProgramHeader {
  readonly index: number;
  readonly type: number;
  readonly flags: number;
  readonly offset: bigint;
  readonly vaddr: bigint;
  readonly paddr: bigint;
  readonly filesz: bigint;
  readonly memsz: bigint;
  readonly align: bigint;
}

/** Elf64_Shdr plus its resolved name and contents. */
export interface Section {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly flags: bigint;
  readonly addr: bigint;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly addralign: number;
  readonly entsize: number;
  /** A view into the file's bytes (not a copy); empty for SHT_NOBITS. */
  readonly data: Uint8Array;
}

/** Elf64_Sym with st_info and st_other split and st_shndx resolved. */
export interface ElfSymbol {
  /** Index in its symbol table (index 0 is the null symbol). */
  readonly index: number;
  readonly name: string;
  readonly value: bigint;
  readonly size: number;
  readonly bind: number;
  readonly type: number;
  readonly visibility: number;
  /** Section index, already resolved through SHT_SYMTAB_SHNDX when st_shndx is SHN_XINDEX. */
  readonly shndx: number;
  /**
   * True when st_shndx is a reserved value (SHN_ABS, SHN_COMMON, ...) that
   * names no section; shndx then holds that value. Only this flag tells them
   * apart in files with more than 0xff00 sections, where resolved indices
   * reach the reserved range.
   */
  readonly special: boolean;
}

/** Elf64_Rela (or Elf64_Rel, with the implicit addend read from the relocated bytes). */
export interface Rela {
  /**
   * r_offset: an offset in the target section for ET_REL, a virtual address
   * otherwise. Linked files' relocations are decoded lazily by relocations(),
   * which throws a FormatError if an address exceeds Number.MAX_SAFE_INTEGER
   * (vmlinux's --emit-relocs entries do; their symbol indices are still
   * checked by parseElf).
   */
  readonly offset: number;
  readonly type: number;
  /** Index into the symbol table named by the relocation section's sh_link. */
  readonly symbolIndex: number;
  readonly addend: bigint;
}

export interface ElfFile {
  readonly fileName: string | undefined;
  readonly header: ElfHeader;
  /** All sections, indexed by section number (index 0 is the null section). */
  readonly sections: readonly Section[];
  readonly programHeaders: readonly ProgramHeader[];
  /** The .symtab symbols including the null symbol at index 0; empty if there is no SHT_SYMTAB. */
  readonly symbols: readonly ElfSymbol[];
  /** The .dynsym symbols including index 0; empty if there is no SHT_DYNSYM. */
  readonly dynamicSymbols: readonly ElfSymbol[];
  /** The first section with this name. */
  sectionByName(name: string): Section | undefined;
  /** Symbols of a SHT_SYMTAB or SHT_DYNSYM section (index 0 included). */
  symbolTable(section: Section): readonly ElfSymbol[];
  /** The entries of one SHT_RELA or SHT_REL section. */
  relocations(relocationSection: Section): readonly Rela[];
  /** The SHT_RELA/SHT_REL sections whose sh_info is this section. */
  relocationSectionsFor(section: Section): readonly Section[];
  /** All relocations that apply to this section, in file order. */
  relaFor(section: Section): readonly Rela[];
  /** Symbols of .symtab defined in this section, sorted by value (then by index). */
  symbolsIn(section: Section): readonly ElfSymbol[];
}
