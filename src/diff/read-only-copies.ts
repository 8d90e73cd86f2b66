/**
 * Step "copy changed read-only data": a stable fix often only adds a row to a constant table
 * that the unit's own code looks things up in (a USB or HID quirk list, a DMI match table, a
 * netlink attribute policy, a keymap). The running table cannot be changed in place (it is
 * read-only, and code may be reading it at any moment), but it need not be: the update carries
 * the new table as a copy of its own, and every function of the unit that refers to the table
 * is carried too, so that after the switch nothing of the unit reads the old one.
 *
 * The old table stays where it is, unchanged, so a pointer into it that old code stored stays
 * valid and keeps the old value, as any lookup done before the switch does. That is only sound
 * when the unit's code is the table's only reader, so a table qualifies only when:
 *   - it is a static of the unit (no other unit names it) in a read-only section of its own;
 *   - no data refers to it: a pointer the kernel keeps in a structure (a driver's ID table, a
 *     policy nested in another, an ops table) would keep reading the old copy;
 *   - no other name is given to it (MODULE_DEVICE_TABLE's `__mod_…_device_table` alias);
 *   - no init code refers to it: that code ran at boot, and what it did with the table stays.
 * Anything else stays refused as a changed initial value (a hook's business, issue 13).
 */
import { type Section, SHF_EXECINSTR, STB_LOCAL, STT_SECTION } from '../elf/index.js';
import { isAllocated, isInit, isWritable, type DiffObject, type ObjectPiece } from './object.js';
import { comparePieces } from './compare.js';
import type { DiffState, DiffStep } from './pipeline.js';

/** The functions of `object` that refer to `piece`, or why the piece does not qualify. */
export function readersOf(object: DiffObject, piece: ObjectPiece): { readers: ObjectPiece[] } | { why: string } {
  const { elf } = object;
  if (piece.symbol.bind !== STB_LOCAL) return { why: 'it is not a static of the unit' };
  if (isWritable(piece.section) || !piece.section.name.startsWith('.rodata.')) return { why: 'it is not read-only data in a section of its own' };
  const named = elf.symbols.filter((s) => s.index !== 0 && s.shndx === piece.section.index && s.name !== '' && s.type !== STT_SECTION);
  if (named.some((s) => s !== piece.symbol)) return { why: `it has another name (${named.find((s) => s !== piece.symbol)?.name ?? ''})` };
  const readers = new Set<ObjectPiece>();
  for (const section of elf.sections) {
    if (!isAllocated(section)) continue;
    for (const rela of elf.relaFor(section)) {
      const symbol = elf.symbols[rela.symbolIndex];
      if (!symbol || symbol.shndx !== piece.section.index) continue;
      if (section === piece.section) continue;
      if (!isCode(section)) return { why: `data refers to it (from ${section.name})` };
      const reader = object.pieceAt(section, rela.offset);
      if (!reader || !object.functions.includes(reader)) return { why: `code outside a function refers to it (${section.name})` };
      if (isInit(reader)) return { why: `init code refers to it (${reader.symbol.name})` };
      readers.add(reader);
    }
  }
  return { readers: [...readers] };
}

function isCode(section: Section): boolean {
  return (section.flags & SHF_EXECINSTR) !== 0n;
}

export const copyChangedReadOnlyData: DiffStep = {
  name: 'copy changed read-only data',
  run(state: DiffState) {
    const carried = new Set(state.functions.map((f) => f.post));
    for (const post of state.post.dataObjects) {
      const pre = state.correlation.postToPre.get(post);
      if (!pre || pre.symbol.bind !== STB_LOCAL || isWritable(pre.section)) continue;
      if (state.pre.isConstantLabel(pre) && state.post.isConstantLabel(post)) continue;
      if (comparePieces(state.pre, pre, state.post, post, state.correlation).verdict !== 'changed') continue;
      const found = readersOf(state.post, post);
      if ('why' in found) continue;
      state.data.push({ name: post.symbol.name, status: 'copy', section: post.section.name, post });
      for (const reader of found.readers) {
        if (carried.has(reader)) continue;
        const preReader = state.correlation.postToPre.get(reader);
        state.functions.push({
          name: reader.symbol.name,
          status: preReader ? 'changed' : 'new',
          section: reader.section.name,
          why: `reads ${post.symbol.name}, whose value changed: the update carries its own copy`,
          post: reader,
          ...(preReader ? { pre: preReader } : {}),
        });
        carried.add(reader);
      }
    }
  },
};
