/**
 * `tsplice apply`: match, stage, switch.
 *
 * 1. The update must be for the running kernel (release and banner), and run-pre matching
 *    must find the pre code of every function it replaces (src/match/run-pre.ts).
 * 2. The update module is given the running addresses of what the new code refers to and
 *    loaded: from then on the new code is kernel code, with its exception tables, ORC data
 *    and boot-time patching, but nothing calls it yet.
 * 3. The core module stages each function (old and new address, the running bytes it must
 *    still find) and switches under stop_machine, retrying while a task is inside.
 * Any failure after loading unloads the update module again: the kernel is left as it was.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { readKallsyms, type KernelSymbols } from '../match/kallsyms.js';
import { Kcore } from '../match/kcore.js';
import { checkTarget, matchUpdate, type MatchResult, type ReplacedFunctions } from '../match/run-pre.js';
import type { UpdatePackage } from '../update/format.js';
import { CoreModule, runProgram } from './core-module.js';
import type { CoreUpdate, RetryOptions } from './core-status.js';
import { resolveUpdateModule } from './update-module.js';
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

/** The core module: loaded already, or loaded from the copy the update carries. */
export async function coreModuleFrom(update: UpdatePackage): Promise<CoreModule> {
  if (CoreModule.isLoaded()) return new CoreModule();
  if (!update.coreModule) throw new UserError(`The core module is not loaded and the update ${update.id} does not carry one.`);
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
  if (found.length !== 1) throw new UserError(`After loading ${module}, /proc/kallsyms shows ${found.length} functions named ${name} in it.`);
  return (found[0] as { runningAddress: bigint }).runningAddress;
}

export async function applyUpdate(update: UpdatePackage, retry: RetryOptions = {}): Promise<ApplyResult> {
  checkTarget(update, readFileSync('/proc/version', 'utf8'));
  const module = update.module;
  if (!module) throw new UserError(`The update ${update.id} carries no kernel module (it was made without the target kernel's headers).`);
  const core = await coreModuleFrom(update);
  if ((await core.update(update.id))?.state === 'applied') throw new UserError(`The update ${update.id} is already applied.`);
  if (readFileSync('/proc/modules', 'utf8').split('\n').some((l) => l.startsWith(`${module.name} `))) {
    throw new UserError(`The module ${module.name} of update ${update.id} is already loaded; undo it first.`);
  }

  let started = process.hrtime.bigint();
  const symbols = readKallsyms();
  const kcore = Kcore.open();
  let match: MatchResult;
  try {
    match = matchUpdate(update, symbols, kcore, await replacedFunctions(core));
  } finally {
    kcore.close();
  }
  const matchMs = Number(process.hrtime.bigint() - started) / 1e6;

  started = process.hrtime.bigint();
  const { bytes } = resolveUpdateModule(update, symbols, match.learned);
  const dir = mkdtempSync(join(tmpdir(), 'tsplice-update-'));
  const koPath = join(dir, `${module.name}.ko`);
  writeFileSync(koPath, bytes);
  try {
    await runProgram('insmod', [koPath]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  let staged = false;
  try {
    const loaded = readKallsyms();
    const kcoreAgain = Kcore.open();
    const functions: ApplyResult['functions'] = [];
    const requests = match.functions.map((f) => {
      const fn = update.functions.find((u) => u.name === f.name && u.unit === f.unit);
      if (!fn) throw new UserError(`Internal error: matched ${f.name} is not in the update.`);
      const moduleSymbol = module.renamedFunctions?.find((r) => r.unit === fn.unit && r.name === fn.name)?.symbol ?? fn.name;
      const newAddress = newFunctionAddress(loaded, module.name, moduleSymbol);
      functions.push({ name: fn.name, oldAddress: f.runningAddress, newAddress });
      return {
        name: fn.name,
        oldAddress: f.runningAddress,
        oldSize: f.size,
        newAddress,
        newSize: fn.post.size,
        expected: kcoreAgain.read(f.runningAddress, Math.min(32, f.size)),
      };
    });
    kcoreAgain.close();
    await core.stageUpdate(update.id, requests);
    staged = true;
    const stageMs = Number(process.hrtime.bigint() - started) / 1e6;
    const result = await core.apply(update.id, retry);
    return { id: update.id, module: module.name, functions, core: result, matchMs, stageMs };
  } catch (error) {
    // Leave the kernel as it was: forget the staged update and unload the new code.
    if (staged) await core.drop(update.id).catch(() => undefined);
    await runProgram('rmmod', [module.name]).catch(() => undefined);
    throw error;
  }
}

/** Undo: switch back under stop_machine, then unload the update's module. */
export async function undoUpdate(id: string, retry: RetryOptions = {}): Promise<CoreUpdate> {
  if (!CoreModule.isLoaded()) throw new UserError(`No update is applied: the core module is not loaded.`);
  const core = new CoreModule();
  const current = await core.update(id);
  if (!current) throw new UserError(`The kernel has no update ${id}.`);
  if (current.state !== 'applied') throw new UserError(`The update ${id} is ${current.state}, not applied.`);
  const moduleOfUpdate = moduleNameFor(id);
  const stackedOnTop = (await core.status()).updates.filter(
    (u) => u.id !== id && u.state === 'applied' && u.functions.some((f) => f.owner === moduleOfUpdate),
  );
  if (stackedOnTop.length > 0) {
    throw new UserError(`Update ${stackedOnTop.map((u) => u.id).join(', ')} replaced code of ${id}: undo ${stackedOnTop.length > 1 ? 'them' : 'it'} first.`);
  }
  const result = await core.undo(id, retry);
  await core.drop(id);
  const moduleName = moduleNameFor(id);
  await runProgram('rmmod', [moduleName]).catch((e: Error) => {
    throw new UserError(`Update ${id} was undone, but its module ${moduleName} could not be unloaded: ${e.message}`);
  });
  return result;
}
