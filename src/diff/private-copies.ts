/**
 * Private copies of the static functions new code calls that run-pre matching cannot place.
 *
 * Matching learns the running address of a unit's static only from the pre code of the
 * functions it replaces. When the post code calls a static that no replaced pre code calls, the
 * module's reference to it can only be resolved by name, and a header `static inline` that gcc
 * emitted out of line is in /proc/kallsyms once per unit that did so (`set_pte`, five times): no
 * name says which copy the unit's code used. A call does not care which identical copy it
 * reaches, so the update carries its own copy, compiled in the same unit, and the new code calls
 * that. Only calls: a static whose address new code takes (a callback registered here and
 * unregistered by old code) must stay the running one, so such references are left to
 * resolution by name as before.
 */
import { R_X86_64_PC32, R_X86_64_PLT32, STB_LOCAL, STT_FUNC, type Rela } from '../elf/index.js';
import type { DiffObject, ObjectPiece } from './object.js';
import type { DiffStep, DiffState } from './pipeline.js';

const CALL_REL32 = 0xe8;
const JMP_REL32 = 0xe9;

/** The post function a relocation calls (`call`/`jmp rel32`), when it is a static of the unit. */
function calledStatic(object: DiffObject, caller: ObjectPiece, rela: Rela): ObjectPiece | undefined {
  if (rela.type !== R_X86_64_PLT32 && rela.type !== R_X86_64_PC32) return undefined;
  const opcodeAt = rela.offset - 1;
  if (opcodeAt < caller.start) return undefined;
  const opcode = caller.section.data[opcodeAt];
  if (opcode !== CALL_REL32 && opcode !== JMP_REL32) return undefined;
  // The entry of a function, named through its section (`.text.foo - 4`) or its symbol.
  const place = object.placeOf(caller, rela);
  const callee = place?.offset === 0n ? place.piece : undefined;
  if (!callee || callee === caller || callee.symbol.bind !== STB_LOCAL || callee.symbol.type !== STT_FUNC) return undefined;
  return callee;
}

/** Pre functions that matching will learn: those the replaced functions' pre code refers to. */
function learnableStatics(state: DiffState): Set<ObjectPiece> {
  const learnable = new Set<ObjectPiece>();
  for (const f of state.functions) {
    if (!f.pre) continue;
    for (const rela of f.pre.relocations) {
      const place = state.pre.placeOf(f.pre, rela);
      if (place) learnable.add(place.piece);
    }
  }
  return learnable;
}

/** Step: carry a copy of each static that carried code newly calls (and, in turn, what it calls). */
export const copyUnplacedStaticCallees: DiffStep = {
  name: 'copy static callees matching cannot place',
  run(state) {
    const learnable = learnableStatics(state);
    const carried = new Set(state.functions.map((f) => f.post));
    for (let i = 0; i < state.functions.length; i++) {
      const caller = state.functions[i];
      if (!caller) continue;
      for (const rela of caller.post.relocations) {
        const callee = calledStatic(state.post, caller.post, rela);
        if (!callee || carried.has(callee)) continue;
        const pre = state.correlation.postToPre.get(callee);
        if (pre && learnable.has(pre)) continue;
        carried.add(callee);
        state.functions.push({
          name: callee.symbol.name,
          status: 'copy',
          section: callee.section.name,
          why: `private copy: ${caller.name} calls this static, and no replaced function's pre code does, so matching cannot tell which running ${callee.symbol.name} the unit uses`,
          post: callee,
        });
      }
    }
  },
};
