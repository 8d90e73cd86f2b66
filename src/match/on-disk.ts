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
import { definingSection, parseElf, SHF_ALLOC, readRelocatedField, relocationFieldSize, relocationInfo, relocationName, relocationType, SHF_MERGE, SHT_SYMTAB, STT_FUNC, STT_SECTION, type ElfFile, type ElfSymbol } from '../elf/index.js';
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
  /** Disk side: the file's symbol it names, or the section it names for a static there. */
  fileSymbol?: ElfSymbol;
  fileSection?: number;
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
      if (target?.type === STT_SECTION && !inMergeable) {
        out.push({ ...field, fileSection: target.shndx });
        continue;
      }
      if (!target || target.name === '' || inMergeable) {
        out.push(field);
        continue;
      }
      const symbol = plainName(target.name);
      out.push({ ...field, symbol, numbered: target.type !== STT_FUNC && NUMBERED.test(symbol), fileSymbol: target });
    }
  }
  return out.sort((a, b) => a.offset - b.offset);
}

/**
 * The file's symbol reached where it holds, instead of the pre code's PC-relative relocation
 * `p`, a displacement the assembler resolved: the function `p` names, defined in the
 * candidate's own section (a piece target names the place meant, which lies past the field by
 * the rest of the instruction, taken from the decoded pre code). Undefined when the
 * displacement reaches no symbol of that name.
 */
function reachedInPlace(p: FieldRelocation, elf: ElfFile, candidate: ElfSymbol, diskBytes: Uint8Array, instructions: () => Instruction[]): ElfSymbol | undefined {
  const info = relocationInfo(relocationType(p.type) ?? -1);
  const section = elf.sections[candidate.shndx];
  if (!info?.pcRelative || info.size !== 4 || !p.place || !section || p.offset + 4 > diskBytes.length) return undefined;
  const place = candidate.value + BigInt(p.offset);
  const displacement = readRelocatedField(diskBytes, p.offset, 4, true);
  let reached: bigint;
  if (p.place.kind === 'symbol') {
    reached = place + displacement - p.addend; // S + A - P = displacement
  } else {
    const instruction = instructionAt(instructions(), p.offset);
    if (!instruction || instruction.invalid) return undefined;
    reached = place + displacement + BigInt(instruction.offset + instruction.length - p.offset) - p.place.offset;
  }
  const name = p.place.name;
  return elf.symbolsIn(section).find((s) => s.name === name && s.value === reached);
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
      if (p && !d) return !reachedInPlace(p, elf, candidate, diskBytes, instructions);
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
  const proof = proveCopyOnDisk(fn, elf, file);
  return 'mismatch' in proof ? proof.mismatch : undefined;
}

/** A function proven in a module file, with the names the core module binds it and its statics by. */
export interface DiskCopy {
  /** The function's name, `NAME#N` when the file has several (fileCopyName). */
  copy: string;
  /** Each static of the unit the pre code refers to (by its name there) -> its name in the file. */
  statics: Map<string, string>;
}

/**
 * The copy of `fn` in the module file that its pre code matches, by the name the core module
 * binds it by (fileCopyName), or the first difference (of the first candidate). A module may
 * have two statics of one name in different units: the one that matches is the fix's; two that
 * both match cannot be told apart and are refused (kind ambiguous).
 */
export function proveCopyOnDisk(fn: UpdateFunction, elf: ElfFile, file: string): DiskCopy | { mismatch: DiskMismatch } {
  const pre = fn.pre;
  if (!pre) throw new UserError(`Internal error: ${fn.name} has no pre code to prove against ${file}.`, { kind: 'internal', object: file, function: fn.name });
  if (Buffer.from(pre.bytes, 'base64').length !== pre.size) {
    throw new UserError(`The update's pre code of ${fn.name} holds ${Buffer.from(pre.bytes, 'base64').length} bytes, not its size ${pre.size}.`, { kind: 'bad-update', function: fn.name });
  }
  const candidates = elf.symbols.filter((s) => s.type === STT_FUNC && s.name === fn.name && definingSection(elf, s) !== undefined);
  if (candidates.length === 0) return { mismatch: { function: fn.name, offset: 0, reason: `not in ${file}` } };
  let first: DiskMismatch | undefined;
  const matching: ElfSymbol[] = [];
  for (const candidate of candidates) {
    const mismatch = compare(fn, pre, elf, candidate);
    if (!mismatch) matching.push(candidate);
    first ??= mismatch;
  }
  if (matching.length > 1) {
    throw new UserError(`${fn.name}: the module file ${file} has ${matching.length} functions of that name that all match the pre code; tsplice cannot tell which one the fix is for.`, {
      kind: 'ambiguous',
      object: file,
      unit: fn.unit,
      function: fn.name,
    });
  }
  const [proven] = matching;
  if (proven) {
    // The statics the proven copy refers to, as the file's relocations name them.
    const statics = new Map<string, string>();
    const fileAt = new Map(fileRelocations(elf, proven, pre.size).map((r) => [r.offset, r]));
    const start = Number(proven.value);
    const diskBytes = elf.sections[proven.shndx]?.data.subarray(start, start + pre.size) ?? new Uint8Array();
    let decoded: Instruction[] | undefined;
    const instructions = () => (decoded ??= decodeInstructions(Buffer.from(pre.bytes, 'base64')));
    const preAt = new Map(updateRelocations(pre.relocations).map((r) => [r.offset, r]));
    for (const r of pre.relocations) {
      // A static of the unit: a local symbol, or an object with a section of its own (a piece).
      if (!(r.target.kind === 'symbol' && r.target.local) && r.target.kind !== 'piece') continue;
      const name = plainName(r.target.name);
      const field = fileAt.get(r.offset);
      const preField = preAt.get(r.offset);
      // A call the file's assembler resolved in place reaches the copy meant.
      const named = field ? staticNamed(elf, field, name, BigInt(r.addend)) : preField && reachedInPlace(preField, elf, proven, diskBytes, instructions);
      if (named) statics.set(name, fileCopyName(elf, named));
    }
    return { copy: fileCopyName(elf, proven), statics };
  }
  return { mismatch: first ?? { function: fn.name, offset: 0, reason: `not in ${file}` } };
}

/**
 * The file's symbol a relocation of the proven copy reaches for the pre code's static `name`
 * (with the pre code's addend): the symbol it names, or, where the assembler wrote the section
 * and an offset as it does for a static, the symbol of that name at that offset.
 */
function staticNamed(elf: ElfFile, field: FieldRelocation | undefined, name: string, preAddend: bigint): ElfSymbol | undefined {
  if (field?.fileSymbol) return field.fileSymbol;
  const section = field?.fileSection === undefined ? undefined : elf.sections[field.fileSection];
  if (!field || !section) return undefined;
  const at = field.addend - preAddend;
  const base = (n: string) => (NUMBERED.test(n) ? n.replace(/\.\d+$/, '') : n);
  return elf.symbolsIn(section).find((s) => s.value === at && s.type !== STT_SECTION && base(s.name) === base(name));
}

/** Sections the module loader takes SHF_ALLOC away from: their symbols are not kept. */
const NOT_KEPT = new Set(['.modinfo', '__versions']);

/**
 * The name the core module binds `symbol` of a module file by (kmod/late.c,
 * tsplice_module_symbol): the bare name when it is the file's one symbol of that name that
 * the loader keeps, else `NAME#N`, its place (from 1) among those, in symbol-table order. Kept
 * are the symbols kallsyms lists after init: defined in an allocated section that is not init
 * code or data (`.init*`) and not one the loader drops (.modinfo, __versions).
 */
export function fileCopyName(elf: ElfFile, symbol: ElfSymbol): string {
  const kept = (s: ElfSymbol): boolean => {
    const section = definingSection(elf, s);
    return section !== undefined && (section.flags & SHF_ALLOC) !== 0n && !section.name.startsWith('.init') && !NOT_KEPT.has(section.name);
  };
  const copies = elf.symbols.filter((s) => s.name === symbol.name && kept(s));
  const place = copies.indexOf(symbol);
  return copies.length <= 1 || place < 0 ? symbol.name : `${symbol.name}#${place + 1}`;
}
