/**
 * Step "compare": whether a post function or data object is the same code or data as its pre
 * version. Two pieces are equal when their bytes match outside relocation fields and each
 * relocation, at the same offset and of the same type, names the same target: the correlated
 * symbol with the same addend, the same string, or the same place in a correlated object.
 *
 * A difference that is only a source line number is no change: `__LINE__` passed to a
 * line-taking function (`__might_sleep`, `__warn_printk`, …) as `mov $imm, %reg`, or a
 * string that differs only in its digits ("file.c:123").
 */
import { relocationInfo, SHN_UNDEF, type Rela } from '../elf/index.js';
import type { Correlation } from './correlate.js';
import { canonicalName } from './names.js';
import { isDescriptor, type DiffObject, type ObjectPiece, type RelocationTarget } from './object.js';
import { reachesRenamed } from './renames.js';

/**
 * `changed` says why (the first difference found) and, when it is at one place, where: the
 * offset in the piece and, for a relocation, the targets before and after.
 */
export type Verdict =
  | { verdict: 'same' }
  | { verdict: 'line-numbers-only' }
  | { verdict: 'changed'; why: string; offset?: number; targets?: { pre: string; post: string } };

/** Functions whose arguments include a source line number in the kernel (include/linux/kernel.h, bug.h, …). */
const LINE_TAKERS = new Set([
  '__might_sleep',
  '__might_resched',
  '__might_fault',
  '__cant_sleep',
  '__cant_migrate',
  '__warn_printk',
  'warn_slowpath_fmt',
  '__warn',
  'lockdep_rcu_suspicious',
  '__rcu_read_lock_held',
  'printk',
  '_printk',
  'panic',
]);

type TargetEquality = 'same' | 'line' | 'different';

function digitsOnlyDifference(a: string, b: string): boolean {
  return a.replace(/\d+/g, '#') === b.replace(/\d+/g, '#');
}

/** Two constant labels (object.isConstantLabel) are the same literal when their bytes are. */
function sameLiteral(pre: DiffObject, a: ObjectPiece, post: DiffObject, b: ObjectPiece): TargetEquality | undefined {
  if (!pre.isConstantLabel(a) || !post.isConstantLabel(b)) return undefined;
  return Buffer.from(pre.bytes(a)).equals(Buffer.from(post.bytes(b))) ? 'same' : 'different';
}

function sameTarget(a: RelocationTarget, b: RelocationTarget, correlation: Correlation, pre: DiffObject, post: DiffObject): TargetEquality {
  if (a.kind === 'string' && b.kind === 'string') {
    if (a.text === b.text) return 'same';
    return digitsOnlyDifference(a.text, b.text) ? 'line' : 'different';
  }
  if (a.kind === 'piece' && b.kind === 'piece') {
    const literal = a.offset === b.offset ? sameLiteral(pre, a.piece, post, b.piece) : undefined;
    if (literal) return literal;
    return correlation.preToPost.get(a.piece) === b.piece && a.offset === b.offset ? 'same' : 'different';
  }
  if (a.kind === 'section' && b.kind === 'section') {
    return canonicalName(a.section) === canonicalName(b.section) && a.offset === b.offset ? 'same' : 'different';
  }
  if (a.kind === 'symbol' && b.kind === 'symbol') {
    if (a.addend !== b.addend) return 'different';
    const prePiece = pre.pieceOf(a.symbol);
    const postCandidate = post.pieceOf(b.symbol);
    const literal = prePiece && postCandidate ? sameLiteral(pre, prePiece, post, postCandidate) : undefined;
    if (literal) return literal;
    if (prePiece) {
      const postPiece = correlation.preToPost.get(prePiece);
      // The same piece, named by its own symbol or by an alias of it (cleanup_module).
      return postPiece !== undefined && postCandidate === postPiece ? 'same' : 'different';
    }
    // Undefined and other symbols outside the object are the same when their names are.
    return a.symbol.name === b.symbol.name && (a.symbol.shndx === SHN_UNDEF) === (b.symbol.shndx === SHN_UNDEF) ? 'same' : 'different';
  }
  return 'different';
}

/** Bytes of a piece with every relocation field zeroed: what must be equal outside relocations. */
function maskedBytes(object: DiffObject, piece: ObjectPiece): Uint8Array {
  const bytes = Uint8Array.from(object.bytes(piece));
  for (const rela of piece.relocations) {
    const size = relocationInfo(rela.type)?.size ?? 0;
    bytes.fill(0, rela.offset - piece.start, rela.offset - piece.start + size);
  }
  return bytes;
}

function describeTarget(object: DiffObject, piece: ObjectPiece, rela: Rela): string {
  const target = object.target(piece, rela);
  switch (target.kind) {
    case 'symbol':
      return `${target.symbol.name}${target.addend ? `${target.addend > 0n ? '+' : ''}${target.addend}` : ''}`;
    case 'piece':
      return `${target.piece.symbol.name}+${target.offset}`;
    case 'string':
      return JSON.stringify(target.text);
    case 'section':
      return `${target.section}+${target.offset}`;
  }
}

/** In a descriptor (`struct _ddebug`), `unsigned int lineno:18` follows the four pointers modname, function, filename, format. */
const DYNDBG_LINENO_OFFSET = 32;
const DYNDBG_LINENO_MASK = (1 << 18) - 1;

/**
 * Whether two `pr_debug` descriptors differ only in the 18-bit line number (code moved in the
 * file). The running kernel's descriptor keeps the old line in the dynamic debug control file:
 * that is all, the message, its call site key and its flags are the same.
 */
function onlyDescriptorLineDiffers(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length < DYNDBG_LINENO_OFFSET + 4 || a.length !== b.length) return false;
  const word = (bytes: Uint8Array): number => new DataView(bytes.buffer, bytes.byteOffset + DYNDBG_LINENO_OFFSET, 4).getUint32(0, true);
  if ((word(a) & ~DYNDBG_LINENO_MASK) !== (word(b) & ~DYNDBG_LINENO_MASK)) return false;
  return a.every((byte, k) => byte === b[k] || (k >= DYNDBG_LINENO_OFFSET && k < DYNDBG_LINENO_OFFSET + 3));
}

/**
 * Whether every byte difference of two equally long functions sits in a `mov $imm, %reg`
 * that feeds a line-taking call: the instruction pair has equal lengths and the next call
 * after it (within a few instructions) goes to a LINE_TAKERS function.
 */
function onlyLineImmediatesDiffer(pre: DiffObject, prePiece: ObjectPiece, post: DiffObject, postPiece: ObjectPiece, a: Uint8Array, b: Uint8Array): boolean {
  const preInstructions = pre.instructions(prePiece);
  const postInstructions = post.instructions(postPiece);
  if (preInstructions.length !== postInstructions.length) return false;
  const callTargets = new Map<number, string>();
  for (const rela of postPiece.relocations) {
    const target = post.target(postPiece, rela);
    if (target.kind === 'symbol') callTargets.set(rela.offset - postPiece.start, target.symbol.name);
  }
  for (let i = 0; i < postInstructions.length; i++) {
    const p = preInstructions[i];
    const q = postInstructions[i];
    if (!p || !q || p.offset !== q.offset || p.length !== q.length) return false;
    let differs = false;
    for (let k = q.offset; k < q.offset + q.length; k++) if (a[k] !== b[k]) differs = true;
    if (!differs) continue;
    if (!p.movesImmediateToRegister || !q.movesImmediateToRegister) return false;
    const nextCall = postInstructions.slice(i + 1, i + 9).find((n) => n.isCall);
    const callee = nextCall ? callTargets.get(nextCall.offset + 1) : undefined;
    if (!callee || !LINE_TAKERS.has(callee)) return false;
  }
  return true;
}

export function comparePieces(
  pre: DiffObject,
  prePiece: ObjectPiece,
  post: DiffObject,
  postPiece: ObjectPiece,
  correlation: Correlation,
): Verdict {
  const preSize = prePiece.end - prePiece.start;
  const postSize = postPiece.end - postPiece.start;
  if (preSize !== postSize) return { verdict: 'changed', why: `size ${preSize} -> ${postSize}` };
  if (prePiece.relocations.length !== postPiece.relocations.length) {
    return { verdict: 'changed', why: `${prePiece.relocations.length} -> ${postPiece.relocations.length} relocations` };
  }
  let lineOnly = false;
  for (let i = 0; i < prePiece.relocations.length; i++) {
    const a = prePiece.relocations[i] as Rela;
    const b = postPiece.relocations[i] as Rela;
    const at = a.offset - prePiece.start;
    if (at !== b.offset - postPiece.start || a.type !== b.type) {
      return { verdict: 'changed', why: `relocation ${i} moved or changed type`, offset: at };
    }
    let equality = sameTarget(pre.target(prePiece, a), post.target(postPiece, b), correlation, pre, post);
    if (equality === 'different' && reachesRenamed(pre, prePiece, a, post, postPiece, b, correlation)) equality = 'same';
    if (equality === 'different') {
      const targets = { pre: describeTarget(pre, prePiece, a), post: describeTarget(post, postPiece, b) };
      return { verdict: 'changed', why: `at +0x${at.toString(16)} ${targets.pre} -> ${targets.post}`, offset: at, targets };
    }
    if (equality === 'line') lineOnly = true;
  }
  const a = maskedBytes(pre, prePiece);
  const b = maskedBytes(post, postPiece);
  const firstDifference = a.findIndex((byte, k) => byte !== b[k]);
  if (firstDifference >= 0) {
    const isCode = prePiece.symbol.type === 2; // STT_FUNC
    if (isCode && onlyLineImmediatesDiffer(pre, prePiece, post, postPiece, a, b)) return { verdict: 'line-numbers-only' };
    if (isDescriptor(postPiece) && onlyDescriptorLineDiffers(a, b)) return { verdict: 'line-numbers-only' };
    return { verdict: 'changed', why: `bytes differ at +0x${firstDifference.toString(16)}`, offset: firstDifference };
  }
  return lineOnly ? { verdict: 'line-numbers-only' } : { verdict: 'same' };
}
