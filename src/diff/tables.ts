/**
 * Step "refuse changed tables": sections that are neither code, ordinary data, debug or link
 * metadata, nor one of the special sections describing code (special-sections.ts) are tables
 * the kernel reads at boot or registers once: PCI quirks (`.pci_fixup_header`), BTF ID sets
 * (`.BTF_ids`, which the BPF verifier consults), the kprobe blacklist. An entry added or
 * removed there has no symbol of its own, so comparing functions and data objects does not
 * see it, and the patch would look like "no code change" while its effect never reaches the
 * running kernel (drivers/iommu/intel/iommu.c adds a PCI quirk; kernel/bpf/bpf_lsm.c takes a
 * hook out of a BTF set). The whole section is compared, pre with post, modulo relocation
 * targets; a difference is refused by name: the running kernel's copy of the table does not
 * change, so the fix needs a hook.
 */
import { SHF_ALLOC, SHF_EXECINSTR, SHF_MERGE, SHT_NOBITS, STB_LOCAL, STT_SECTION, STV_DEFAULT, type ElfSymbol, type Section } from '../elf/index.js';
import { comparePieces } from './compare.js';
import type { DiffObject, ObjectPiece } from './object.js';
import type { DiffStep } from './pipeline.js';
import { isDescribingCode, isMetadata, isOrdinaryData } from './special-sections.js';

/** A section the kernel keeps as a table of entries (see above). */
export function isTableSection(section: Section): boolean {
  if ((section.flags & SHF_ALLOC) === 0n || (section.flags & SHF_EXECINSTR) !== 0n || (section.flags & SHF_MERGE) !== 0n) return false;
  if (section.type === SHT_NOBITS) return false;
  return !isMetadata(section.name) && !isOrdinaryData(section.name) && !isDescribingCode(section.name);
}

/** The whole section as one piece, for comparing it with comparePieces. */
function wholeSection(object: DiffObject, section: Section): ObjectPiece {
  const symbol: ElfSymbol = { index: -1, name: section.name, value: 0n, size: section.data.length, bind: STB_LOCAL, type: STT_SECTION, visibility: STV_DEFAULT, shndx: section.index, special: false };
  return { symbol, section, start: 0, end: section.data.length, canonical: section.name, relocations: object.elf.relaFor(section).slice().sort((a, b) => a.offset - b.offset) };
}

export const refuseChangedTables: DiffStep = {
  name: 'refuse changed tables',
  run(state) {
    const preTables = new Map(state.pre.elf.sections.filter(isTableSection).map((s) => [s.name, s]));
    for (const post of state.post.elf.sections.filter(isTableSection)) {
      const pre = preTables.get(post.name);
      preTables.delete(post.name);
      let why: string | undefined;
      let offset: number | undefined;
      if (!pre) why = `new table of ${post.data.length} bytes`;
      else {
        const verdict = comparePieces(state.pre, wholeSection(state.pre, pre), state.post, wholeSection(state.post, post), state.correlation);
        if (verdict.verdict === 'changed') ({ why, offset } = verdict);
      }
      if (why) state.refused.push({ kind: 'changed-table', symbol: post.name, section: post.name, ...(offset !== undefined ? { offset } : {}), reason: `changed table (${why}): the running kernel keeps its own copy of this table, read at boot or by code that does not change; the change needs a hook` });
    }
    for (const pre of preTables.values()) {
      state.refused.push({ kind: 'changed-table', symbol: pre.name, section: pre.name, reason: `changed table (all ${pre.data.length} bytes removed): the running kernel keeps its own copy of this table, read at boot or by code that does not change; the change needs a hook` });
    }
  },
};
