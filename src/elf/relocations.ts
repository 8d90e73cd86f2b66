// Relocation sections (SHT_RELA, and SHT_REL whose addend is stored in the
// relocated field itself). r_info packs the symbol index (high 32 bits) and the
// type (low 32 bits).

import type { ByteReader } from './byte-reader.js';
import { EM_X86_64, ET_REL, ELF64_REL_SIZE, ELF64_RELA_SIZE, ELF64_SYM_SIZE, SHF_ALLOC, SHT_NOBITS, SHT_RELA } from './constants.js';
import { RELA } from './layout.js';
import { describeSection } from './sections.js';
import type { ElfHeader, Rela, Section } from './types.js';
import { readRelocatedField, relocationInfo, relocationName } from './x86-64-relocations.js';

/** Number of valid symbol indices for a relocation section (only 0 if it has no symbol table). */
function symbolLimit(sections: readonly Section[], relocationSection: Section): number {
  if (relocationSection.link === 0) return 1;
  return (sections[relocationSection.link] as Section).size / ELF64_SYM_SIZE;
}

function entrySize(section: Section): number {
  return section.type === SHT_RELA ? ELF64_RELA_SIZE : ELF64_REL_SIZE;
}

/**
 * Cheap check of every entry's symbol index, run by parseElf on all relocation
 * sections (vmlinux linked with --emit-relocs has millions of entries, whose
 * full decoding is deferred to readRelocations).
 */
export function checkRelocationSymbols(r: ByteReader, sections: readonly Section[], section: Section): void {
  const limit = symbolLimit(sections, section);
  const size = entrySize(section);
  for (let i = 0, at = section.offset; i < section.size / size; i++, at += size) {
    const symbolIndex = r.u32(at + RELA.info + 4);
    if (symbolIndex >= limit) {
      throw r.error(
        `relocation ${i} in ${describeSection(section)}: symbol index ${symbolIndex} out of range (${limit} symbols)`,
        at + RELA.info,
      );
    }
  }
}

export function readRelocations(
  r: ByteReader,
  header: ElfHeader,
  sections: readonly Section[],
  section: Section,
): Rela[] {
  checkRelocationSymbols(r, sections, section);
  const size = entrySize(section);
  const target = section.info !== 0 ? (sections[section.info] as Section) : undefined;
  const result: Rela[] = [];
  for (let i = 0, at = section.offset; i < section.size / size; i++, at += size) {
    const what = `relocation ${i} in ${describeSection(section)}`;
    const offset = r.safeU64(at + RELA.offset, `${what} r_offset`);
    const type = r.u32(at + RELA.info);
    const symbolIndex = r.u32(at + RELA.info + 4);
    if (header.type === ET_REL && target !== undefined && target.type !== SHT_NOBITS) {
      // In a relocatable object r_offset is relative to the target section.
      const width = header.machine === EM_X86_64 ? (relocationInfo(type)?.size ?? 0) : 0;
      if (offset + width > target.size) {
        throw r.error(
          `${what}: ${relocationName(type)} at 0x${offset.toString(16)} extends past the end of ${describeSection(target)} (size 0x${target.size.toString(16)})`,
          at + RELA.offset,
        );
      }
    }
    const addend =
      section.type === SHT_RELA
        ? r.i64(at + RELA.addend)
        : implicitAddend(r, header, sections, target, offset, type, at, what);
    result.push(Object.freeze({ offset, type, symbolIndex, addend }));
  }
  return result;
}

/** SHT_REL: the addend is the current content of the relocated field. */
function implicitAddend(
  r: ByteReader,
  header: ElfHeader,
  sections: readonly Section[],
  target: Section | undefined,
  offset: number,
  type: number,
  entryAt: number,
  what: string,
): bigint {
  const info = header.machine === EM_X86_64 ? relocationInfo(type) : undefined;
  if (info === undefined) {
    throw r.error(`${what}: cannot read the implicit addend of unknown relocation type ${type}`, entryAt + RELA.info);
  }
  if (info.size === 0) return 0n;
  // ET_REL: r_offset is a section offset. Otherwise it is an address, inside
  // the target section if there is one, else inside whichever section maps it.
  const place =
    header.type === ET_REL
      ? target
      : (target ?? sections.find((s) => (s.flags & SHF_ALLOC) !== 0n && s.type !== SHT_NOBITS && BigInt(offset) >= s.addr && BigInt(offset) < s.addr + BigInt(s.size)));
  const position = place === undefined ? -1 : header.type === ET_REL ? offset : Number(BigInt(offset) - place.addr);
  // TLSDESC fills two words; its addend lives in the second.
  const field = info.size === 16 ? position + 8 : position;
  const width = info.size === 16 ? 8 : info.size;
  if (place === undefined || place.type === SHT_NOBITS || field < 0 || field + width > place.data.length) {
    throw r.error(`${what}: r_offset 0x${offset.toString(16)} is not inside the relocated section's data`, entryAt + RELA.offset);
  }
  return readRelocatedField(place.data, field, width, info.signed);
}
