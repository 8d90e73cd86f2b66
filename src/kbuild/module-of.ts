/**
 * Which loadable module kbuild links a unit's object into: the one home of that fact.
 *
 * kbuild compiles an object that is part of a module (`part-of-module` in
 * scripts/Makefile.lib: its object is in real-obj-m) with `$(KBUILD_CFLAGS_MODULE)`, which is
 * `-DMODULE`, and every object with `-DKBUILD_MODNAME='"name"'`: the `.ko` name with `-` as
 * `_`, the composite object's name for a part of one (`nft_exthdr.o` is part of `nf_tables`),
 * and the names joined with `:` when one object is a part of several composites
 * (`modname = $(subst $(space),:,$(__modname))`). Both are read from the command kbuild
 * recorded in `.<object>.cmd` when it compiled the pre object, so the answer is kbuild's own,
 * not a second reading of the Makefiles.
 */
import { UserError } from '../host/errors.js';
import type { BuildStatus } from './build-status.js';
import { objectPathOf, recordedCommand } from './compile.js';
import type { PreparedTree } from './tree.js';

/**
 * The modules a recorded compile command builds its object for: [] when it is compiled for
 * vmlinux (no `-DMODULE`), else the names in KBUILD_MODNAME. Exported for tests.
 */
export function modulesOfCommand(command: string): string[] {
  if (!/(^|\s)-DMODULE(?=\s|$)/.test(command)) return [];
  // kbuild quotes it for the shell: -DKBUILD_MODNAME='"nf_tables"'.
  const quoted = /(?:^|\s)-DKBUILD_MODNAME=(?:'"([^"']*)"'|"\\"([^"\\]*)\\""|(\S+))/.exec(command);
  const names = (quoted?.[1] ?? quoted?.[2] ?? quoted?.[3] ?? '').split(':').filter((n) => n !== '');
  return names;
}

/**
 * The module (`.ko` name as KBUILD_MODNAME has it) that `unit` is compiled into, or undefined
 * for vmlinux; asked after the pre compile, when kbuild has recorded the command. `status` is
 * what kbuild's Makefiles say (build-status.ts): a unit they list as built in that kbuild
 * compiles for a module is linked into both, and refused, as is a unit linked into several
 * modules: one update function would have to replace code in each of them.
 */
export function moduleOf(tree: PreparedTree, unit: string, status: BuildStatus): string | undefined {
  const command = recordedCommand(tree, objectPathOf(unit));
  const modules = modulesOfCommand(command);
  if (/(^|\s)-DMODULE(?=\s|$)/.test(command) && modules.length === 0) {
    throw new UserError(`kbuild compiles ${unit} for a module but its recorded command names no KBUILD_MODNAME.`, { kind: 'not-prepared', unit });
  }
  if (modules.length > 1) {
    throw new UserError(`${unit} is linked into several modules (${modules.join(', ')}); tsplice updates a unit of one module or of vmlinux.`, {
      kind: 'several-modules',
      unit,
      reason: `linked into several modules (${modules.join(', ')})`,
    });
  }
  const [module] = modules;
  if (module !== undefined && status === 'built-in') {
    throw new UserError(`${unit} is linked both into vmlinux and into the module ${module}; tsplice updates a unit of one module or of vmlinux.`, {
      kind: 'built-in-and-module',
      unit,
      reason: `linked both into vmlinux and into the module ${module}`,
    });
  }
  return module;
}
