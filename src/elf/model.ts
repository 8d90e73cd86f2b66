// The writer's model of a relocatable object (ET_REL). Unlike the parsed form,
// it refers to sections and symbols by object reference, never by index: the
// writer assigns indices, so callers can drop, add or reorder sections and
// symbols without renumbering anything by hand. The tables that only encode
// those indices (.symtab, .strtab, .shstrtab, .rela.*, .symtab_shndx and the
// contents of SHT_GROUP sections) are not in the model; writeElf builds them.

import { ET_REL, SHF_INFO_LINK, SHN_UNDEF, SHT_GROUP, SHT_NOBITS, SHT_REL, SHT_RELA, SHT_SYMTAB, SHT_SYMTAB_SHNDX } from './constants.js';
import { readGroup } from './groups.js';
import type { ElfFile, Section } from './types.js';

/**
 * What a section's sh_link names: another section, the .symtab the writer
 * builds, or a literal value written as is (0 for none).
 */
export type SectionLink = ModelSection | 'symtab' | number;

export interface ModelSection {
  name: string;
  type: number;
  /** Default 0n. */
  flags?: bigint;
  /** Default 0n (always 0 in relocatable objects produced by gcc). */
  addr?: bigint;
  /** Default 1. Must be 0 or a power of two; the writer aligns the data to it. */
  addralign?: number;
  /** Default 0. */
  entsize?: number;
  /** Contents (ignored for SHT_NOBITS). Default empty. */
  data?: Uint8Array;
  /** SHT_NOBITS only: sh_size (the size the section occupies in memory). */
  size?: number;
  /** Default 0. */
  link?: SectionLink;
  /** A section (for SHF_INFO_LINK) or a literal value. Default 0. Ignored for SHT_GROUP. */
  info?: ModelSection | number;
  /** SHT_GROUP only: the group, from which the writer builds the contents, sh_link and sh_info. */
  group?: ModelGroup;
  /** Relocations to apply to this section; the writer emits them as ".rela" + name. */
  relocations?: ModelRela[];
}

export interface ModelGroup {
  /** GRP_* flags, e.g. GRP_COMDAT. */
  flags: number;
  signature: ModelSymbol;
  /** Member sections; the writer adds each member's generated .rela section itself. */
  members: ModelSection[];
}

export interface ModelSymbol {
  name: string;
  value: bigint;
  size: number;
  bind: number;
  type: number;
  visibility: number;
  /** The defining section, or a special index: SHN_UNDEF, SHN_ABS or SHN_COMMON. */
  section: ModelSection | number;
}

export interface ModelRela {
  offset: number;
  type: number;
  /** null for relocations with symbol index 0. */
  symbol: ModelSymbol | null;
  addend: bigint;
}

export interface ObjectModel {
  /** Default EM_X86_64. */
  machine?: number;
  /** e_flags; default 0. */
  flags?: number;
  /** e_ident[EI_OSABI] and [EI_ABIVERSION]; default 0. */
  osabi?: number;
  abiVersion?: number;
  sections: ModelSection[];
  /** Without the null symbol; the writer puts local symbols first, keeping the relative order. */
  symbols: ModelSymbol[];
}

/**
 * The model of a parsed relocatable object, so that read -> edit -> write is:
 *   const model = modelFromElf(parseElf(bytes));
 *   model.symbols.find((s) => s.name === 'printk')!.section = SHN_ABS; ...
 *   const out = writeElf(model);
 * Section contents are copied, so editing the model never changes `elf`.
 */
export function modelFromElf(elf: ElfFile): ObjectModel {
  if (elf.header.type !== ET_REL) throw new TypeError(`${elf.fileName ?? 'ELF file'}: only ET_REL objects can be converted to a model (e_type ${elf.header.type})`);
  const symtabs = elf.sections.filter((s) => s.type === SHT_SYMTAB);
  if (symtabs.length > 1) throw new TypeError(`${elf.fileName ?? 'ELF file'}: more than one SHT_SYMTAB section`);
  const symtab = symtabs[0];

  // Sections the writer regenerates from the model.
  const generated = new Set<number>([0]);
  if (symtab !== undefined) generated.add(symtab.index).add(symtab.link);
  if (elf.header.shstrndx !== SHN_UNDEF) generated.add(elf.header.shstrndx);
  for (const s of elf.sections) {
    if (s.type === SHT_SYMTAB_SHNDX) generated.add(s.index);
    if ((s.type === SHT_RELA || s.type === SHT_REL) && s.info !== 0) generated.add(s.index);
  }

  const sections = new Map<number, ModelSection>();
  for (const s of elf.sections) {
    if (generated.has(s.index)) continue;
    if (s.type === SHT_RELA || s.type === SHT_REL) {
      throw new TypeError(`${describe(elf, s)}: relocation section without a target section (sh_info 0)`);
    }
    sections.set(s.index, {
      name: s.name,
      type: s.type,
      flags: s.flags,
      addr: s.addr,
      addralign: s.addralign,
      entsize: s.entsize,
      data: s.type === SHT_NOBITS ? new Uint8Array(0) : s.data.slice(),
      size: s.size,
    });
  }
  const sectionRef = (index: number, user: string): ModelSection => {
    const m = sections.get(index);
    if (m === undefined) throw new TypeError(`${user} refers to section ${index} (${elf.sections[index]?.name ?? '?'}), which the writer regenerates`);
    return m;
  };

  const symbols = elf.symbols.slice(1).map(
    (sym): ModelSymbol => ({
      name: sym.name,
      value: sym.value,
      size: sym.size,
      bind: sym.bind,
      type: sym.type,
      visibility: sym.visibility,
      section: sym.shndx === SHN_UNDEF || sym.special ? sym.shndx : sectionRef(sym.shndx, `symbol ${sym.index} (${sym.name})`),
    }),
  );
  const symbolRef = (index: number): ModelSymbol | null => (index === 0 ? null : (symbols[index - 1] as ModelSymbol));

  for (const s of elf.sections) {
    const m = sections.get(s.index);
    if (m === undefined) continue;
    const user = describe(elf, s);
    if (s.link !== 0) m.link = symtab !== undefined && s.link === symtab.index ? 'symtab' : sectionRef(s.link, `${user} sh_link`);
    if (s.type === SHT_GROUP) {
      const { flags, members } = readGroup(s);
      m.group = {
        flags,
        signature: symbolRef(s.info) ?? fail(`${user}: group without a signature symbol`),
        // Relocation sections are implied by their targets' membership.
        members: members.filter((i) => !generated.has(i)).map((i) => sectionRef(i, `${user} member`)),
      };
    } else if (s.info !== 0) {
      m.info = (s.flags & SHF_INFO_LINK) !== 0n ? sectionRef(s.info, `${user} sh_info`) : s.info;
    }
    const relocations = elf.relaFor(s);
    if (relocations.length > 0) {
      m.relocations = relocations.map((r) => ({ offset: r.offset, type: r.type, symbol: symbolRef(r.symbolIndex), addend: r.addend }));
    }
  }
  // The symbol indices above mean .symtab's symbols; any other table would be remapped wrongly.
  for (const s of elf.sections) {
    if ((s.type === SHT_RELA || s.type === SHT_REL) && s.info !== 0 && s.link !== symtab?.index) {
      throw new TypeError(`${describe(elf, s)}: sh_link ${s.link} is not the .symtab section`);
    }
  }
  return {
    machine: elf.header.machine,
    flags: elf.header.flags,
    osabi: elf.header.osabi,
    abiVersion: elf.header.abiVersion,
    sections: [...sections.values()],
    symbols,
  };
}

function describe(elf: ElfFile, s: Section): string {
  return `${elf.fileName ?? 'ELF file'}: section ${s.index} (${s.name})`;
}

function fail(message: string): never {
  throw new TypeError(message);
}
