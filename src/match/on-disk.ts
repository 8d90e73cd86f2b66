/**
 * Run-pre matching against a module's file, for a module that is not loaded: the update's pre
 * code of a function must be that function in the `.ko`, byte for byte outside relocation
 * fields, with the same relocations (offset and type, and the symbol and addend where both
 * sides name a symbol). The file is what `modprobe` will load; the kernel proves the loaded
 * copy again (kmod/late.c). Debian builds modules without -ffunction-sections: the function is
 * found by its symbol inside `.text` (or `.text.unlikely`, …) and its relocations by offset.
 * For the same reason the assembler resolved there, with no relocation, a jump or call from one
 * function of a unit to another that the pre object (one section per function) relocates: the
 * displacement in the file must reach that function.
 */
import { definingSection, parseElf, readRelocatedField, relocationFieldSize, relocationInfo, relocationName, relocationType, SHF_MERGE, SHT_SYMTAB, STT_FUNC, STT_SECTION, type ElfFile, type ElfSymbol } from '../elf/index.js';
import { UserError } from '../host/errors.js';
import type { UpdateFunction, UpdateRelocation } from '../update/format.js';
import { decodeInstructions, instructionAt, type Instruction } from '../x86/decode.js';
import { ModuleFiles } from './module-targets.js';

export interface DiskMismatch {
  function: string;
  /** Offset from the function's entry of the first difference. */
  offset: number;
  reason: string;
}

/**
 * Where the file of module `name` ('-' and '_' alike, as KBUILD_MODNAME) of kernel `release`
 * is, by modules.dep under `root` (a test's temporary tree, or `/`): undefined when modules.dep
 * does not list it. A compressed file (.ko.xz, .ko.zst, .ko.gz) is refused by name: its code
 * cannot be compared without unpacking it, which tsplice does not do. A modules.dep that cannot
 * be read is refused by ModuleFiles (kind cannot-read).
 */
export function moduleFilePath(name: string, release: string, root = '/'): string | undefined {
  const path = new ModuleFiles(release, root).path(name);
  if (path !== undefined && !path.endsWith('.ko')) {
    throw new UserError(`The module file ${path} is compressed; tsplice proves fixes against uncompressed .ko files only.`, { kind: 'unsupported-file', object: path });
  }
  return path;
}

/** A relocation of one side, relative to the function's entry. */
interface FieldRelocation {
  offset: number;
  type: string;
  addend: bigint;
  /** The symbol's name; undefined where the target is a section, string or piece. */
  symbol?: string;
  /**
   * A static local GCC numbered per unit (`__key.12`, `__func__.3`): only its base name is
   * compared. Never a function: `foo.constprop.0` and `foo.constprop.1` are different code.
   */
  numbered?: boolean;
  /** Pre side: the function (or other piece) of the unit it reaches, and the offset in it. */
  place?: { kind: 'symbol' | 'piece'; name: string; offset: bigint };
}

/** A name as both sides write it: without the rename create gives carried externals. */
function plainName(name: string): string {
  const at = name.indexOf('.tsplice.');
  return at >= 0 ? name.slice(0, at) : name;
}

/** A C identifier GCC numbered (`__key.12`); a clone (`foo.constprop.1`) has more dots. */
const NUMBERED = /^[^.]+\.\d+$/;

/**
 * Whether two symbol targets name the same place: the same name (or numbered statics with the
 * same base name, since GCC's numbers depend on the rest of the unit) and the same addend (a
 * different field of the same global has a different addend and the same zero bytes).
 */
function sameTarget(p: FieldRelocation, d: FieldRelocation): boolean {
  if (p.symbol === undefined || d.symbol === undefined) return true; // linking moved sections
  if (p.addend !== d.addend) return false;
  if (p.symbol === d.symbol) return true;
  return !!p.numbered && !!d.numbered && p.symbol.replace(/\.\d+$/, '') === d.symbol.replace(/\.\d+$/, '');
}

/** The update's relocations of the pre code, as the comparison reads them. */
function updateRelocations(relocations: readonly UpdateRelocation[]): FieldRelocation[] {
  return relocations.map((r) => {
    const field: FieldRelocation = { offset: r.offset, type: r.type, addend: BigInt(r.addend) };
    if (r.target.kind === 'piece') return { ...field, place: { kind: 'piece', name: r.target.name, offset: BigInt(r.target.offset) } };
    if (r.target.kind !== 'symbol') return field;
    const symbol = plainName(r.target.name);
    return { ...field, symbol, numbered: r.target.local && NUMBERED.test(symbol), place: { kind: 'symbol', name: r.target.name, offset: 0n } };
  });
}

/**
 * The file's relocations inside [start, start + size) of `fn`'s section, relative to `start`.
 * A target is named only as the update names one (diff/object.ts): a symbol that is not a
 * section and not a label in a mergeable section.
 */
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
      const field: FieldRelocation = { offset: rela.offset - start, type: relocationName(rela.type), addend: rela.addend };
      const target = symbols[rela.symbolIndex];
      const inMergeable = target !== undefined && ((definingSection(elf, target)?.flags ?? 0n) & SHF_MERGE) !== 0n;
      if (!target || target.type === STT_SECTION || target.name === '' || inMergeable) {
        out.push(field);
        continue;
      }
      const symbol = plainName(target.name);
      out.push({ ...field, symbol, numbered: target.type !== STT_FUNC && NUMBERED.test(symbol) });
    }
  }
  return out.sort((a, b) => a.offset - b.offset);
}

/**
 * Whether the file holds, instead of the pre code's PC-relative relocation `p`, a displacement
 * the assembler resolved that reaches the same place: the function `p` names, defined in the
 * candidate's own section (a piece target names the place meant, which lies past the field by
 * the rest of the instruction, taken from the decoded pre code).
 */
function resolvedInPlace(p: FieldRelocation, elf: ElfFile, candidate: ElfSymbol, diskBytes: Uint8Array, instructions: () => Instruction[]): boolean {
  const info = relocationInfo(relocationType(p.type) ?? -1);
  const section = elf.sections[candidate.shndx];
  if (!info?.pcRelative || info.size !== 4 || !p.place || !section || p.offset + 4 > diskBytes.length) return false;
  const place = candidate.value + BigInt(p.offset);
  const displacement = readRelocatedField(diskBytes, p.offset, 4, true);
  let reached: bigint;
  if (p.place.kind === 'symbol') {
    reached = place + displacement - p.addend; // S + A - P = displacement
  } else {
    const instruction = instructionAt(instructions(), p.offset);
    if (!instruction || instruction.invalid) return false;
    reached = place + displacement + BigInt(instruction.offset + instruction.length - p.offset) - p.place.offset;
  }
  const name = p.place.name;
  return elf.symbolsIn(section).some((s) => s.name === name && s.value === reached);
}

/** One side's relocation for a message: `R_X86_64_PLT32 foo-4`, or `none`. */
function describe(r: FieldRelocation | undefined): string {
  if (!r) return 'none';
  if (r.place?.kind === 'piece') return `${r.type} ${r.place.name}+${r.place.offset}`;
  if (r.symbol === undefined) return `${r.type} (section)`;
  return `${r.type} ${r.symbol}${r.addend < 0n ? '' : '+'}${r.addend}`;
}

/** The first difference between the pre code and one candidate in the file, or undefined. */
function compare(fn: UpdateFunction, pre: NonNullable<UpdateFunction['pre']>, elf: ElfFile, candidate: ElfSymbol): DiskMismatch | undefined {
  const mismatch = (offset: number, reason: string): DiskMismatch => ({ function: fn.name, offset, reason });
  if (candidate.size !== pre.size) return mismatch(Math.min(candidate.size, pre.size), `size differs (disk ${candidate.size}, pre ${pre.size})`);
  const section = elf.sections[candidate.shndx];
  const start = Number(candidate.value);
  const diskBytes = section?.data.subarray(start, start + pre.size);
  if (!diskBytes || diskBytes.length !== pre.size) return mismatch(0, `its bytes lie outside its section ${section?.name ?? '?'}`);
  const preBytes = Buffer.from(pre.bytes, 'base64');

  // Relocation fields are skipped on both sides: the linker fills them.
  const preRelocations = updateRelocations(pre.relocations);
  const diskRelocations = fileRelocations(elf, candidate, pre.size);
  const field = new Set<number>();
  for (const r of [...preRelocations, ...diskRelocations]) for (let i = 0; i < relocationFieldSize(r.type); i++) field.add(r.offset + i);
  let byteAt: number | undefined;
  for (let i = 0; i < pre.size && byteAt === undefined; i++) if (!field.has(i) && preBytes[i] !== diskBytes[i]) byteAt = i;

  // Relocations: the same offsets, types, and where both name a symbol, the same symbol; or
  // a reference the file's assembler resolved to the same function.
  let decoded: Instruction[] | undefined;
  const instructions = () => (decoded ??= decodeInstructions(preBytes));
  const preAt = new Map(preRelocations.map((r) => [r.offset, r]));
  const diskAt = new Map(diskRelocations.map((r) => [r.offset, r]));
  const relocationAt = [...new Set([...preAt.keys(), ...diskAt.keys()])]
    .sort((a, b) => a - b)
    .find((offset) => {
      const p = preAt.get(offset);
      const d = diskAt.get(offset);
      if (p && !d) return !resolvedInPlace(p, elf, candidate, diskBytes, instructions);
      return !p || !d || p.type !== d.type || !sameTarget(p, d);
    });

  if (byteAt !== undefined && (relocationAt === undefined || byteAt < relocationAt)) {
    const hex = (b: number | undefined) => (b ?? 0).toString(16).padStart(2, '0');
    return mismatch(byteAt, `bytes differ (disk ${hex(diskBytes[byteAt])}, pre ${hex(preBytes[byteAt])})`);
  }
  if (relocationAt === undefined) return undefined;
  return mismatch(relocationAt, `relocations differ (disk ${describe(diskAt.get(relocationAt))}, pre ${describe(preAt.get(relocationAt))})`);
}

/**
 * Compares `fn`'s pre code with the function of that name in the module file `ko` (named
 * `file` in messages), so that a fix is never bound to a module it was not made for. A module
 * may have two statics of one name: any one matching is enough. Returns undefined on a match,
 * else the first difference (of the first candidate). A malformed file throws FormatError.
 */
export function matchOnDisk(fn: UpdateFunction, ko: Uint8Array, file: string): DiskMismatch | undefined {
  return matchOnDiskElf(fn, parseElf(ko, file), file);
}

/** matchOnDisk on a module file parsed once for all the functions an update replaces in it. */
export function matchOnDiskElf(fn: UpdateFunction, elf: ElfFile, file: string): DiskMismatch | undefined {
  const pre = fn.pre;
  if (!pre) throw new UserError(`Internal error: ${fn.name} has no pre code to prove against ${file}.`, { kind: 'internal', object: file, function: fn.name });
  if (Buffer.from(pre.bytes, 'base64').length !== pre.size) {
    throw new UserError(`The update's pre code of ${fn.name} holds ${Buffer.from(pre.bytes, 'base64').length} bytes, not its size ${pre.size}.`, { kind: 'bad-update', function: fn.name });
  }
  const candidates = elf.symbols.filter((s) => s.type === STT_FUNC && s.name === fn.name && definingSection(elf, s) !== undefined);
  if (candidates.length === 0) return { function: fn.name, offset: 0, reason: `not in ${file}` };
  let first: DiskMismatch | undefined;
  for (const candidate of candidates) {
    const mismatch = compare(fn, pre, elf, candidate);
    if (!mismatch) return undefined;
    first ??= mismatch;
  }
  return first;
}
