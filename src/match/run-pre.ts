/**
 * Run-pre matching: prove that the running kernel holds, at some address, exactly the pre code
 * of each function an update replaces, and learn from the running bytes where every symbol
 * that code refers to lives — static functions and variables, duplicate names and compiler
 * clones included — with no debug information and no System.map.
 *
 * Bytes must be equal except at relocation fields (where the running bytes tell the target,
 * checked against /proc/kallsyms where the name is there) and at the sites the kernel rewrote
 * at boot (ftrace, return thunks, alternatives, paravirt, static calls, jump labels), where
 * only the forms that rewrite can produce are accepted.
 */
import {
  R_X86_64_32,
  R_X86_64_32S,
  R_X86_64_64,
  R_X86_64_GOTPCREL,
  R_X86_64_GOTPCRELX,
  R_X86_64_PC32,
  R_X86_64_PC64,
  R_X86_64_PLT32,
  R_X86_64_REX_GOTPCRELX,
  readRelocatedField,
  relocationInfo,
  relocationType,
  type RelocationInfo,
} from '../elf/index.js';
import { UserError } from '../host/errors.js';
import type { UpdateFunction, UpdatePackage, UpdateRelocation } from '../update/format.js';
import { decodeInstructions, instructionAt } from '../x86/decode.js';
import { isText, type KernelSymbol, type KernelSymbols } from './kallsyms.js';
import { acceptsRunningForm, rewriteSites, type RewriteSite } from './sites.js';

/** Reads running kernel memory (kcore in production; a buffer in tests). */
export interface KernelMemory {
  read(address: bigint, length: number): Uint8Array;
}

export interface LearnedSymbol {
  name: string;
  address: bigint;
  /** A static (or a place in an object) of the unit the referring code is from: its name is only unique there. */
  local?: boolean;
  /** Where it was learned: function and offset. */
  from: string;
}

export interface MatchedFunction {
  name: string;
  unit: string;
  runningAddress: bigint;
  size: number;
  /** The __fentry__ site holds a call: ftrace is tracing the function now. */
  traced: boolean;
  /**
   * The running bytes from the entry (at most 32) that matched the pre code: what the switch
   * must still find there. Taken from the match, never read again later: bytes read after it
   * could hold a kprobe's int3 armed meanwhile, which the jmp would then be written over.
   */
  entry: Uint8Array;
}

export interface MatchResult {
  functions: MatchedFunction[];
  /** Symbol name -> running address, for every target the pre code names. */
  learned: Map<string, LearnedSymbol>;
}

export interface Mismatch {
  function: string;
  candidate: bigint;
  offset: number;
  expected: string;
  running: string;
  reason: string;
}

export class MatchError extends UserError {
  constructor(readonly mismatch: Mismatch) {
    super(
      `The running kernel does not match the update: ${mismatch.function} at 0x${mismatch.candidate.toString(16)}+0x${mismatch.offset.toString(16)}: ${mismatch.reason} (expected ${mismatch.expected}, running ${mismatch.running}).`,
    );
  }
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex').replace(/(..)(?!$)/g, '$1 ');

/**
 * The relocation types matching reads a target from: in the linked kernel their field holds
 * the target's address (S + A) or its distance from the field (S + A - P; the kernel has no
 * PLT, and the linker turns GOTPCRELX loads into direct references). Field widths and
 * PC-relativity come from src/elf.
 */
const MATCHABLE: ReadonlySet<number> = new Set([
  R_X86_64_64,
  R_X86_64_32,
  R_X86_64_32S,
  R_X86_64_PC32,
  R_X86_64_PLT32,
  R_X86_64_PC64,
  R_X86_64_GOTPCREL,
  R_X86_64_GOTPCRELX,
  R_X86_64_REX_GOTPCRELX,
]);

/** What matching needs to know of a relocation type named in an update, if it can match it. */
function matchable(typeName: string): RelocationInfo | undefined {
  const type = relocationType(typeName);
  return type !== undefined && MATCHABLE.has(type) ? relocationInfo(type) : undefined;
}

function readCString(memory: KernelMemory, address: bigint, max: number): string | undefined {
  try {
    const bytes = memory.read(address, max);
    const end = bytes.indexOf(0);
    return Buffer.from(bytes.subarray(0, end < 0 ? max : end)).toString('latin1');
  } catch {
    return undefined;
  }
}

type Outcome = { ok: true; learned: LearnedSymbol[]; traced: boolean } | { ok: false; mismatch: Mismatch };

/** Matches one function's pre code against the running bytes at one candidate address. */
export function matchAt(
  fn: UpdateFunction,
  sites: readonly RewriteSite[],
  address: bigint,
  running: Uint8Array,
  symbols: KernelSymbols,
  memory: KernelMemory,
): Outcome {
  const pre = Buffer.from(fn.pre?.bytes ?? '', 'base64');
  const relocations = new Map<number, UpdateRelocation>((fn.pre?.relocations ?? []).map((r) => [r.offset, r]));
  const instructions = decodeInstructions(pre);
  const learned: LearnedSymbol[] = [];
  let traced = false;
  const fail = (offset: number, length: number, reason: string): Outcome => ({
    ok: false,
    mismatch: {
      function: fn.name,
      candidate: address,
      offset,
      expected: hex(pre.subarray(offset, offset + Math.max(length, 1))),
      running: hex(running.subarray(offset, offset + Math.max(length, 1))),
      reason,
    },
  });
  let siteIndex = 0;
  for (let i = 0; i < pre.length; ) {
    while (siteIndex < sites.length && (sites[siteIndex] as RewriteSite).offset < i) siteIndex++;
    const site = sites[siteIndex];
    if (site && site.offset === i) {
      const runningForm = running.subarray(i, i + site.length);
      if (!acceptsRunningForm(site, pre.subarray(i, i + site.length), runningForm)) {
        return fail(i, site.length, `the ${site.kind} site holds bytes that boot-time patching cannot produce`);
      }
      if (site.kind === 'fentry' && runningForm[0] === 0xe8) traced = true;
      i += site.length;
      continue;
    }
    const rela = relocations.get(i);
    if (rela) {
      const info = matchable(rela.type);
      if (!info) return fail(i, 4, `relocation type ${rela.type} is not understood by matching`);
      const size = info.size;
      const value = readRelocatedField(running, i, size, info.signed);
      const addend = BigInt(rela.addend);
      let meant: bigint;
      let symbolAddress: bigint;
      if (info.pcRelative) {
        const place = address + BigInt(i);
        const instruction = instructionAt(instructions, i);
        const instructionEnd = instruction ? instruction.offset + instruction.length : i + size;
        symbolAddress = BigInt.asUintN(64, place + value - addend);
        meant = BigInt.asUintN(64, address + BigInt(instructionEnd) + value);
      } else {
        symbolAddress = BigInt.asUintN(64, value - addend);
        meant = BigInt.asUintN(64, value);
      }
      const from = `${fn.name}+0x${i.toString(16)}`;
      const target = rela.target;
      if (target.kind === 'symbol') {
        // Code of an applied update calls its own new functions: any symbol of that name counts.
        const named = symbols.lookup(target.name);
        if (named.length > 0 && !named.some((s) => s.runningAddress === symbolAddress)) {
          return fail(i, size, `the code refers to 0x${symbolAddress.toString(16)}, and /proc/kallsyms has ${target.name} at ${named.map((n) => `0x${n.runningAddress.toString(16)}`).join(', ')}`);
        }
        learned.push({ name: target.name, address: symbolAddress, from, local: target.local });
      } else if (target.kind === 'string') {
        const text = readCString(memory, meant, target.text.length + 1);
        if (text !== target.text) {
          return fail(i, size, `the string the code refers to is ${JSON.stringify(text ?? '(unreadable)')}, not ${JSON.stringify(target.text)}`);
        }
      } else if (target.kind === 'piece') {
        const pieceAddress = meant - BigInt(target.offset);
        const named = symbols.lookup(target.name);
        if (named.length > 0 && !named.some((s) => s.runningAddress === pieceAddress)) {
          return fail(i, size, `the code refers to 0x${pieceAddress.toString(16)}+${target.offset}, and /proc/kallsyms has no ${target.name} there`);
        }
        learned.push({ name: target.name, address: pieceAddress, from, local: true });
      }
      i += size;
      continue;
    }
    if (pre[i] !== running[i]) return fail(i, 8, 'the bytes differ');
    i++;
  }
  return { ok: true, learned, traced };
}

/** Checks that the update was made for the running kernel, in one sentence if not. */
export function checkTarget(update: UpdatePackage, procVersion: string): void {
  const release = /^Linux version (\S+)/.exec(procVersion)?.[1];
  if (release !== update.target.release) {
    throw new UserError(`The update ${update.id} is for ${update.target.release}, but the running kernel is ${release ?? 'unknown'}.`, { kind: 'wrong-kernel' });
  }
  const version = update.target.distributionVersion;
  if (version && !procVersion.includes(` ${version} `)) {
    throw new UserError(`The update ${update.id} is for ${update.target.release} ${version}, but the running kernel's banner does not name ${version}: ${procVersion.trim()}`, { kind: 'wrong-kernel', object: '/proc/version' });
  }
}

/**
 * Functions an applied update already replaced: old running address -> where the code that
 * runs in its place lives. Matching such a function means matching that code (updates stack).
 */
export type ReplacedFunctions = ReadonlyMap<bigint, { address: bigint; size: number; module?: string }>;

/** Where a unit's static `name` is kept in MatchResult.learned. */
export function learnedKey(unit: string, name: string): string {
  return `${unit}\0${name}`;
}

/**
 * Where a global `name` that code of the loadable module `module` refers to is kept in
 * MatchResult.learned: per module, as `name [module]`, since a module's globals (its own
 * `__this_module`, a non-exported global) are not vmlinux's and two modules may each have one.
 */
export function moduleLearnedKey(module: string, name: string): string {
  return `[${module}]\0${name}`;
}

/**
 * The refusal for a function of a module that is not loaded: there are no running bytes to
 * match and nothing to switch. Kind module-not-loaded, naming the module and the function.
 */
export function moduleNotLoaded(id: string, fn: UpdateFunction): UserError {
  return new UserError(
    `The update ${id} replaces ${fn.name} of the module ${fn.module ?? '?'}, which is not loaded: run-pre matching reads running code only (apply proves such a function against the module's file).`,
    { kind: 'module-not-loaded', object: fn.module, unit: fn.unit, function: fn.name, reason: `the module ${fn.module ?? '?'} is not loaded` },
  );
}

/** Matches every changed function of an update; throws MatchError with the first mismatch. */
export function matchUpdate(
  update: UpdatePackage,
  symbols: KernelSymbols,
  memory: KernelMemory,
  replaced: ReplacedFunctions = new Map(),
): MatchResult {
  const functions: MatchedFunction[] = [];
  const learned = new Map<string, LearnedSymbol>();
  /** Bare names that two units' statics both claim: they stay out of `learned`. */
  const claimedTwice = new Set<string>();
  const remember = (l: LearnedSymbol, unit: string, module: string | undefined): void => {
    // Two units of one update may each have a static of the same name: statics are known
    // per unit, and by bare name only while that is unambiguous.
    const key = l.local ? learnedKey(unit, l.name) : module !== undefined ? moduleLearnedKey(module, l.name) : l.name;
    const known = learned.get(key);
    if (known && known.address !== l.address) {
      throw new UserError(`${l.name} is at 0x${known.address.toString(16)} according to ${known.from} but at 0x${l.address.toString(16)} according to ${l.from}; tsplice cannot tell which one the patch means.`, { kind: 'match-failed', function: l.name });
    }
    if (!known) learned.set(key, l);
    if (l.local && module === undefined && !claimedTwice.has(l.name)) {
      const bare = learned.get(l.name);
      if (bare === undefined) learned.set(l.name, l);
      else if (bare.address !== l.address && bare.local) {
        learned.delete(l.name);
        claimedTwice.add(l.name);
      }
    }
  };
  for (const fn of update.functions) {
    if (!fn.pre) continue;
    // A function of a loadable module is looked for in that module only (`name [module]`).
    const candidates = symbols.lookup(fn.name).filter((s) => isText(s) && s.module === fn.module);
    if (candidates.length === 0) {
      if (fn.module !== undefined && !symbols.hasModule(fn.module)) throw moduleNotLoaded(update.id, fn);
      const where = fn.module === undefined ? '' : ` of the module ${fn.module}`;
      throw new UserError(`The running kernel has no function ${fn.name}${where} (from ${fn.unit}) in /proc/kallsyms: the update is not for this kernel.`, { kind: 'match-failed', unit: fn.unit, function: fn.name });
    }
    const sites = rewriteSites(fn, update.specialEntries);
    const matches: { original: KernelSymbol; candidate: KernelSymbol; outcome: Outcome & { ok: true }; running: Uint8Array }[] = [];
    let firstMismatch: Mismatch | undefined;
    for (const original of candidates) {
      const replacement = replaced.get(original.runningAddress);
      const candidate: KernelSymbol = replacement
        ? { name: fn.name, runningAddress: replacement.address, type: 't', ...(replacement.module ? { module: replacement.module } : {}) }
        : original;
      const running = memory.read(candidate.runningAddress, fn.pre.size);
      const outcome = matchAt(fn, sites, candidate.runningAddress, running, symbols, memory);
      if (outcome.ok) matches.push({ original, candidate, outcome, running });
      else firstMismatch ??= outcome.mismatch;
    }
    if (matches.length === 0) throw new MatchError(firstMismatch as Mismatch);
    if (matches.length > 1) {
      throw new UserError(
        `${fn.name} matches ${matches.length} functions of the running kernel (${matches.map((m) => `0x${m.candidate.runningAddress.toString(16)}`).join(', ')}); tsplice cannot tell which one the patch means.`,
        { kind: 'match-failed', unit: fn.unit, function: fn.name },
      );
    }
    const match = matches[0] as (typeof matches)[number];
    functions.push({
      name: fn.name,
      unit: fn.unit,
      runningAddress: match.candidate.runningAddress,
      size: fn.pre.size,
      traced: match.outcome.traced,
      entry: Uint8Array.from(match.running.subarray(0, Math.min(32, fn.pre.size))),
    });
    // A changed function is learned like the statics its code names, at its kallsyms address
    // (where other code calls it, also when an applied update runs in its place): a static of
    // two units (elf_core_dump of binfmt_elf.c and of compat_binfmt_elf.c) is known per unit.
    remember({ name: fn.name, address: match.original.runningAddress, from: 'kallsyms', local: match.original.type === 't' }, fn.unit, fn.module);
    for (const l of match.outcome.learned) remember(l, fn.unit, fn.module);
  }
  return { functions, learned };
}
