/**
 * Run-pre matching against a module's file, for a module that is not loaded: the update's pre
 * code of a function must be that function in the `.ko`, byte for byte outside relocation
 * fields, with the same relocations (offset and type, and the symbol's name where both sides
 * name one). The file is what `modprobe` will load; the kernel proves the loaded copy again
 * (kmod/late.c). Debian builds modules without -ffunction-sections: the function is found by
 * its symbol inside `.text` (or `.text.unlikely`, …) and its relocations by their offsets.
 */
import { relocationInfo, relocationName, relocationType, SHT_SYMTAB, STT_FUNC, STT_SECTION, type ElfFile, type ElfSymbol, parseElf } from '../elf/index.js';
import type { UpdateFunction, UpdateRelocation } from '../update/format.js';

export interface DiskMismatch {
  function: string;
  /** Offset from the function's entry of the first difference. */
  offset: number;
  reason: string;
}

/** A relocation of one side, relative to the function's entry. */
interface FieldRelocation {
  offset: number;
  type: string;
  /** The symbol's name, or undefined where the target is a section, string or piece. */
  symbol?: string;
}

/** Field width of a relocation type by name (4 when the type is unknown: the common width). */
function fieldSize(type: string): number {
  const number = relocationType(type);
  return (number === undefined ? undefined : relocationInfo(number)?.size) ?? 4;
}

/** A name as both sides write it: without the rename create gives carried externals. */
function plainName(name: string): string {
  const at = name.indexOf('.tsplice.');
  return at >= 0 ? name.slice(0, at) : name;
}

/**
 * Whether two symbol names name the same thing: equal, or statics GCC numbered per unit
 * (`__key.12`, `__func__.3`) whose base names are equal.
 */
function sameSymbol(a: string, b: string): boolean {
  if (a === b) return true;
  const base = (n: string) => n.replace(/\.\d+$/, '');
  return /\.\d+$/.test(a) && /\.\d+$/.test(b) && base(a) === base(b);
}

function updateRelocations(relocations: readonly UpdateRelocation[]): FieldRelocation[] {
  return relocations.map((r) => ({ offset: r.offset, type: r.type, ...(r.target.kind === 'symbol' ? { symbol: plainName(r.target.name) } : {}) }));
}

/** The file's relocations inside [start, start + size) of `fn`'s section, relative to `start`. */
function fileRelocations(elf: ElfFile, fn: ElfSymbol, size: number): FieldRelocation[] {
  const section = elf.sections[fn.shndx];
  if (!section) return [];
  const start = Number(fn.value);
  const out: FieldRelocation[] = [];
  for (const relSection of elf.relocationSectionsFor(section)) {
    const table = elf.sections[relSection.link];
    const symbols = table && table.type === SHT_SYMTAB ? elf.symbolTable(table) : elf.symbols;
    for (const rela of elf.relocations(relSection)) {
      if (rela.offset < start || rela.offset >= start + size) continue;
      const target = symbols[rela.symbolIndex];
      const named = target && target.type !== STT_SECTION && target.name !== '';
      out.push({ offset: rela.offset - start, type: relocationName(rela.type), ...(named ? { symbol: target.name } : {}) });
    }
  }
  return out.sort((a, b) => a.offset - b.offset);
}

/** The first difference between the pre code and one candidate in the file, or undefined. */
function compare(fn: UpdateFunction, elf: ElfFile, candidate: ElfSymbol): DiskMismatch | undefined {
  const pre = fn.pre;
  if (!pre) return undefined;
  const preBytes = Buffer.from(pre.bytes, 'base64');
  if (candidate.size !== pre.size) {
    return { function: fn.name, offset: Math.min(candidate.size, pre.size), reason: `size differs (file ${candidate.size}, pre ${pre.size})` };
  }
  const section = elf.sections[candidate.shndx];
  const start = Number(candidate.value);
  const fileBytes = section?.data.subarray(start, start + pre.size);
  if (!fileBytes || fileBytes.length !== pre.size) return { function: fn.name, offset: 0, reason: `its bytes are outside its section ${section?.name ?? '?'}` };
  const preRelocations = updateRelocations(pre.relocations);
  const diskRelocations = fileRelocations(elf, candidate, pre.size);
  const field = new Set<number>();
  for (const r of [...preRelocations, ...diskRelocations]) for (let i = 0; i < fieldSize(r.type); i++) field.add(r.offset + i);
  const byteAt = [...Array(pre.size).keys()].find((i) => !field.has(i) && preBytes[i] !== fileBytes[i]);
  const disk = new Map(diskRelocations.map((r) => [r.offset, r]));
  const relocationAt = [...new Set([...preRelocations.map((r) => r.offset), ...disk.keys()])].sort((a, b) => a - b).find((offset) => {
    const p = preRelocations.find((r) => r.offset === offset);
    const d = disk.get(offset);
    return !p || !d || p.type !== d.type || (p.symbol !== undefined && d.symbol !== undefined && !sameSymbol(p.symbol, d.symbol));
  });
  if (byteAt === undefined && relocationAt === undefined) return undefined;
  if (byteAt !== undefined && (relocationAt === undefined || byteAt < relocationAt)) {
    return { function: fn.name, offset: byteAt, reason: `bytes differ (file ${(fileBytes[byteAt] ?? 0).toString(16).padStart(2, '0')}, pre ${(preBytes[byteAt] ?? 0).toString(16).padStart(2, '0')})` };
  }
  const offset = relocationAt ?? 0;
  const p = preRelocations.find((r) => r.offset === offset);
  const d = disk.get(offset);
  const describe = (r: FieldRelocation | undefined) => (r ? `${r.type}${r.symbol ? ` ${r.symbol}` : ''}` : 'none');
  return { function: fn.name, offset, reason: `relocations differ (file ${describe(d)}, pre ${describe(p)})` };
}

/**
 * Compares `fn`'s pre code with the function of that name in the module file `ko` (named
 * `file` in messages). A module may have two statics of one name: any one matching is enough.
 * Returns undefined on a match, else the first difference (of the first candidate).
 */
export function matchOnDisk(fn: UpdateFunction, ko: Uint8Array, file: string): DiskMismatch | undefined {
  const elf = parseElf(ko, file);
  const candidates = elf.symbols.filter((s) => s.type === STT_FUNC && s.name === fn.name && !s.special && s.shndx !== 0);
  if (candidates.length === 0) return { function: fn.name, offset: 0, reason: `not in ${file}` };
  let first: DiskMismatch | undefined;
  for (const candidate of candidates) {
    const mismatch = compare(fn, elf, candidate);
    if (!mismatch) return undefined;
    first ??= mismatch;
  }
  return first;
}
