// Byte offsets of the fields inside the fixed-size ELF64 structures. The reader
// and the writer share them so the two cannot disagree, and FormatError offsets
// are computed from them (structure start + field offset).

/** Elf64_Ehdr (64 bytes). */
export const EHDR = {
  ident: 0,
  type: 16,
  machine: 18,
  version: 20,
  entry: 24,
  phoff: 32,
  shoff: 40,
  flags: 48,
  ehsize: 52,
  phentsize: 54,
  phnum: 56,
  shentsize: 58,
  shnum: 60,
  shstrndx: 62,
} as const;

/** Elf64_Phdr (56 bytes). */
export const PHDR = {
  type: 0,
  flags: 4,
  offset: 8,
  vaddr: 16,
  paddr: 24,
  filesz: 32,
  memsz: 40,
  align: 48,
} as const;

/** Elf64_Shdr (64 bytes). */
export const SHDR = {
  name: 0,
  type: 4,
  flags: 8,
  addr: 16,
  offset: 24,
  size: 32,
  link: 40,
  info: 44,
  addralign: 48,
  entsize: 56,
} as const;

/** Elf64_Sym (24 bytes). */
export const SYM = {
  name: 0,
  info: 4,
  other: 5,
  shndx: 6,
  value: 8,
  size: 16,
} as const;

/** Elf64_Rela (24 bytes); Elf64_Rel is the same without the addend. */
export const RELA = {
  offset: 0,
  info: 8,
  addend: 16,
} as const;
