/**
 * Functions renamed with their code unchanged. A fix may rename a function as it moves it
 * (kernel/params.c: the `__init` `locate_module_kobject` becomes `lookup_or_create_module_kobject`,
 * `destroy_params` becomes `module_destroy_params`); its callers then differ from their pre
 * versions only in the name they call. When the renamed function's code is the same, so is the
 * call: such a caller is unchanged, and an `__init` caller of it is no `__init` change. The
 * renamed function itself is still carried as new for any new code that calls it; the pairing
 * only serves comparison (Correlation.renamed).
 */
import type { Rela } from '../elf/index.js';
import { comparePieces } from './compare.js';
import type { Correlation } from './correlate.js';
import type { DiffObject, ObjectPiece } from './object.js';

/** Pairs each pre function left without a post version with the one new post function of the same code. */
export function findRenamedFunctions(pre: DiffObject, post: DiffObject, correlation: Correlation): void {
  const gone = pre.functions.filter((p) => !correlation.preToPost.has(p));
  const added = post.functions.filter((p) => !correlation.postToPre.has(p));
  for (const old of gone) {
    const same = added.filter((candidate) => candidate.end - candidate.start === old.end - old.start && comparePieces(pre, old, post, candidate, correlation).verdict === 'same');
    if (same.length !== 1) continue;
    const renamed = same[0] as ObjectPiece;
    if ([...correlation.renamed.values()].includes(renamed)) continue;
    correlation.renamed.set(old, renamed);
  }
}

/** Whether two relocations reach the same place of a renamed function (a call of it under its new name). */
export function reachesRenamed(pre: DiffObject, prePiece: ObjectPiece, a: Rela, post: DiffObject, postPiece: ObjectPiece, b: Rela, correlation: Correlation): boolean {
  if (correlation.renamed.size === 0) return false;
  const from = pre.placeOf(prePiece, a);
  const to = post.placeOf(postPiece, b);
  return from !== undefined && to !== undefined && correlation.renamed.get(from.piece) === to.piece && from.offset === to.offset;
}
