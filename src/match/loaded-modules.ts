/**
 * The loadable modules the running kernel has loaded, from /proc/modules: their names and which
 * module uses which. A module's code may refer to a symbol of a module it uses (kbuild's
 * dependency, `depends:` in modinfo): the loader made the user hold a reference on it, so it
 * stays loaded as long as the user does, and that is what makes its addresses safe to bind to.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../host/errors.js';

export class LoadedModules {
  /** module -> the modules that use it (its "used by" column). */
  private readonly usersOf = new Map<string, Set<string>>();

  constructor(entries: readonly { name: string; usedBy: readonly string[] }[]) {
    for (const e of entries) this.usersOf.set(e.name, new Set(e.usedBy));
  }

  names(): Set<string> {
    return new Set(this.usersOf.keys());
  }

  has(module: string): boolean {
    return this.usersOf.has(module);
  }

  /**
   * Whether `user` depends on `module`, directly or through modules in between: then `module`
   * cannot be unloaded while `user` is loaded.
   */
  dependsOn(user: string, module: string): boolean {
    const seen = new Set<string>();
    const waiting = [module];
    for (let current = waiting.pop(); current !== undefined; current = waiting.pop()) {
      for (const u of this.usersOf.get(current) ?? []) {
        if (u === user) return true;
        if (!seen.has(u)) {
          seen.add(u);
          waiting.push(u);
        }
      }
    }
    return false;
  }
}

/**
 * Parses /proc/modules: `name size refcount users state address`, the users a comma-separated
 * list ending in a comma, or `-` for none (kernel/module/procfs.c, print_unload_info).
 */
export function parseProcModules(text: string, source = '/proc/modules'): LoadedModules {
  const entries: { name: string; usedBy: string[] }[] = [];
  text.split('\n').forEach((line, index) => {
    if (line === '') return;
    const fields = line.split(' ');
    const [name, , , users] = fields;
    if (!name || users === undefined || fields.length < 6) {
      throw new UserError(`${source}: line ${index + 1} is not a module line: '${line.slice(0, 80)}'.`, { kind: 'bad-kernel-record', object: source, reason: `line ${index + 1} is not a module line` });
    }
    entries.push({ name, usedBy: users === '-' ? [] : users.split(',').filter((u) => u !== '') });
  });
  return new LoadedModules(entries);
}

export function readLoadedModules(path = '/proc/modules'): LoadedModules {
  return parseProcModules(readFileSync(path, 'utf8'), path);
}
