/**
 * References of the new code into loadable modules, which the module loader must not resolve:
 * a module may be unloaded while an update is applied and loaded again elsewhere, or not be
 * loaded yet. Each relocation naming such a symbol is taken out of the update module (its type
 * becomes R_X86_64_NONE, which the loader skips, and the symbol an absolute 0 it needs no export
 * for) and handed to the core module, which writes the field each time the module's parts are
 * bound to a loaded copy (kmod/late.c). References to vmlinux stay resolved at insmod.
 */
import { R_X86_64_32S, R_X86_64_64, R_X86_64_NONE, R_X86_64_PC32, R_X86_64_PLT32, relocationName, type ModelSymbol, type ObjectModel } from '../elf/index.js';
import { UserError } from '../host/errors.js';
import type { ModuleTargets } from '../match/module-targets.js';

export type { ModuleTargets };

/** One relocation of the update module taken out for the core module. */
export interface LateReference {
  /** The update module's section holding the field, and the field's offset in it. */
  section: string;
  offset: number;
  type: 'pc32' | '32s' | '64';
  addend: bigint;
  /** The module whose parts bind it (the referring unit's module). */
  module: string;
  /** The module that defines `symbol`: `module` or a dependency. */
  target: string;
  symbol: string;
}

const LATE_TYPES = new Map<number, LateReference['type']>([
  [R_X86_64_PC32, 'pc32'],
  [R_X86_64_PLT32, 'pc32'],
  [R_X86_64_32S, '32s'],
  [R_X86_64_64, '64'],
]);

/**
 * Sections whose fields the core module may write after the loader ran: code and data of the
 * new code. Special sections (jump labels, static calls, alternatives, exception tables) are
 * read by the loader at insmod, before any late value could be there.
 */
export function writableLater(section: string): boolean {
  return /^\.(text|rodata|data)(\.|$)/.test(section) && !section.startsWith('.text.unlikely.__');
}

/**
 * The relocations of `model` whose symbol is in `late` (symbol -> module and target), taken
 * out: returned, and turned into R_X86_64_NONE in the model. A field in a special section or
 * of another type is refused by name (kind late-reference).
 */
export function takeLateReferences(model: ObjectModel, late: ReadonlyMap<ModelSymbol, { module: string; target: string; name: string }>): LateReference[] {
  const taken: LateReference[] = [];
  for (const section of model.sections) {
    for (const rela of section.relocations ?? []) {
      const to = rela.symbol ? late.get(rela.symbol) : undefined;
      if (!to) continue;
      const type = LATE_TYPES.get(rela.type);
      if (!type || !writableLater(section.name)) {
        throw new UserError(
          `The new code refers to ${to.name} of the module ${to.target} from ${section.name} (${relocationName(rela.type)} at 0x${rela.offset.toString(16)}), which tsplice cannot write again each time ${to.module} loads.`,
          { kind: 'late-reference', object: to.module, section: section.name, offset: rela.offset, function: to.name },
        );
      }
      taken.push({ section: section.name, offset: rela.offset, type, addend: rela.addend, module: to.module, target: to.target, symbol: to.name });
      rela.type = R_X86_64_NONE;
    }
  }
  return taken;
}
