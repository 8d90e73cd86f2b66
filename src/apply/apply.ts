/**
 * `tsplice apply`, `undo`, `unload` and `recover`: match, stage, switch; switch back; let the
 * new code go; clear what a killed run left. Each runs under the target's lock (lock.ts).
 *
 * 1. The update must be for the running kernel (release and banner), and run-pre matching
 *    must find the pre code of every function it replaces (src/match/run-pre.ts).
 * 2. The update module is given the running addresses of what the new code refers to and
 *    loaded: from then on the new code is kernel code, with its exception tables, ORC data
 *    and boot-time patching, but nothing calls it yet.
 * 3. The core module stages each function (old and new address, the running bytes it must
 *    still find) and switches under stop_machine, retrying while a task is inside.
 * Any failure after loading unloads the update module again: the kernel is left as it was.
 * A reverted update whose module is still loaded (undo keeps it) is applied again directly:
 * the kernel still holds it staged and re-checks every site.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError, classified } from '../host/errors.js';
import { readKallsyms, readModuleKallsyms, type KernelSymbols } from '../match/kallsyms.js';
import { Kcore } from '../match/kcore.js';
import { readLoadedModules, type LoadedModules } from '../match/loaded-modules.js';
import { checkTarget, learnedKey, MatchError, matchUpdate, type KernelMemory, type MatchResult, type ReplacedFunctions } from '../match/run-pre.js';
import { combinedTargets, kallsymsTargets, ModuleFiles } from '../match/module-targets.js';
import { proveCopyOnDisk } from '../match/on-disk.js';
import { parseElf, type ElfFile } from '../elf/index.js';
import type { UpdateFunction, UpdatePackage } from '../update/format.js';
import { CoreModule, runProgram } from '../switch/core-module.js';
import type { CoreStatus, CoreUpdate, RetryOptions } from '../switch/core-status.js';
import { refuseConflicts } from '../switch/conflicts.js';
import { markedLoading, markLoading, unmarkLoading } from './loading.js';
import { withLock } from './lock.js';
import { identityMask, rewriteSites } from '../match/sites.js';
import { resolveUpdateModule } from '../switch/update-module.js';
import { moduleNameFor } from '../update/module.js';

export interface ApplyResult {
  id: string;
  module: string;
  functions: { name: string; oldAddress: bigint; newAddress: bigint }[];
  core: CoreUpdate;
  matchMs: number;
  stageMs: number;
}

/** What applied updates replaced: each old function's address -> the code that runs instead. */
async function replacedFunctions(core: CoreModule): Promise<ReplacedFunctions> {
  const replaced = new Map<bigint, { address: bigint; size: number; module?: string }>();
  const applied = (await core.status()).updates.filter((u) => u.state === 'applied');
  // Follow chains: a function replaced twice runs the newest code.
  const next = new Map<bigint, { address: bigint; size: number; module?: string }>();
  for (const u of applied) for (const f of u.functions) next.set(f.oldAddress, { address: f.newAddress, size: f.newSize, ...(f.newOwner ? { module: f.newOwner } : {}) });
  for (const [old, first] of next) {
    let current = first;
    for (let hops = 0; hops < 64; hops++) {
      const further = next.get(current.address);
      if (!further) break;
      current = further;
    }
    replaced.set(old, current);
  }
  return replaced;
}

/** The names of the modules loaded now. */
function loadedModules(): Set<string> {
  return readLoadedModules().names();
}

/**
 * An update module that tsplice loaded (loading.ts) and no update in the kernel names: left by
 * a run killed between insmod and stage.
 */
export function strayUpdateModules(status: CoreStatus | undefined, loaded = loadedModules()): string[] {
  const named = new Set((status?.updates ?? []).map((u) => moduleNameFor(u.id)));
  return markedLoading().filter((m) => loaded.has(m) && !named.has(m));
}

/** What recover found and cleared. */
export interface Recovered {
  dropped: string[];
  unloaded: string[];
}

/**
 * Clears what a run killed half-way left behind (called under the lock, so no other run is
 * in progress): a staged update whose stager has exited is dropped and its module unloaded;
 * an update module no update names is unloaded. Applied and reverted updates are the
 * kernel's state, not leftovers, and are kept.
 */
async function recoverLeftovers(): Promise<Recovered> {
  const recovered: Recovered = { dropped: [], unloaded: [] };
  const core = CoreModule.isLoaded() ? new CoreModule() : undefined;
  const status = core ? await core.status() : undefined;
  for (const u of status?.updates ?? []) {
    if (u.state !== 'staged' || (u.ownerPid ?? 0) !== 0) continue;
    await core?.drop(u.id);
    recovered.dropped.push(u.id);
  }
  for (const name of strayUpdateModules(core ? await core.status() : undefined)) {
    await runProgram('rmmod', [name]);
    recovered.unloaded.push(name);
  }
  // The other marks are of modules gone since, or named by an update now: they have served
  // (no apply is between insmod and stage meanwhile: this runs under the lock).
  for (const name of markedLoading()) unmarkLoading(name);
  return recovered;
}

/** `tsplice recover`: clears leftovers of killed runs. */
export function recover(): Promise<Recovered> {
  return withLock('recover', recoverLeftovers);
}

/** The core module: loaded already, or loaded from the copy the update carries. */
export async function coreModuleFrom(update: UpdatePackage): Promise<CoreModule> {
  if (CoreModule.isLoaded()) return new CoreModule();
  if (!update.coreModule) {
    // A release's package carries the core module in its first update only (src/release/shipped-form.ts).
    throw new UserError(`The core module is not loaded and the update ${update.id} does not carry one: apply the first update of its package first, or run 'tsplice upgrade'.`, {
      kind: 'no-module',
      object: update.id,
      reason: 'the core module is not loaded and the update does not carry one',
    });
  }
  const dir = mkdtempSync(join(tmpdir(), 'tsplice-core-'));
  try {
    const path = join(dir, 'tsplice_core.ko');
    writeFileSync(path, Buffer.from(update.coreModule, 'base64'));
    return await CoreModule.load(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function newFunctionAddress(symbols: KernelSymbols, module: string, name: string): bigint {
  const found = symbols.lookup(name).filter((s) => s.module === module && (s.type === 't' || s.type === 'T'));
  if (found.length !== 1) throw new UserError(`After loading ${module}, /proc/kallsyms shows ${found.length} functions named ${name} in it.`, { kind: 'internal', object: module, function: name });
  return (found[0] as { runningAddress: bigint }).runningAddress;
}

/**
 * The names the kernel binds what was proven in module files by: each function, and each static
 * of its unit its pre code refers to (by learnedKey), `NAME#N` for one of several copies.
 */
export interface ProvenOnDisk {
  functions: Map<UpdateFunction, string>;
  statics: Map<string, string>;
}

/**
 * Proves every function of a module that is not loaded against the module's file, before
 * anything is locked or loaded: the pre code must equal the function in the file outside
 * relocation fields, with the same relocations (on-disk.ts). The kernel proves the copy that
 * loads again, against the pre code (kmod/late.c). A module with no file is refused (kind
 * module-not-loaded), a file that differs too (kind match-failed, naming function and offset).
 */
export function proveOnDisk(update: UpdatePackage, loaded: LoadedModules, files: ModuleFiles | undefined): ProvenOnDisk {
  /** Each module file once, however many of its functions the update replaces. */
  const read = new Map<string, ElfFile>();
  const proven: ProvenOnDisk = { functions: new Map(), statics: new Map() };
  for (const fn of update.functions) {
    if (!fn.pre || fn.module === undefined || loaded.has(fn.module)) continue;
    const path = files?.path(fn.module);
    if (!files || path === undefined) {
      throw new UserError(
        `The update ${update.id} replaces ${fn.name} of the module ${fn.module}, which is not loaded and has no file in ${files?.dir ?? '/lib/modules'} (modules.dep): there is nothing to prove its code against.`,
        { kind: 'module-not-loaded', object: fn.module, unit: fn.unit, function: fn.name, reason: `the module ${fn.module} is not loaded and has no file` },
      );
    }
    let elf = read.get(path);
    if (!elf) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(path);
      } catch (error) {
        throw classified(error, { kind: 'cannot-read', object: path });
      }
      elf = parseElf(bytes, path);
      read.set(path, elf);
    }
    const proof = proveCopyOnDisk(fn, elf, path);
    if ('copy' in proof) {
      proven.functions.set(fn, proof.copy);
      for (const [name, copy] of proof.statics) proven.statics.set(learnedKey(fn.unit, name), copy);
    } else {
      const { mismatch } = proof;
      throw new UserError(`${fn.name} of the module ${fn.module}: its file ${path} differs from the update's pre code at +0x${mismatch.offset.toString(16)} (${mismatch.reason}); the update is not for this module.`, {
        kind: 'match-failed',
        object: path,
        unit: fn.unit,
        function: fn.name,
        offset: mismatch.offset,
        reason: mismatch.reason,
      });
    }
  }
  return proven;
}

/** The update with only the functions run-pre matching can look for in the running kernel. */
export function loadedPart(update: UpdatePackage, loaded: LoadedModules): UpdatePackage {
  return { ...update, functions: update.functions.filter((f) => !f.pre || f.module === undefined || loaded.has(f.module)) };
}

/** The module files of the running kernel, when it has any. */
export function runningModuleFiles(): ModuleFiles | undefined {
  // Read once per process while modules.dep stays the same (depmod rewrites it when module
  // files change): a process that applies several updates (the corpus's guest driver) would
  // otherwise read and split it twice for each, seconds under emulation.
  const name = release();
  let stamp: number;
  try {
    stamp = statSync(join('/lib/modules', name, 'modules.dep')).mtimeMs;
  } catch {
    return undefined;
  }
  if (knownModuleFiles?.release === name && knownModuleFiles.stamp === stamp) return knownModuleFiles.files;
  try {
    knownModuleFiles = { release: name, stamp, files: new ModuleFiles(name) };
    return knownModuleFiles.files;
  } catch {
    return undefined;
  }
}
let knownModuleFiles: { release: string; stamp: number; files: ModuleFiles } | undefined;

/**
 * Where the update module's section `section` was loaded: /sys/module/NAME/sections, which
 * the kernel fills for every allocated section of a loaded module (root only).
 */
function sectionAddress(module: string, section: string): bigint {
  const path = join('/sys/module', module, 'sections', section);
  try {
    return BigInt(readFileSync(path, 'utf8').trim());
  } catch (error) {
    throw classified(error, { kind: 'cannot-read', object: path, section });
  }
}

/** Checks that the update is for the running kernel (release and banner): kind wrong-kernel. */
export function checkRunningKernel(update: UpdatePackage): void {
  try {
    checkTarget(update, readFileSync('/proc/version', 'utf8'));
  } catch (error) {
    throw classified(error, { kind: 'wrong-kernel' });
  }
}

/**
 * Run-pre matching against the running kernel's memory (/proc/kcore). Its refusals are kind
 * match-failed (with the function and offset of the first mismatch); kernel memory that
 * cannot be read is kind cannot-read.
 */
export function matchRunning(update: UpdatePackage, symbols: KernelSymbols, replaced?: ReplacedFunctions): MatchResult {
  let kcore: Kcore;
  try {
    kcore = Kcore.open();
  } catch (error) {
    throw classified(error, { kind: 'cannot-read', object: '/proc/kcore' });
  }
  const memory: KernelMemory = {
    read(address, length) {
      try {
        return kcore.read(address, length);
      } catch (error) {
        throw classified(error, { kind: 'cannot-read', object: kcore.path });
      }
    },
  };
  try {
    return matchUpdate(update, symbols, memory, replaced);
  } catch (error) {
    const where = error instanceof MatchError ? { function: error.mismatch.function, offset: error.mismatch.offset } : {};
    throw classified(error, { kind: 'match-failed', ...where });
  } finally {
    kcore.close();
  }
}

export async function applyUpdate(update: UpdatePackage, retry: RetryOptions = {}): Promise<ApplyResult> {
  proveOnDisk(update, readLoadedModules(), runningModuleFiles());
  return withLock('apply', () => applyLocked(update, retry));
}

/** Applies a reverted update again: its module is loaded and the kernel holds it staged. */
async function reapply(core: CoreModule, update: UpdatePackage, held: CoreUpdate, retry: RetryOptions): Promise<ApplyResult> {
  const started = process.hrtime.bigint();
  const result = await core.apply(update.id, retry);
  return {
    id: update.id,
    module: moduleNameFor(update.id),
    functions: held.functions.map((f) => ({ name: f.name, oldAddress: f.oldAddress, newAddress: f.newAddress })),
    core: result,
    matchMs: 0,
    stageMs: Number(process.hrtime.bigint() - started) / 1e6,
  };
}

/**
 * A fix whose author declared that it needs nothing at run time (tsplice_init_change_handled,
 * and no new code): the kernel holds it as applied, with nothing written and no module loaded.
 */
async function applyDeclaredOnly(update: UpdatePackage, retry: RetryOptions): Promise<ApplyResult> {
  await recoverLeftovers();
  const core = await coreModuleFrom(update);
  const held = await core.update(update.id);
  if (held?.state === 'applied') throw new UserError(`The update ${update.id} is already applied.`, { kind: 'already-applied' });
  const started = process.hrtime.bigint();
  if (!held) await core.stageAll(update.id, [], [], [], [], true);
  const stageMs = Number(process.hrtime.bigint() - started) / 1e6;
  const result = await core.apply(update.id, retry);
  return { id: update.id, module: moduleNameFor(update.id), functions: [], core: result, matchMs: 0, stageMs };
}

async function applyLocked(update: UpdatePackage, retry: RetryOptions): Promise<ApplyResult> {
  checkRunningKernel(update);
  if (!update.module && update.functions.length === 0 && (update.declarations?.length ?? 0) > 0) return applyDeclaredOnly(update, retry);
  const module = update.module;
  if (!module) throw new UserError(`The update ${update.id} carries no kernel module (it was made without the target kernel's headers).`, { kind: 'no-module' });
  if (readFileSync('/proc/sys/kernel/modules_disabled', 'utf8').trim() !== '0') {
    throw new UserError(`Cannot apply update ${update.id}: module loading is disabled (kernel.modules_disabled=1) until reboot; an update is new kernel code.`, { kind: 'modules-disabled' });
  }
  await recoverLeftovers();
  const core = await coreModuleFrom(update);
  const held = await core.update(update.id);
  if (held?.state === 'applied') throw new UserError(`The update ${update.id} is already applied.`, { kind: 'already-applied' });
  if (held?.state === 'reverted' && loadedModules().has(module.name)) return reapply(core, update, held, retry);
  if (held) throw new UserError(`The kernel holds update ${update.id} ${held.state} without its module ${module.name}; run 'tsplice unload ${update.id}' first.`, { kind: 'bad-state' });
  if (loadedModules().has(module.name)) {
    throw new UserError(`The module ${module.name} of update ${update.id} is loaded, but the kernel holds no such update; 'tsplice recover' unloads it.`, { kind: 'bad-state' });
  }
  refuseConflicts(
    update.id,
    update.functions.filter((f) => f.pre).map((f) => ({ name: f.name, fentry: rewriteSites(f, update.specialEntries).some((s) => s.kind === 'fentry' && s.offset === 0) })),
  );

  let started = process.hrtime.bigint();
  const symbols = readKallsyms();
  const loaded = readLoadedModules();
  const files = runningModuleFiles();
  // A module unloaded since the check before the lock: its file is proven now.
  const onDisk = proveOnDisk(update, loaded, files);
  const match = matchRunning(loadedPart(update, loaded), symbols, await replacedFunctions(core));
  const matchMs = Number(process.hrtime.bigint() - started) / 1e6;

  started = process.hrtime.bigint();
  const { bytes, late, pinned } = resolveUpdateModule(update, symbols, match.learned, loaded, combinedTargets(loaded, kallsymsTargets(symbols, loaded), files?.targets()), onDisk.statics);
  const dir = mkdtempSync(join(tmpdir(), 'tsplice-update-'));
  const koPath = join(dir, `${module.name}.ko`);
  writeFileSync(koPath, bytes);
  markLoading(module.name);
  try {
    await runProgram('insmod', [koPath]);
  } catch (error) {
    // Loaded meanwhile: another run got past the lock (a stale lock taken over by two).
    if (loadedModules().has(module.name)) {
      throw new UserError(`The module ${module.name} of update ${update.id} was loaded meanwhile by another run; this one changed nothing.`, { kind: 'bad-state' });
    }
    unmarkLoading(module.name);
    throw error;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  let staged = false;
  try {
    // Only the update module's lines: the rest was parsed before insmod and has not changed.
    const withUpdate = readModuleKallsyms(module.name);
    const symbolOf = (fn: UpdateFunction): string => module.renamedFunctions?.find((r) => r.unit === fn.unit && r.name === fn.name)?.symbol ?? fn.name;
    const newAddressOf = (fn: UpdateFunction): bigint => newFunctionAddress(withUpdate, module.name, symbolOf(fn));
    const functions: ApplyResult['functions'] = [];
    // vmlinux's functions are staged at the addresses matching found...
    const requests = match.functions.flatMap((f) => {
      const fn = update.functions.find((u) => u.name === f.name && u.unit === f.unit);
      if (!fn) throw new UserError(`Internal error: matched ${f.name} is not in the update.`, { kind: 'internal', function: f.name });
      if (fn.module !== undefined) return [];
      const newAddress = newAddressOf(fn);
      functions.push({ name: fn.name, oldAddress: f.runningAddress, newAddress });
      return [{ name: fn.name, oldAddress: f.runningAddress, oldSize: f.size, newAddress, newSize: fn.post.size, expected: f.entry }];
    });
    // ...a module's are bound by the kernel to each copy of the module that is loaded.
    const parts = update.functions.flatMap((fn) => {
      if (!fn.pre || fn.module === undefined) return [];
      // A pinned module's part binds to the copy matching found, which it keeps loaded.
      const matched = match.functions.find((m) => m.name === fn.name && m.unit === fn.unit)?.runningAddress;
      const running = pinned.has(fn.module) ? matched : undefined;
      // The kernel binds a part by name at each load: `NAME#N` when the module has several.
      const copy = matched !== undefined ? symbols.moduleCopyName(fn.module, fn.name, matched) : onDisk.functions.get(fn);
      return [{ name: copy ?? fn.name, module: fn.module, newAddress: newAddressOf(fn), newSize: fn.post.size, pre: Buffer.from(fn.pre.bytes, 'base64'), mask: identityMask(fn, update.specialEntries), ...(running !== undefined ? { pinAt: running } : {}) }];
    });
    const lates = late.map((l) => ({ module: l.module, target: l.target, symbol: l.symbol, field: sectionAddress(module.name, l.section) + BigInt(l.offset), type: l.type, addend: l.addend }));
    // The author's hooks, in the order the update lists them (format.ts).
    const hooks = (update.hooks ?? []).map((h) => {
      const fn = update.functions.find((f) => f.name === h.function && f.unit === h.unit);
      if (!fn) throw new UserError(`The update ${update.id} names the hook ${h.function} of ${h.unit}, which it does not carry.`, { kind: 'bad-update', unit: h.unit, function: h.function });
      return { kind: h.kind, name: symbolOf(fn), address: newAddressOf(fn), size: fn.post.size };
    });
    await core.stageAll(update.id, requests, parts, lates, hooks, (update.declarations?.length ?? 0) > 0);
    staged = true;
    unmarkLoading(module.name);
    const stageMs = Number(process.hrtime.bigint() - started) / 1e6;
    const result = await core.apply(update.id, retry);
    for (const part of result.parts) {
      if (part.oldAddress !== undefined) functions.push({ name: part.name, oldAddress: part.oldAddress, newAddress: part.newAddress });
    }
    return { id: update.id, module: module.name, functions, core: result, matchMs, stageMs };
  } catch (error) {
    // Leave the kernel as it was: forget the staged update and unload the new code.
    if (staged) await core.drop(update.id).catch(() => undefined);
    if (await runProgram('rmmod', [module.name]).then(() => true, () => false)) unmarkLoading(module.name);
    throw error;
  }
}

/**
 * Undo: switch back under stop_machine. The update's module stays loaded and held by the core
 * module: a timer, RCU callback, work item or notifier its new code registered may still run
 * it (the stacks cannot show those). `unloadUpdate` lets it go; a later apply of the same
 * update reuses it.
 */
export function undoUpdate(id: string, retry: RetryOptions = {}): Promise<CoreUpdate> {
  return withLock('undo', () => undoLocked(id, retry));
}

async function undoLocked(id: string, retry: RetryOptions): Promise<CoreUpdate> {
  await recoverLeftovers();
  if (!CoreModule.isLoaded()) throw new UserError(`No update is applied: the core module is not loaded.`, { kind: 'core-not-loaded' });
  const core = new CoreModule();
  const current = await core.update(id);
  if (!current) throw new UserError(`The kernel has no update ${id}.`, { kind: 'no-such-update' });
  if (current.state !== 'applied') throw new UserError(`The update ${id} is ${current.state}, not applied.`, { kind: 'bad-state' });
  refuseStackedOnTop((await core.status()).updates.filter((u) => u.state === 'applied'), id, 'undo');
  return core.undo(id, retry);
}

/**
 * Refuses to take away update `id`'s code while one of `updates` replaced a function of it
 * (stacked on top): undo and unload go in reverse order.
 */
function refuseStackedOnTop(updates: readonly CoreUpdate[], id: string, verb: 'undo' | 'unload'): void {
  const moduleOfUpdate = moduleNameFor(id);
  const onTop = updates.filter((u) => u.id !== id && u.functions.some((f) => f.owner === moduleOfUpdate));
  if (onTop.length > 0) {
    throw new UserError(`Update ${onTop.map((u) => u.id).join(', ')} replaced code of ${id}: ${verb} ${onTop.length > 1 ? 'them' : 'it'} first.`, { kind: 'stacked-on-top' });
  }
}

/**
 * Lets a reverted update's new code go: the core module checks that no task has a return
 * address anywhere in the module's text, forgets the update and releases the module, which
 * is then unloaded. What the stacks cannot show is the
 * operator's word: nothing the new code registered (timers, callbacks, open files'
 * operations) may still point into it.
 */
export function unloadUpdate(id: string, retry: RetryOptions = {}): Promise<void> {
  return withLock('unload', async () => {
    await recoverLeftovers();
    if (!CoreModule.isLoaded()) throw new UserError(`The kernel has no update ${id}: the core module is not loaded.`, { kind: 'core-not-loaded' });
    const core = new CoreModule();
    const status = await core.status();
    const current = status.updates.find((u) => u.id === id);
    if (!current) throw new UserError(`The kernel has no update ${id}.`, { kind: 'no-such-update' });
    if (current.state === 'applied') throw new UserError(`The update ${id} is applied: undo it first.`, { kind: 'bad-state' });
    refuseStackedOnTop(status.updates, id, 'unload');
    const moduleName = moduleNameFor(id);
    await core.drop(id, retry);
    // A fix of declarations alone loaded no module.
    if (current.functions.length === 0 && current.parts.length === 0 && current.hooks.length === 0 && !loadedModules().has(moduleName)) return;
    await runProgram('rmmod', [moduleName]).catch((e: Error) => {
      throw new UserError(`Update ${id} was dropped, but its module ${moduleName} could not be unloaded: ${e.message}`, {
        kind: 'rmmod-failed',
        object: moduleName,
        ...(e instanceof UserError ? { reason: e.diagnostic.reason } : {}),
      });
    });
  });
}
