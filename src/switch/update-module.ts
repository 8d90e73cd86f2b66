/**
 * Preparing an update's module for the running kernel: each external reference of the new
 * code becomes an absolute symbol at its running address — learned by run-pre matching, or
 * taken from /proc/kallsyms when the name is there once — so the module loader needs no
 * export for it. A reference that can be resolved neither way refuses the apply, by name.
 */
import { parseElf, modelFromElf, writeElf, SHN_ABS, SHN_UNDEF } from '../elf/index.js';
import { UserError } from '../host/errors.js';
import type { KernelSymbol, KernelSymbols } from '../match/kallsyms.js';
import { learnedKey, type LearnedSymbol } from '../match/run-pre.js';
import type { UpdatePackage } from '../update/format.js';
import { moduleNameFor } from '../update/module.js';

export interface ResolvedModule {
  bytes: Uint8Array;
  /** External symbol -> running address given to it. */
  resolved: Map<string, bigint>;
}

/** A kallsyms type letter in upper case is a global symbol (T text, D data, R read-only, B bss, W weak, …). */
function isGlobal(symbol: KernelSymbol): boolean {
  return symbol.type !== symbol.type.toLowerCase();
}

/** The section holding the module's struct module, which the loader takes its name from. */
export const THIS_MODULE_SECTION = '.gnu.linkonce.this_module';
/** offsetof(struct module, name) on 6.1 x86-64: after enum module_state (4, padded to 8) and a list_head (16). */
export const MODULE_NAME_OFFSET = 24;
const MODULE_NAME_LEN = 56;

/** The NUL-terminated name in a struct module's bytes, or undefined. */
function thisModuleName(data: Uint8Array | undefined): string | undefined {
  if (!data || data.length < MODULE_NAME_OFFSET + MODULE_NAME_LEN) return undefined;
  const field = Buffer.from(data.subarray(MODULE_NAME_OFFSET, MODULE_NAME_OFFSET + MODULE_NAME_LEN));
  const end = field.indexOf(0);
  return end <= 0 ? undefined : field.subarray(0, end).toString('latin1');
}

export function resolveUpdateModule(update: UpdatePackage, symbols: KernelSymbols, learned: ReadonlyMap<string, LearnedSymbol>): ResolvedModule {
  const module = update.module;
  if (!module) throw new UserError(`The update ${update.id} carries no kernel module (it was made without the target kernel's headers).`, { kind: 'no-module' });
  const elf = parseElf(Buffer.from(module.bytes, 'base64'), `${module.name}.ko`);
  // The kernel knows a module by the name in its struct module (.gnu.linkonce.this_module),
  // not by the file's: it must be the name the update's id gives, which undo, unload and
  // recover look for.
  const name = thisModuleName(elf.sections.find((s) => s.name === THIS_MODULE_SECTION)?.data);
  if (name !== moduleNameFor(update.id)) {
    throw new UserError(`The module of update ${update.id} calls itself ${name === undefined ? 'nothing' : JSON.stringify(name)} in its ${THIS_MODULE_SECTION}, not ${moduleNameFor(update.id)}.`, {
      kind: 'bad-update',
      object: `${module.name}.ko`,
      section: THIS_MODULE_SECTION,
    });
  }
  const model = modelFromElf(elf);
  const externals = new Map(module.externals.map((e) => [e.symbol, e]));
  const resolved = new Map<string, bigint>();
  for (const symbol of model.symbols) {
    if (symbol.section !== SHN_UNDEF || symbol.name === '') continue;
    const external = externals.get(symbol.name);
    const name = external?.name ?? symbol.name;
    const scoped = external?.local ? learned.get(learnedKey(external.unit, name)) : undefined;
    let address = (scoped ?? learned.get(name))?.address;
    if (address === undefined) {
      const inVmlinux = symbols.lookup(name).filter((s) => s.module === undefined);
      // A reference to a global binds only to a global: a static of the same name in some other
      // unit is another function or object (the global the patch adds, perhaps).
      const candidates = external?.local ? inVmlinux : inVmlinux.filter(isGlobal);
      if (candidates.length === 1) address = candidates[0]?.runningAddress;
      else if (candidates.length > 1) {
        throw new UserError(
          `The new code refers to ${name}${external?.local ? ` (a static of ${external.unit})` : ''}, which the running kernel has ${candidates.length} times, and matching did not tell which one.`,
          { kind: 'ambiguous', function: name, ...(external?.local ? { unit: external.unit } : {}) },
        );
      } else if (inVmlinux.length > 0) {
        throw new UserError(
          `The new code refers to the global ${name}, which the running kernel has only as a static (${inVmlinux.length === 1 ? 'once' : `${inVmlinux.length} times`}): it may be another unit's, so tsplice does not bind to it.`,
          { kind: 'unresolved-reference', function: name },
        );
      } else {
        throw new UserError(`The new code refers to ${name}, which the running kernel does not have (not in /proc/kallsyms).`, { kind: 'unresolved-reference', function: name });
      }
    }
    symbol.section = SHN_ABS;
    symbol.value = address as bigint;
    resolved.set(symbol.name, address as bigint);
  }
  return { bytes: writeElf(model), resolved };
}
