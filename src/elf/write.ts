// writeElf: ObjectModel -> ET_REL bytes. Section order is the model's, each
// section immediately followed by its generated .rela section (as gas lays
// them out), then .symtab, .symtab_shndx (only with 0xff00 or more sections),
// .strtab and .shstrtab; the section header table comes last.

import {
  EI_ABIVERSION,
  EI_CLASS,
  EI_DATA,
  EI_OSABI,
  EI_VERSION,
  ELF64_EHDR_SIZE,
  ELF64_RELA_SIZE,
  ELF64_SHDR_SIZE,
  ELF64_SYM_SIZE,
  ELFCLASS64,
  ELFDATA2LSB,
  ELFMAG,
  EM_X86_64,
  ET_REL,
  EV_CURRENT,
  SHF_GROUP,
  SHF_INFO_LINK,
  SHN_LORESERVE,
  SHN_UNDEF,
  SHN_XINDEX,
  SHT_GROUP,
  SHT_NOBITS,
  SHT_NULL,
  SHT_RELA,
  SHT_STRTAB,
  SHT_SYMTAB,
  SHT_SYMTAB_SHNDX,
  STB_LOCAL,
} from './constants.js';
import { EHDR, RELA, SHDR, SYM } from './layout.js';
import type { ModelSection, ModelSymbol, ObjectModel } from './model.js';
import { StringTableBuilder } from './string-table.js';

/** One section header to emit, with its contents. */
interface OutSection {
  name: string;
  type: number;
  flags: bigint;
  addr: bigint;
  addralign: number;
  entsize: number;
  /** Contents; for SHT_NOBITS, empty and `size` gives sh_size. */
  data: Uint8Array;
  size: number;
  link: number;
  info: number;
  offset: number;
}

export function writeElf(model: ObjectModel): Uint8Array {
  // 1. Section indices: the model's sections with their .rela sections, then the tables.
  const sectionIndex = new Map<ModelSection, number>();
  const relaIndex = new Map<ModelSection, number>();
  let next = 1;
  for (const s of model.sections) {
    if (sectionIndex.has(s)) throw new RangeError(`section ${s.name} appears twice in the model`);
    sectionIndex.set(s, next++);
    if ((s.relocations?.length ?? 0) > 0) relaIndex.set(s, next++);
  }
  const symtabIndex = next++;
  // Symbols can only name sections below .symtab, so this decides whether any needs SHN_XINDEX.
  const needShndx = symtabIndex - 1 >= SHN_LORESERVE;
  if (needShndx) next++; // .symtab_shndx
  const strtabIndex = next++;
  const shstrtabIndex = next++;
  const sectionCount = next;

  const indexOf = (s: ModelSection, user: string): number => {
    const index = sectionIndex.get(s);
    if (index === undefined) throw new RangeError(`${user} refers to section ${s.name}, which is not in model.sections`);
    return index;
  };

  // 2. Symbol indices: locals first, as the gABI requires (.symtab sh_info = first non-local).
  const ordered = [...model.symbols.filter((s) => s.bind === STB_LOCAL), ...model.symbols.filter((s) => s.bind !== STB_LOCAL)];
  const symbolIndex = new Map<ModelSymbol, number>();
  ordered.forEach((sym, i) => {
    if (symbolIndex.has(sym)) throw new RangeError(`symbol ${sym.name} appears twice in the model`);
    symbolIndex.set(sym, i + 1);
  });
  const symbolRef = (sym: ModelSymbol, user: string): number => {
    const index = symbolIndex.get(sym);
    if (index === undefined) throw new RangeError(`${user} refers to symbol ${sym.name}, which is not in model.symbols`);
    return index;
  };
  const firstGlobal = 1 + model.symbols.filter((s) => s.bind === STB_LOCAL).length;

  // 3. Tables.
  const strtab = new StringTableBuilder();
  const symtab = new Uint8Array((ordered.length + 1) * ELF64_SYM_SIZE);
  const shndxTable = new Uint8Array(needShndx ? (ordered.length + 1) * 4 : 0);
  {
    const view = dataView(symtab);
    const shndxView = dataView(shndxTable);
    ordered.forEach((sym, i) => {
      const at = (i + 1) * ELF64_SYM_SIZE;
      const user = `symbol ${sym.name}`;
      let shndx: number;
      if (typeof sym.section === 'number') {
        if (sym.section !== SHN_UNDEF && (sym.section < SHN_LORESERVE || sym.section === SHN_XINDEX || sym.section > 0xffff)) {
          throw new RangeError(`${user}: section ${sym.section} is not a special section index (use a ModelSection)`);
        }
        shndx = sym.section;
      } else {
        shndx = indexOf(sym.section, user);
      }
      if (shndx >= SHN_LORESERVE && typeof sym.section !== 'number') {
        shndxView.setUint32((i + 1) * 4, shndx, true);
        shndx = SHN_XINDEX;
      }
      view.setUint32(at + SYM.name, strtab.add(sym.name), true);
      view.setUint8(at + SYM.info, ((sym.bind & 0xf) << 4) | (sym.type & 0xf));
      view.setUint8(at + SYM.other, sym.visibility & 0x3);
      view.setUint16(at + SYM.shndx, shndx, true);
      view.setBigUint64(at + SYM.value, BigInt.asUintN(64, sym.value), true);
      view.setBigUint64(at + SYM.size, BigInt(sym.size), true);
    });
  }

  // 4. Section headers in index order.
  const out: OutSection[] = [blank('', SHT_NULL)];
  for (const s of model.sections) {
    out.push(userSection(s, indexOf, relaIndex, symbolRef, symtabIndex));
    const relaAt = relaIndex.get(s);
    if (relaAt === undefined) continue;
    const rela = blank(`.rela${s.name}`, SHT_RELA);
    // Like gas: the relocations of a group member are in the group too.
    rela.flags = SHF_INFO_LINK | ((s.flags ?? 0n) & SHF_GROUP);
    rela.addralign = 8;
    rela.entsize = ELF64_RELA_SIZE;
    rela.link = symtabIndex;
    rela.info = indexOf(s, `relocations of ${s.name}`);
    rela.data = encodeRelocations(s, symbolRef);
    out.push(rela);
  }
  const symtabSection = blank('.symtab', SHT_SYMTAB);
  Object.assign(symtabSection, { data: symtab, addralign: 8, entsize: ELF64_SYM_SIZE, link: strtabIndex, info: firstGlobal });
  out.push(symtabSection);
  if (needShndx) {
    const shndxSection = blank('.symtab_shndx', SHT_SYMTAB_SHNDX);
    Object.assign(shndxSection, { data: shndxTable, addralign: 4, entsize: 4, link: symtabIndex });
    out.push(shndxSection);
  }
  const strtabSection = blank('.strtab', SHT_STRTAB);
  strtabSection.data = strtab.finish();
  out.push(strtabSection);
  const shstrtabSection = blank('.shstrtab', SHT_STRTAB);
  out.push(shstrtabSection);
  if (out.length !== sectionCount) throw new Error(`internal error: ${out.length} sections, expected ${sectionCount}`);

  const shstrtab = new StringTableBuilder();
  const nameOffsets = out.map((s) => (s.type === SHT_NULL ? 0 : shstrtab.add(s.name)));
  shstrtabSection.data = shstrtab.finish();

  // 5. Layout: each section's data at its alignment, then the header table.
  let offset = ELF64_EHDR_SIZE;
  for (const s of out.slice(1)) {
    if (s.type !== SHT_NOBITS) s.size = s.data.length;
    offset = alignUp(offset, Math.max(1, s.addralign));
    s.offset = offset;
    if (s.type !== SHT_NOBITS) offset += s.data.length;
  }
  const shoff = alignUp(offset, 8);
  const bytes = new Uint8Array(shoff + sectionCount * ELF64_SHDR_SIZE);
  const view = dataView(bytes);

  // 6. ELF header, with extended numbering when counts do not fit 16 bits.
  bytes.set(ELFMAG, 0);
  bytes[EI_CLASS] = ELFCLASS64;
  bytes[EI_DATA] = ELFDATA2LSB;
  bytes[EI_VERSION] = EV_CURRENT;
  bytes[EI_OSABI] = model.osabi ?? 0;
  bytes[EI_ABIVERSION] = model.abiVersion ?? 0;
  view.setUint16(EHDR.type, ET_REL, true);
  view.setUint16(EHDR.machine, model.machine ?? EM_X86_64, true);
  view.setUint32(EHDR.version, EV_CURRENT, true);
  view.setBigUint64(EHDR.shoff, BigInt(shoff), true);
  view.setUint32(EHDR.flags, model.flags ?? 0, true);
  view.setUint16(EHDR.ehsize, ELF64_EHDR_SIZE, true);
  view.setUint16(EHDR.shentsize, ELF64_SHDR_SIZE, true);
  const null0 = out[0] as OutSection;
  if (sectionCount >= SHN_LORESERVE) null0.size = sectionCount;
  view.setUint16(EHDR.shnum, sectionCount >= SHN_LORESERVE ? 0 : sectionCount, true);
  if (shstrtabIndex >= SHN_LORESERVE) null0.link = shstrtabIndex;
  view.setUint16(EHDR.shstrndx, shstrtabIndex >= SHN_LORESERVE ? SHN_XINDEX : shstrtabIndex, true);

  // 7. Contents and section headers.
  out.forEach((s, index) => {
    if (s.type !== SHT_NOBITS) bytes.set(s.data, s.offset);
    const at = shoff + index * ELF64_SHDR_SIZE;
    view.setUint32(at + SHDR.name, nameOffsets[index] as number, true);
    view.setUint32(at + SHDR.type, s.type, true);
    view.setBigUint64(at + SHDR.flags, s.flags, true);
    view.setBigUint64(at + SHDR.addr, s.addr, true);
    view.setBigUint64(at + SHDR.offset, BigInt(s.offset), true);
    view.setBigUint64(at + SHDR.size, BigInt(s.size), true);
    view.setUint32(at + SHDR.link, s.link, true);
    view.setUint32(at + SHDR.info, s.info, true);
    view.setBigUint64(at + SHDR.addralign, BigInt(s.addralign), true);
    view.setBigUint64(at + SHDR.entsize, BigInt(s.entsize), true);
  });
  return bytes;
}

function userSection(
  s: ModelSection,
  indexOf: (s: ModelSection, user: string) => number,
  relaIndex: ReadonlyMap<ModelSection, number>,
  symbolRef: (sym: ModelSymbol, user: string) => number,
  symtabIndex: number,
): OutSection {
  const user = `section ${s.name}`;
  const addralign = s.addralign ?? 1;
  if (!Number.isSafeInteger(addralign) || addralign < 0 || (addralign > 1 && (addralign & (addralign - 1)) !== 0)) {
    throw new RangeError(`${user}: sh_addralign ${addralign} is not a power of two`);
  }
  const section = blank(s.name, s.type);
  section.flags = s.flags ?? 0n;
  section.addr = s.addr ?? 0n;
  section.addralign = addralign;
  section.entsize = s.entsize ?? 0;
  section.data = s.type === SHT_NOBITS ? new Uint8Array(0) : (s.data ?? new Uint8Array(0));
  section.size = s.type === SHT_NOBITS ? (s.size ?? 0) : section.data.length;
  const link = s.link ?? 0;
  section.link = link === 'symtab' ? symtabIndex : typeof link === 'number' ? link : indexOf(link, `${user} sh_link`);
  const info = s.info ?? 0;
  section.info = typeof info === 'number' ? info : indexOf(info, `${user} sh_info`);

  if (s.type === SHT_GROUP) {
    // The contents are section indices, so they are rebuilt from the members.
    if (s.group === undefined) throw new RangeError(`${user}: an SHT_GROUP section needs its group`);
    const words = [s.group.flags];
    for (const member of s.group.members) {
      words.push(indexOf(member, `${user} member`));
      const rela = relaIndex.get(member);
      if (rela !== undefined) words.push(rela);
    }
    section.data = new Uint8Array(words.length * 4);
    const view = dataView(section.data);
    words.forEach((word, i) => view.setUint32(i * 4, word, true));
    section.size = section.data.length;
    section.link = symtabIndex;
    section.info = symbolRef(s.group.signature, `${user} signature`);
    section.entsize = 4;
  }
  return section;
}

function encodeRelocations(s: ModelSection, symbolRef: (sym: ModelSymbol, user: string) => number): Uint8Array {
  const relocations = s.relocations ?? [];
  const data = new Uint8Array(relocations.length * ELF64_RELA_SIZE);
  const view = dataView(data);
  relocations.forEach((r, i) => {
    const at = i * ELF64_RELA_SIZE;
    const symbol = r.symbol === null ? 0 : symbolRef(r.symbol, `relocation ${i} of ${s.name}`);
    view.setBigUint64(at + RELA.offset, BigInt(r.offset), true);
    view.setUint32(at + RELA.info, r.type, true);
    view.setUint32(at + RELA.info + 4, symbol, true);
    view.setBigInt64(at + RELA.addend, BigInt.asIntN(64, r.addend), true);
  });
  return data;
}

function blank(name: string, type: number): OutSection {
  return { name, type, flags: 0n, addr: 0n, addralign: type === SHT_NULL ? 0 : 1, entsize: 0, data: new Uint8Array(0), size: 0, link: 0, info: 0, offset: 0 };
}

function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align;
}

function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
