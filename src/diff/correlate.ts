/**
 * Step "correlate": pair each post function and data object with the pre one it is a version
 * of. By exact name first; then by canonical name (compiler counters replaced) where that is
 * unique on both sides; then, for names still ambiguous (two static locals `count` in
 * different functions), in order of appearance, which gcc keeps stable for unchanged code.
 */
import { isNumberedLabel } from './names.js';
import { isDescriptor, type DiffObject, type ObjectPiece } from './object.js';

export class Correlation {
  readonly preToPost = new Map<ObjectPiece, ObjectPiece>();
  readonly postToPre = new Map<ObjectPiece, ObjectPiece>();
  /**
   * Functions renamed with their code unchanged (renames.ts), pre -> post. Kept apart from
   * the pairs: they make a caller's call the same call when compared, but the post function is
   * still carried as new, and new code never reaches the running one by the old name (which
   * may be `__init` code that is gone).
   */
  readonly renamed = new Map<ObjectPiece, ObjectPiece>();

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
      if (piece && piece.symbol.type !== 2 /* STT_FUNC */ && !isDescriptor(piece) && object.isLocal(piece) && isNumberedLabel(piece.symbol.name) && !list.includes(piece)) {
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

/**
 * What a dynamic debug descriptor (`__dyndbg`) stands for: the texts its pointers lead to
 * (module, function name, file, format). A `pr_debug` added above others renumbers every
 * descriptor after it and shifts their order of use, so neither name nor order pairs them;
 * the message and the function it is in do, where they are unique.
 */
function descriptorKey(object: DiffObject, piece: ObjectPiece): string {
  return piece.relocations
    .map((rela) => {
      const target = object.target(piece, rela);
      if (target.kind === 'string') return `s:${target.text}`;
      const literal = target.kind === 'piece' ? target.piece : target.kind === 'symbol' ? object.pieceOf(target.symbol) : undefined;
      if (literal && object.isConstantLabel(literal)) return `l:${Buffer.from(object.bytes(literal)).toString('latin1')}`;
      return target.kind === 'symbol' ? `y:${target.symbol.name}` : `?:${rela.offset - piece.start}`;
    })
    .join('\0');
}

function correlateDescriptors(pre: DiffObject, post: DiffObject, correlation: Correlation): void {
  const descriptors = (object: DiffObject): Map<string, ObjectPiece[]> =>
    groupBy(
      object.dataObjects.filter(isDescriptor),
      (p) => descriptorKey(object, p),
    );
  const postGroups = descriptors(post);
  for (const [key, preList] of descriptors(pre)) {
    // The same message twice in one function: equal but for the line, so order is as good.
    const postList = postGroups.get(key) ?? [];
    for (let i = 0; i < Math.min(preList.length, postList.length); i++) correlation.pair(preList[i] as ObjectPiece, postList[i] as ObjectPiece);
  }
}

/** Descriptors are paired by what they say only (correlateDescriptors): one left over is removed or new, never renamed. */
export function correlate(pre: DiffObject, post: DiffObject): Correlation {
  const correlation = new Correlation();
  correlateList(pre.functions, post.functions, correlation);
  correlateDescriptors(pre, post, correlation);
  correlateStaticLocals(pre, post, correlation);
  correlateList(
    pre.dataObjects.filter((p) => !isDescriptor(p)),
    post.dataObjects.filter((p) => !isDescriptor(p)),
    correlation,
  );
  return correlation;
}
