/**
 * The kernel's special sections: tables whose entries describe a place in the code (an
 * exception fixup, a patchable alternative, an ftrace call site, …). An update carries the
 * entries that belong to the code it carries, so the kernel's module loader treats the new
 * code as it treats its own. Entry layouts are those of Linux 6.1 on x86-64; the first field
 * of every entry is the code address it describes.
 */
import { definingSection, relocationInfo, STT_SECTION, type ElfSymbol, type Rela } from '../elf/index.js';
import type { DiffObject, ObjectPiece } from './object.js';

export interface SpecialSectionLayout {
  name: string;
  /** Bytes per entry. */
  entrySize: number;
  /** Why it matters, for documentation and messages. */
  holds: string;
}

export const SPECIAL_SECTIONS: readonly SpecialSectionLayout[] = [
  { name: '__bug_table', entrySize: 12, holds: 'BUG/WARN sites (struct bug_entry, relative pointers)' },
  { name: '__ex_table', entrySize: 12, holds: 'exception fixups (struct exception_table_entry)' },
  { name: '.altinstructions', entrySize: 12, holds: 'alternatives (struct alt_instr)' },
  { name: '.parainstructions', entrySize: 16, holds: 'paravirt call sites (struct paravirt_patch_site)' },
  { name: '.smp_locks', entrySize: 4, holds: 'lock prefixes (s32 offsets)' },
  { name: '__jump_table', entrySize: 16, holds: 'jump labels (struct jump_entry)' },
  { name: '.static_call_sites', entrySize: 8, holds: 'static call sites (struct static_call_site)' },
  { name: '.retpoline_sites', entrySize: 4, holds: 'retpoline thunk calls (s32 offsets)' },
  { name: '.return_sites', entrySize: 4, holds: 'return thunk jumps (s32 offsets)' },
  { name: '__mcount_loc', entrySize: 8, holds: '__fentry__ call sites (addresses)' },
  { name: '.orc_unwind_ip', entrySize: 4, holds: 'ORC unwind table addresses (parallel to .orc_unwind)' },
];

/**
 * Sections that may point into code but describe nothing the new code needs: debug info,
 * link-time discards, export and initcall tables of the built-in kernel, the printk index.
 */
const METADATA_SECTION = /^(\.eh_frame|\.debug_|\.rela\.debug_|\.discard|\.note|\.comment|\.BTF($|\.)|_*__ksymtab|_*__kcrctab|\.modinfo|__param|\.initcall|\.con_initcall|\.printk_index|__dyndbg|\.orc_unwind$|\.altinstr_replacement|\.altinstr_aux|\.init\.|\.exit\.|__tracepoints_ptrs|_ftrace_events|\.ref\.data|__patchable_function_entries|\.tsplice\.)/;

/** Ordinary data: a pointer from here to a changed function reaches it through its entry jump. */
const ORDINARY_DATA = /^(\.data|\.rodata|\.bss|\.tbss|\.tdata)/;

export function isMetadata(name: string): boolean {
  return METADATA_SECTION.test(name);
}

export function isOrdinaryData(name: string): boolean {
  return ORDINARY_DATA.test(name);
}

/** One of SPECIAL_SECTIONS, whose entries describe places in the code. */
export function isDescribingCode(name: string): boolean {
  return SPECIAL_SECTIONS.some((l) => l.name === name);
}

export interface SpecialEntry {
  section: string;
  /** Index of the entry in its section. */
  index: number;
  /** The function the entry describes, and where in it. */
  owner: ObjectPiece;
  offsetInOwner: bigint;
  bytes: Uint8Array;
  relocations: Rela[];
}

export interface SpecialScan {
  entries: SpecialEntry[];
  /** Sections tsplice does not know that point into carried code. */
  unknown: { section: string; owner: ObjectPiece }[];
}

/** The function a relocation points into, and the offset in it, if any. */
function codeTarget(object: DiffObject, rela: Rela): { piece: ObjectPiece; offset: bigint } | undefined {
  const symbol = object.elf.symbols[rela.symbolIndex] as ElfSymbol | undefined;
  if (!symbol) return undefined;
  if (symbol.type === STT_SECTION) {
    const section = definingSection(object.elf, symbol);
    if (!section) return undefined;
    // Data fields are relative to themselves: the place meant is symbol + addend.
    const piece = object.pieceAt(section, Number(rela.addend));
    return piece ? { piece, offset: rela.addend - BigInt(piece.start) } : undefined;
  }
  const piece = object.pieceOf(symbol);
  return piece ? { piece, offset: rela.addend } : undefined;
}

/** The special-section entries describing carried code, and unknown sections that point into it. */
export function scanSpecialSections(object: DiffObject, carried: ReadonlySet<ObjectPiece>): SpecialScan {
  const entries: SpecialEntry[] = [];
  const unknown: { section: string; owner: ObjectPiece }[] = [];
  const layouts = new Map(SPECIAL_SECTIONS.map((l) => [l.name, l]));
  for (const section of object.elf.sections) {
    if (section.index === 0 || section.type === 4 /* SHT_RELA */ || section.type === 9 /* SHT_REL */) continue;
    const relas = object.elf.relaFor(section);
    if (relas.length === 0) continue;
    const layout = layouts.get(section.name);
    if (layout) {
      const byEntry = new Map<number, Rela[]>();
      for (const rela of relas) {
        const index = Math.floor(rela.offset / layout.entrySize);
        const list = byEntry.get(index) ?? [];
        list.push(rela);
        byEntry.set(index, list);
      }
      for (const [index, list] of byEntry) {
        const first = list.find((r) => r.offset === index * layout.entrySize);
        const target = first ? codeTarget(object, first) : undefined;
        if (!target || !carried.has(target.piece)) continue;
        const start = index * layout.entrySize;
        entries.push({
          section: section.name,
          index,
          owner: target.piece,
          offsetInOwner: target.offset,
          bytes: section.data.slice(start, start + layout.entrySize),
          relocations: list.map((r) => ({ ...r, offset: r.offset - start })),
        });
      }
      continue;
    }
    if (METADATA_SECTION.test(section.name) || ORDINARY_DATA.test(section.name) || (section.flags & 4n) !== 0n /* SHF_EXECINSTR */) continue;
    for (const rela of relas) {
      if (!relocationInfo(rela.type)) continue;
      const target = codeTarget(object, rela);
      if (target && carried.has(target.piece) && target.piece.symbol.type === 2 /* STT_FUNC */) {
        unknown.push({ section: section.name, owner: target.piece });
        break;
      }
    }
  }
  return { entries, unknown };
}

/** Byte offset of `line` in struct bug_entry (disp, file disp, then u16 line, u16 flags). */
const BUG_ENTRY_LINE = 8;

/**
 * The source lines of each function's BUG/WARN sites, in table order. A function whose code is
 * unchanged but whose lines moved (lines inserted above it) differs only here.
 */
export function bugLines(object: DiffObject): Map<ObjectPiece, number[]> {
  const lines = new Map<ObjectPiece, number[]>();
  const table = object.elf.sectionByName('__bug_table');
  if (!table) return lines;
  const entrySize = 12;
  for (const rela of object.elf.relaFor(table)) {
    if (rela.offset % entrySize !== 0) continue;
    const owner = codeTarget(object, rela);
    if (!owner) continue;
    const at = rela.offset + BUG_ENTRY_LINE;
    const line = (table.data[at] ?? 0) | ((table.data[at + 1] ?? 0) << 8);
    const list = lines.get(owner.piece) ?? [];
    list.push(line);
    lines.set(owner.piece, list);
  }
  return lines;
}
