/**
 * The hunks of a one-file unified diff (what `diff -u -p` writes): split, and written back
 * with only some of them. A corpus patch carries, for each header a file needs, only the hunks
 * that file needs to compile, not the whole header diff (src/release/hunk-select.ts chooses).
 *
 * Any subset of a diff's hunks applies to the old file: a hunk's context and removed lines
 * are old-file lines, and its old-side line numbers count old-file lines, which the hunks left
 * out do not move. Only the new-side numbers depend on the hunks before; they are recomputed
 * so a subset is a valid diff on its own.
 */

export interface Hunk {
  /** The `@@ -a,b +c,d @@ context` line as diff wrote it. */
  at: string;
  oldStart: number;
  oldCount: number;
  newStart: number;
  newCount: number;
  /** The lines after the `@@` line: ' ', '-', '+' and '\ No newline at end of file'. */
  lines: string[];
}

export interface SplitDiff {
  /** The `--- a/PATH` and `+++ b/PATH` lines (and anything diff put before them). */
  head: string[];
  hunks: Hunk[];
}

const HUNK_AT = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/;

/** Splits a one-file unified diff into its file lines and hunks. */
export function splitHunks(diff: string): SplitDiff {
  const lines = diff.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const head: string[] = [];
  const hunks: Hunk[] = [];
  for (const line of lines) {
    const at = HUNK_AT.exec(line);
    if (at) {
      hunks.push({
        at: line,
        oldStart: Number(at[1]),
        oldCount: at[2] === undefined ? 1 : Number(at[2]),
        newStart: Number(at[3]),
        newCount: at[4] === undefined ? 1 : Number(at[4]),
        lines: [],
      });
      continue;
    }
    const current = hunks[hunks.length - 1];
    if (current) current.lines.push(line);
    else head.push(line);
  }
  for (const h of hunks) {
    const old = h.lines.filter((l) => l.startsWith(' ') || l.startsWith('-')).length;
    const added = h.lines.filter((l) => l.startsWith(' ') || l.startsWith('+')).length;
    if (old !== h.oldCount || added !== h.newCount) throw new Error(`Malformed hunk ${h.at}: ${old} old and ${added} new lines, the header says ${h.oldCount} and ${h.newCount}.`);
  }
  return { head, hunks };
}

/**
 * The diff with only the hunks at `keep` (0-based indices, any order), new-side line numbers
 * recomputed for the hunks left out. Empty when `keep` is empty.
 */
export function renderHunks(diff: SplitDiff, keep: Iterable<number>): string {
  const kept = new Set(keep);
  if (kept.size === 0) return '';
  const out = [...diff.head];
  // A hunk left out would have moved every later hunk's new-side lines by its growth.
  let shift = 0;
  diff.hunks.forEach((h, i) => {
    if (!kept.has(i)) {
      shift += h.newCount - h.oldCount;
      return;
    }
    out.push(h.at.replace(/^(@@ -\S+ \+)(\d+)/, (_all, before: string) => `${before}${h.newStart - shift}`), ...h.lines);
  });
  return `${out.join('\n')}\n`;
}

/** The lines a hunk changes (removed and added), for looking names up. */
export function changedLines(h: Hunk): string {
  return h.lines.filter((l) => l.startsWith('+') || l.startsWith('-')).join('\n');
}

/** All of a hunk's text: the `@@` line's function context, context, removed and added lines. */
export function allLines(h: Hunk): string {
  return [h.at.replace(HUNK_AT, ''), ...h.lines].join('\n');
}

/** `@@ -910,6 +910,9 @@ struct task_struct {` without the trailing function context's spaces. */
export function hunkLabel(h: Hunk): string {
  return h.at.trimEnd();
}

/**
 * One diff of a file from two subsets of the same diff (two corpus patches that each carry some
 * hunks of one header, grouped into one update): every hunk of either, once, in file order.
 * Hunks of one diff never overlap, so a union applies as well as each part; new-side numbers
 * are recomputed for the union. Throws when the two are not parts of one diff (a hunk at the
 * same old line with different text).
 */
export function unionHunks(a: string, b: string): string {
  const sides = [splitHunks(a), splitHunks(b)];
  const byOld = new Map<number, { hunk: Hunk; ownShift: number }>();
  for (const side of sides) {
    // How far this subset's own new-side numbers are from the old side, hunk by hunk.
    let growth = 0;
    for (const h of side.hunks) {
      const known = byOld.get(h.oldStart);
      if (known && known.hunk.lines.join('\n') !== h.lines.join('\n')) throw new Error(`The two diffs have different hunks at old line ${h.oldStart}.`);
      if (!known) byOld.set(h.oldStart, { hunk: h, ownShift: growth });
      growth += h.newCount - h.oldCount;
    }
  }
  const head = sides[0]?.head ?? [];
  const out = [...head];
  let growth = 0;
  for (const [, { hunk, ownShift }] of [...byOld].sort(([x], [y]) => x - y)) {
    out.push(hunk.at.replace(/^(@@ -\S+ \+)(\d+)/, (_all, before: string) => `${before}${hunk.newStart - ownShift + growth}`), ...hunk.lines);
    growth += hunk.newCount - hunk.oldCount;
  }
  return `${out.join('\n')}\n`;
}

/** A `#define NAME(` line of a diff ('+' side): a function-like macro, and its name. */
const DEFINE_LINE = /^\+\s*#\s*define\s+([A-Za-z_]\w*)\(/;

/**
 * A hunk cut down to the function-like `#define`s of `names` it adds: the lines it removes stay
 * as they were (context), and no other line is added. include/linux/tcp.h's hunk turns the
 * inline `tcp_sk()` into a macro and adds the accessor `tcp_sk_rw()` below it;
 * net/ipv4/tcp_output.c's fix needs only the latter, and such a macro is complete in itself,
 * so a maintainer backporting the fix would add just that line. Never a constant: a new flag
 * value gives a meaning to bits of existing data (include/net/genetlink.h's
 * GENL_MCAST_CAP_NET_ADMIN is bit 0 of a `flags` that held GENL_ADMIN_PERM there, beside a
 * `cap_sys_admin` member the hunk removes), and keeping the old structure with the new
 * constant would change what running data means. Nor a declaration of a function: it needs
 * its definition, which another unit's diff holds (the hunk stays whole, so that unit is
 * grouped in). Undefined when the hunk adds no such `#define` or nothing else.
 */
export function narrowToDefines(h: Hunk, names: ReadonlySet<string>): Hunk | undefined {
  // A macro the hunk redefines (its old #define removed) would be defined twice.
  const redefined = new Set(h.lines.filter((l) => l.startsWith('-')).map((l) => DEFINE_LINE.exec(`+${l.slice(1)}`)?.[1]).filter(Boolean));
  const keep = new Set<number>();
  h.lines.forEach((line, i) => {
    const name = DEFINE_LINE.exec(line)?.[1];
    if (!name || !names.has(name) || redefined.has(name)) return;
    // The definition with its continuation lines.
    for (let k = i; k < h.lines.length && h.lines[k]?.startsWith('+'); k++) {
      keep.add(k);
      if (!(h.lines[k] ?? '').trimEnd().endsWith('\\')) break;
    }
  });
  if (keep.size === 0) return undefined;
  const lines: string[] = [];
  h.lines.forEach((line, i) => {
    if (line.startsWith('-')) lines.push(` ${line.slice(1)}`);
    else if (line.startsWith('+')) {
      if (keep.has(i)) lines.push(line);
    } else lines.push(line);
  });
  if (lines.length === h.lines.length && lines.every((l, i) => l === h.lines[i])) return undefined;
  // Three lines of context on each side, as diff writes them: GNU patch takes a hunk with
  // less context on one side than the other for one anchored at the start or end of the file.
  const first = lines.findIndex((l) => l.startsWith('+'));
  let last = lines.length - 1;
  while (last > first && !lines[last]?.startsWith('+')) last--;
  const lead = Math.max(0, first - 3);
  const trimmed = lines.slice(lead, last + 4);
  const oldCount = trimmed.filter((l) => !l.startsWith('+')).length;
  const newCount = trimmed.length;
  const oldStart = h.oldStart + lead;
  const newStart = h.newStart + lead;
  const at = h.at.replace(/^@@ -\S+ \+\S+ @@/, `@@ -${oldStart},${oldCount} +${newStart},${newCount} @@`);
  return { at, oldStart, oldCount, newStart, newCount, lines: trimmed };
}

/** The diff with hunk `i` replaced by `h` (a narrowed version of it); later hunks' new-side numbers follow. */
export function replaceHunk(diff: SplitDiff, i: number, h: Hunk): SplitDiff {
  const old = diff.hunks[i];
  if (!old) return diff;
  const delta = h.newCount - h.oldCount - (old.newCount - old.oldCount);
  const hunks = diff.hunks.map((x, k) => {
    if (k === i) return h;
    if (k < i || delta === 0) return x;
    const newStart = x.newStart + delta;
    return { ...x, newStart, at: x.at.replace(/^(@@ -\S+ \+)(\d+)/, (_all, before: string) => `${before}${newStart}`) };
  });
  return { head: diff.head, hunks };
}
