// Public API of the ELF64 (x86-64, little-endian) reader and writer.
export * from './constants.js';
export * from './x86-64-relocations.js';
export { FormatError } from './format-error.js';
export type { ElfFile, ElfHeader, ElfSymbol, ProgramHeader, Rela, Section } from './types.js';
export { parseElf } from './read.js';
export { parseElfHeaders, readElfHeaders, type ElfHeaders } from './header.js';
export { readGroup, type SectionGroup } from './groups.js';
export { definingSection } from './symbols.js';
export { modelFromElf, type ModelGroup, type ModelRela, type ModelSection, type ModelSymbol, type ObjectModel, type SectionLink } from './model.js';
export { writeElf } from './write.js';
