/**
 * What a loadable module defines and which of its dependencies export a name: the facts the
 * new code's references into modules are bound by (src/switch/late-references.ts). For a
 * module loaded now they come from /proc/kallsyms and /proc/modules; for one that is not, from
 * its file and its dependencies' files under /lib/modules/RELEASE (modules.dep lists each
 * module's dependencies, transitively, the way modprobe loads them).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseElf, SHN_UNDEF, type ElfFile } from '../elf/index.js';
import { UserError } from '../host/errors.js';
import type { KernelSymbols } from './kallsyms.js';
import type { LoadedModules } from './loaded-modules.js';

/** Where a module's names are defined. */
export interface ModuleTargets {
  /** Whether `module` itself defines `name` (a function or object of any of its units). */
  defines(module: string, name: string): boolean;
  /** The module among those `module` depends on that exports `name`, if one does. */
  exporter(module: string, name: string): string | undefined;
}

/** The name the kernel knows a module file by: its base name, '-' read as '_'. */
export function moduleNameOfFile(path: string): string {
  return (path.split('/').pop() ?? path).replace(/\.ko(\.[a-z]+)?$/, '').replace(/-/g, '_');
}

/** A symbol of a module that is loaded now: from /proc/kallsyms and /proc/modules. */
export function kallsymsTargets(symbols: KernelSymbols, loaded: LoadedModules): ModuleTargets {
  return {
    defines: (module, name) => name === '__this_module' || symbols.lookup(name).some((s) => s.module === module),
    exporter(module, name) {
      return symbols
        .lookup(`__ksymtab_${name}`)
        .map((s) => s.module)
        .find((owner): owner is string => owner !== undefined && owner !== module && loaded.dependsOn(module, owner));
    },
  };
}

/** The module files of one kernel release, read from modules.dep and the files it names. */
export class ModuleFiles {
  readonly dir: string;
  private readonly entries = new Map<string, { path: string; deps: string[] }>();
  private readonly defined = new Map<string, Set<string>>();

  /** `root` is where /lib/modules is (the guest's `/`, a test's temporary tree). */
  constructor(release: string, root = '/') {
    this.dir = join(root, 'lib/modules', release);
    const depFile = join(this.dir, 'modules.dep');
    let text: string;
    try {
      text = readFileSync(depFile, 'utf8');
    } catch (error) {
      throw new UserError(`Cannot read ${depFile}: ${(error as Error).message}`, { kind: 'cannot-read', object: depFile });
    }
    for (const line of text.split('\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const path = line.slice(0, colon).trim();
      const deps = line.slice(colon + 1).trim().split(/\s+/).filter((d) => d !== '');
      this.entries.set(moduleNameOfFile(path), { path, deps: deps.map(moduleNameOfFile) });
    }
  }

  /** The file of module `name` ('-' and '_' alike), or undefined when modules.dep has none. */
  path(name: string): string | undefined {
    const entry = this.entries.get(name.replace(/-/g, '_'));
    return entry ? join(this.dir, entry.path) : undefined;
  }

  /** The modules `name` depends on, directly or through others. */
  dependencies(name: string): string[] {
    return this.entries.get(name.replace(/-/g, '_'))?.deps ?? [];
  }

  /** The parsed file of module `name`; compressed files are refused by name. */
  elf(name: string): ElfFile {
    const path = this.path(name);
    if (path === undefined) throw new UserError(`${join(this.dir, 'modules.dep')} lists no module ${name}.`, { kind: 'missing-file', object: name });
    if (!path.endsWith('.ko')) throw new UserError(`${path} is compressed; tsplice reads uncompressed modules only.`, { kind: 'unsupported-file', object: path });
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (error) {
      throw new UserError(`Cannot read ${path}: ${(error as Error).message}`, { kind: 'cannot-read', object: path });
    }
    return parseElf(bytes, path);
  }

  /** The names module `name`'s file defines. */
  private definedBy(name: string): Set<string> {
    let names = this.defined.get(name);
    if (!names) {
      names = new Set(this.elf(name).symbols.filter((s) => s.shndx !== SHN_UNDEF && s.name !== '').map((s) => s.name));
      this.defined.set(name, names);
    }
    return names;
  }

  /** Answers from the files, for modules that are not loaded. */
  targets(): ModuleTargets {
    return {
      defines: (module, name) => name === '__this_module' || this.definedBy(module).has(name),
      exporter: (module, name) => this.dependencies(module).find((dep) => this.path(dep) !== undefined && this.definedBy(dep).has(`__ksymtab_${name}`)),
    };
  }
}

/** Loaded modules answered by the running kernel, the others by their files. */
export function combinedTargets(loaded: LoadedModules, running: ModuleTargets, files: ModuleTargets | undefined): ModuleTargets {
  const pick = (module: string): ModuleTargets => (loaded.has(module) || !files ? running : files);
  return {
    defines: (module, name) => pick(module).defines(module, name),
    exporter: (module, name) => pick(module).exporter(module, name),
  };
}
