/**
 * Step "correlate": pair each post function and data object with the pre one it is a version
 * of. By exact name first; then by canonical name (compiler counters replaced) where that is
 * unique on both sides; then, for names still ambiguous (two static locals `count` in
 * different functions), in order of appearance, which gcc keeps stable for unchanged code.
 */
import { isNumberedLabel } from './names.js';
import type { DiffObject, ObjectPiece } from './object.js';

export class Correlation {
  readonly preToPost = new Map<ObjectPiece, ObjectPiece>();
  readonly postToPre = new Map<ObjectPiece, ObjectPiece>();

  pair(pre: ObjectPiece, post: ObjectPiece): void {
    this.preToPost.set(pre, post);
    this.postToPre.set(post, pre);
  }
}

function groupBy(pieces: readonly ObjectPiece[], key: (p: ObjectPiece) => string): Map<string, ObjectPiece[]> {
  const groups = new Map<string, ObjectPiece[]>();
  for (const piece of pieces) {
    const k = key(piece);
    const list = groups.get(k);
    if (list) list.push(piece);
    else groups.set(k, [piece]);
  }
  return groups;
}

function correlateList(pre: readonly ObjectPiece[], post: readonly ObjectPiece[], correlation: Correlation): void {
  const unpaired = (list: readonly ObjectPiece[], paired: Map<ObjectPiece, ObjectPiece>): ObjectPiece[] =>
    list.filter((p) => !paired.has(p));
  for (const key of [(p: ObjectPiece) => p.symbol.name, (p: ObjectPiece) => p.canonical]) {
    const preGroups = groupBy(unpaired(pre, correlation.preToPost), key);
    const postGroups = groupBy(unpaired(post, correlation.postToPre), key);
    for (const [name, preList] of preGroups) {
      const postList = postGroups.get(name);
      if (preList.length === 1 && postList?.length === 1) correlation.pair(preList[0] as ObjectPiece, postList[0] as ObjectPiece);
    }
  }
  const preGroups = groupBy(unpaired(pre, correlation.preToPost), (p) => p.canonical);
  const postGroups = groupBy(unpaired(post, correlation.postToPre), (p) => p.canonical);
  for (const [name, preList] of preGroups) {
    const postList = postGroups.get(name) ?? [];
    const byIndex = (a: ObjectPiece, b: ObjectPiece): number => a.symbol.index - b.symbol.index;
    preList.sort(byIndex);
    postList.sort(byIndex);
    for (let i = 0; i < Math.min(preList.length, postList.length); i++) {
      correlation.pair(preList[i] as ObjectPiece, postList[i] as ObjectPiece);
    }
  }
}

/**
 * Static locals (`count.3`) are named after their variable, not their function, and renumbered
 * when another static local appears above them: pair them through the correlated functions
 * that use them, in the order those functions refer to them.
 */
function correlateStaticLocals(pre: DiffObject, post: DiffObject, correlation: Correlation): void {
  const referencedLocals = (object: DiffObject, fn: ObjectPiece): ObjectPiece[] => {
    const list: ObjectPiece[] = [];
    for (const rela of fn.relocations) {
      const target = object.target(fn, rela);
      const piece = target.kind === 'piece' ? target.piece : target.kind === 'symbol' ? object.pieceOf(target.symbol) : undefined;
      if (piece && piece.symbol.type !== 2 /* STT_FUNC */ && object.isLocal(piece) && isNumberedLabel(piece.symbol.name) && !list.includes(piece)) {
        list.push(piece);
      }
    }
    return list;
  };
  for (const [preFunction, postFunction] of correlation.preToPost) {
    if (preFunction.symbol.type !== 2 /* STT_FUNC */) continue;
    const postLocals = referencedLocals(post, postFunction);
    for (const preLocal of referencedLocals(pre, preFunction)) {
      if (correlation.preToPost.has(preLocal)) continue;
      const match = postLocals.find((p) => p.canonical === preLocal.canonical && !correlation.postToPre.has(p));
      if (match) correlation.pair(preLocal, match);
    }
  }
}

export function correlate(pre: DiffObject, post: DiffObject): Correlation {
  const correlation = new Correlation();
  correlateList(pre.functions, post.functions, correlation);
  correlateStaticLocals(pre, post, correlation);
  correlateList(pre.dataObjects, post.dataObjects, correlation);
  return correlation;
}
