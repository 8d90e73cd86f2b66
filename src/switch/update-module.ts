/**
 * Preparing an update's module for the running kernel: each external reference of the new
 * code into vmlinux becomes an absolute symbol at its running address — learned by run-pre
 * matching, or taken from /proc/kallsyms when the name is there once — so the module loader
 * needs no export for it; each reference into a loadable module is taken out, to be written
 * at every load of that module (late-references.ts). A reference that can be resolved
 * neither way refuses the apply, by name.
 */
import { parseElf, modelFromElf, writeElf, SHN_ABS, SHN_UNDEF, type ModelSymbol, type ObjectModel } from '../elf/index.js';
import { UserError } from '../host/errors.js';
import type { KernelSymbol, KernelSymbols } from '../match/kallsyms.js';
import { LoadedModules } from '../match/loaded-modules.js';
import { learnedKey, moduleLearnedKey, type LearnedSymbol } from '../match/run-pre.js';
import type { UpdatePackage } from '../update/format.js';
import { moduleNameFor } from '../update/module.js';
import { kallsymsTargets, type ModuleTargets } from '../match/module-targets.js';
import { takeLateReferences, writableLater, type LateReference } from './late-references.js';
import { SHADOW_FUNCTIONS } from '../diff/hooks.js';
import { CORE_MODULE_NAME as CORE_MODULE } from './core-module.js';

export interface ResolvedModule {
  bytes: Uint8Array;
  /** External symbol -> running address given to it. */
  resolved: Map<string, bigint>;
  /** References into loadable modules, for the core module to write at each load. */
  late: LateReference[];
  /**
   * Modules whose references were bound at insmod instead, because a section the loader reads
   * at insmod (a jump label entry of a pr_debug, say) names something of theirs: the fix keeps
   * each loaded (the core module pins it) and is bound to the copy loaded now only.
   */
  pinned: Set<string>;
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

/** An external reference of the new code, as the update records it (format.ts). */
type External = NonNullable<UpdatePackage['module']>['externals'][number];

/** The one running address `name` has among `candidates`, or a refusal naming what was meant. */
function theOne(name: string, candidates: readonly KernelSymbol[], meant: string, unit?: string): bigint | undefined {
  if (candidates.length > 1) {
    throw new UserError(`The new code refers to ${name}${meant}, which the running kernel has ${candidates.length} times, and matching did not tell which one.`, {
      kind: 'ambiguous',
      function: name,
      ...(unit !== undefined ? { unit } : {}),
    });
  }
  return candidates[0]?.runningAddress;
}

/**
 * Where a name that code of vmlinux refers to runs: learned by matching, or the one global
 * of that name in vmlinux (the one static, for a static of the unit).
 */
function vmlinuxAddress(name: string, external: External | undefined, symbols: KernelSymbols, learned: ReadonlyMap<string, LearnedSymbol>): bigint {
  const scoped = external?.local ? learned.get(learnedKey(external.unit, name)) : undefined;
  const known = (scoped ?? learned.get(name))?.address;
  if (known !== undefined) return known;
  const inVmlinux = symbols.lookup(name).filter((s) => s.module === undefined);
  // A reference to a global binds only to a global: a static of the same name in some other
  // unit is another function or object (the global the patch adds, perhaps).
  const candidates = external?.local ? inVmlinux : inVmlinux.filter(isGlobal);
  const address = theOne(name, candidates, external?.local ? ` (a static of ${external.unit})` : '', external?.local ? external.unit : undefined);
  if (address !== undefined) return address;
  if (inVmlinux.length > 0) {
    throw new UserError(
      `The new code refers to the global ${name}, which the running kernel has only as a static (${inVmlinux.length === 1 ? 'once' : `${inVmlinux.length} times`}): it may be another unit's, so tsplice does not bind to it.`,
      { kind: 'unresolved-reference', function: name },
    );
  }
  throw new UserError(`The new code refers to ${name}, which the running kernel does not have (not in /proc/kallsyms).`, { kind: 'unresolved-reference', function: name });
}

/**
 * For a module pinned by its fix (pinnedModules): where a name its code refers to runs now, learned by matching;
 * else, for a static of the unit, the one symbol of that name in the module; for a global, the
 * one place among the module itself (another unit of it, its `__this_module`), the globals of
 * vmlinux and the exports of the modules it depends on (directly or through others). Nothing
 * else: a module it does not depend on may be unloaded while the new code still runs, and its
 * address would then name freed memory. /proc/kallsyms prints every symbol of a module in lower
 * case, so a static of the module cannot be told from a global: a name in the module and also
 * in vmlinux or a dependency is refused as ambiguous rather than guessed.
 */
function moduleAddress(external: External & { module: string }, symbols: KernelSymbols, learned: ReadonlyMap<string, LearnedSymbol>, loaded: LoadedModules): bigint {
  const { module, name } = external;
  const known = learned.get(external.local ? learnedKey(external.unit, name) : moduleLearnedKey(module, name))?.address;
  if (known !== undefined) return known;
  const named = symbols.lookup(name);
  const own = named.filter((s) => s.module === module);
  if (external.local) {
    const address = theOne(name, own, ` (a static of ${external.unit} in the module ${module})`, external.unit);
    if (address !== undefined) return address;
    throw new UserError(`The new code refers to ${name}, a static of ${external.unit}, which the module ${module} does not have (not in /proc/kallsyms).`, {
      kind: 'unresolved-reference',
      object: module,
      unit: external.unit,
      function: name,
    });
  }
  // The dependency exporting it, by the rule late binding uses too (module-targets.ts).
  const exporter = kallsymsTargets(symbols, loaded).exporter(module, name);
  const candidates = [
    ...own,
    ...named.filter((s) => s.module === undefined && isGlobal(s)),
    ...(exporter !== undefined ? named.filter((s) => s.module === exporter) : []),
  ];
  if (candidates.length > 1) {
    const places = candidates.map((s) => s.module ?? 'vmlinux').join(', ');
    throw new UserError(`The new code of the module ${module} refers to ${name}, which is in ${places}, and matching did not tell which one.`, {
      kind: 'ambiguous',
      object: module,
      unit: external.unit,
      function: name,
    });
  }
  const [found] = candidates;
  if (found) return found.runningAddress;
  const elsewhere = [...new Set(named.flatMap((s) => (s.module !== undefined && s.module !== module ? [s.module] : [])))];
  throw new UserError(
    `The new code of the module ${module} refers to ${name}, which neither the module, vmlinux nor a module it depends on has${elsewhere.length > 0 ? ` (only ${elsewhere.join(', ')}, which ${module} does not depend on or which does not export it)` : ''}.`,
    { kind: 'unresolved-reference', object: module, unit: external.unit, function: name },
  );
}

/**
 * Where a name that code of the loadable module `module` refers to is defined: the module
 * itself (a static of the unit must be; a global may be in another unit of it, like its
 * `__this_module`), else a global of vmlinux, else an export of a module it depends on
 * (directly or through others). Nothing else: a module it does not depend on may be unloaded
 * while the new code still runs. Everything but vmlinux is bound late, at each load of
 * `module` (late-references.ts), by the module's own symbol table.
 */
function moduleTarget(external: External & { module: string }, targets: ModuleTargets, symbols: KernelSymbols): string | 'vmlinux' {
  const { module, name } = external;
  if (targets.defines(module, name)) return module;
  if (external.local) {
    throw new UserError(`The new code refers to ${name}, a static of ${external.unit}, which the module ${module} does not have.`, {
      kind: 'unresolved-reference',
      object: module,
      unit: external.unit,
      function: name,
    });
  }
  if (symbols.lookup(name).some((s) => s.module === undefined && isGlobal(s))) return 'vmlinux';
  const exporter = targets.exporter(module, name);
  if (exporter !== undefined) return exporter;
  throw new UserError(`The new code of the module ${module} refers to ${name}, which neither the module, vmlinux nor a module it depends on has.`, {
    kind: 'unresolved-reference',
    object: module,
    unit: external.unit,
    function: name,
  });
}

/**
 * The name the core module binds a reference into the module `target` by at each load: the bare
 * name when `target` has one symbol of it, else `NAME#N` for the copy the proof found (a static
 * each unit of the module has: lockdep's `__key.0`, two `put_ldev`), by its place in the module's
 * symbol table. For a loaded module, matching found it at a running address
 * (KernelSymbols.moduleCopyName); for one that is not, the module file's relocations of the
 * proven pre code named it (`fileStatics`, by learnedKey; on-disk.ts). A name a loaded module has
 * several times that matching did not find is refused (kind ambiguous) rather than guessed; one
 * the file did not name goes bare, and the kernel refuses it at load if the file has it twice.
 */
function lateName(
  external: External & { module: string },
  target: string,
  symbols: KernelSymbols,
  learned: ReadonlyMap<string, LearnedSymbol>,
  loaded: LoadedModules,
  fileStatics: ReadonlyMap<string, string>,
): string {
  const { name } = external;
  if (!loaded.has(target)) return (external.local && target === external.module ? fileStatics.get(learnedKey(external.unit, name)) : undefined) ?? name;
  const copies = symbols.lookup(name).filter((s) => s.module === target).length;
  if (copies <= 1) return name;
  const known = learned.get(external.local ? learnedKey(external.unit, name) : moduleLearnedKey(external.module, name))?.address;
  const copy = known === undefined ? undefined : symbols.moduleCopyName(target, name, known);
  if (copy !== undefined) return copy;
  throw new UserError(`The new code of the module ${external.module} refers to ${name}, which ${target} has ${copies} times, and matching did not tell which one.`, {
    kind: 'ambiguous',
    object: target,
    unit: external.unit,
    function: name,
  });
}

/**
 * The modules a section the loader reads at insmod refers into (a jump label entry naming a
 * pr_debug descriptor of the module, a static call key): those entries cannot be written again
 * at each load, so the fix binds them at insmod to the copy loaded now and keeps it loaded. A
 * module that is not loaded then is refused by name (kind late-reference).
 */
function pinnedModules(model: ObjectModel, externals: ReadonlyMap<string, External>, targets: ModuleTargets, symbols: KernelSymbols, loaded: LoadedModules): Set<string> {
  const pinned = new Set<string>();
  for (const section of model.sections) {
    if (writableLater(section.name)) continue;
    for (const rela of section.relocations ?? []) {
      const external = rela.symbol && rela.symbol.section === SHN_UNDEF ? externals.get(rela.symbol.name) : undefined;
      if (external?.module === undefined || pinned.has(external.module)) continue;
      if (moduleTarget({ ...external, module: external.module }, targets, symbols) === 'vmlinux') continue;
      if (!loaded.has(external.module)) {
        throw new UserError(
          `The new code of the module ${external.module} refers to ${external.name} from ${section.name}, an entry the loader reads at insmod: such a fix applies only while ${external.module} is loaded (and keeps it loaded); load it first.`,
          { kind: 'late-reference', object: external.module, section: section.name, offset: rela.offset, function: external.name },
        );
      }
      pinned.add(external.module);
    }
  }
  return pinned;
}

/**
 * Hooks run at apply and at undo, not at each load of a module: a fix with hooks to a module
 * binds to the copy loaded at apply and keeps it loaded (pinned), so that the hooks' references
 * into the module stay valid. A module not loaded then is refused by name.
 */
function pinForHooks(update: UpdatePackage, pinned: Set<string>, loaded: LoadedModules): void {
  if (!update.hooks?.length) return;
  for (const unit of update.units) {
    if (unit.module === undefined || pinned.has(unit.module)) continue;
    if (!loaded.has(unit.module)) {
      throw new UserError(
        `The update ${update.id} has hooks and fixes the module ${unit.module}, which is not loaded: hooks run at apply and undo, so such a fix applies only while the module is loaded (and keeps it loaded); load it first.`,
        { kind: 'late-reference', object: unit.module, unit: unit.unit },
      );
    }
    pinned.add(unit.module);
  }
}

/**
 * Gives every undefined symbol of the update module that vmlinux defines its running address
 * (SHN_ABS), so the loader needs no export for it, and takes out the references into loadable
 * modules for the core module to write at each load (`late`). `targets` tells what the
 * modules define and export (the running kernel's, or the files on disk for a module not
 * loaded).
 */
export function resolveUpdateModule(
  update: UpdatePackage,
  symbols: KernelSymbols,
  learned: ReadonlyMap<string, LearnedSymbol>,
  loaded: LoadedModules = new LoadedModules([]),
  targets: ModuleTargets = kallsymsTargets(symbols, loaded),
  fileStatics: ReadonlyMap<string, string> = new Map(),
): ResolvedModule {
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
  const pinned = pinnedModules(model, externals, targets, symbols, loaded);
  pinForHooks(update, pinned, loaded);
  const lateSymbols = new Map<ModelSymbol, { module: string; target: string; name: string }>();
  for (const symbol of model.symbols) {
    if (symbol.section !== SHN_UNDEF || symbol.name === '') continue;
    // The shadow API is tsplice_core's: bound to its running address like vmlinux's (the loader
    // would want a symbol version the update module cannot have). tsplice_core cannot be
    // unloaded while it holds any update (kmod/core.c), so the address stays valid.
    if (SHADOW_FUNCTIONS.includes(symbol.name)) {
      const address = theOne(symbol.name, symbols.lookup(symbol.name).filter((s) => s.module === CORE_MODULE), ' (of the core module)');
      if (address === undefined) throw new UserError(`The new code calls ${symbol.name}, which the loaded core module ${CORE_MODULE} does not have: it is older than the update.`, { kind: 'unresolved-reference', function: symbol.name });
      symbol.section = SHN_ABS;
      symbol.value = address;
      resolved.set(symbol.name, address);
      continue;
    }
    const external = externals.get(symbol.name);
    if (external?.module !== undefined && pinned.has(external.module)) {
      const address = moduleAddress({ ...external, module: external.module }, symbols, learned, loaded);
      symbol.section = SHN_ABS;
      symbol.value = address;
      resolved.set(symbol.name, address);
      continue;
    }
    const target = external?.module !== undefined ? moduleTarget({ ...external, module: external.module }, targets, symbols) : 'vmlinux';
    symbol.section = SHN_ABS;
    if (external?.module !== undefined && target !== 'vmlinux') {
      lateSymbols.set(symbol, { module: external.module, target, name: lateName({ ...external, module: external.module }, target, symbols, learned, loaded, fileStatics) });
      symbol.value = 0n;
      continue;
    }
    const address = vmlinuxAddress(external?.name ?? symbol.name, external, symbols, learned);
    symbol.value = address;
    resolved.set(symbol.name, address);
  }
  const late = takeLateReferences(model, lateSymbols);
  return { bytes: writeElf(model), resolved, late, pinned };
}
