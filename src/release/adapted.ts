/**
 * Adapted patches (the maintainer's folder, e.g. test/corpus/adapted/): for a fix refused because
 * it needs new code, the patch a maintainer ships for live application, written with
 * <linux/tsplice.h> (shadow data, hooks, declarations), under the fix's own patch name; or, where
 * the fix cannot be made safe live, a note `<name>.not-live.md` saying why. A release and the
 * corpus bench create the adapted patch when the upstream one is refused, and count the lines of
 * new code it needed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** What the folder of adapted patches holds for a fix's patch: an adapted patch, a not-live note, or nothing. */
export type Adaptation = { kind: 'patch'; path: string } | { kind: 'not-live'; path: string; why: string } | undefined;

export function adaptationOf(patchName: string, dir: string): Adaptation {
  const patch = join(dir, patchName);
  if (existsSync(patch)) return { kind: 'patch', path: patch };
  const note = join(dir, patchName.replace(/\.patch$/, '.not-live.md'));
  if (existsSync(note)) {
    const text = readFileSync(note, 'utf8');
    // The note's title, after the file's name, is what the table shows: `# fs/x.c — why`.
    const title = text.split('\n').find((l) => l.startsWith('# '));
    const why = title?.slice(2).replace(/^\S+\s+[—-]\s+/, '').trim();
    return { kind: 'not-live', path: note, why: why || 'see the note' };
  }
  return undefined;
}

/** The code lines a diff adds: trimmed, neither blank nor only a comment. */
function addedCodeLines(diff: string): string[] {
  const lines: string[] = [];
  let inComment = false;
  for (const raw of diff.split('\n')) {
    if (!raw.startsWith('+') || raw.startsWith('+++ ')) continue;
    const line = raw.slice(1).trim();
    if (inComment) {
      if (line.includes('*/')) inComment = false;
      continue;
    }
    if (line === '' || line.startsWith('//')) continue;
    if (line.startsWith('/*')) {
      if (!line.includes('*/')) inComment = true;
      continue;
    }
    lines.push(line);
  }
  return lines;
}

/**
 * The lines of new code an adapted patch needed beyond the upstream diff: its added code lines
 * that are not added lines of the upstream diff (as a multiset of trimmed lines), leaving out
 * blank lines and lines that are only a comment.
 */
export function newLinesBeyond(upstream: string, adapted: string): number {
  const available = new Map<string, number>();
  for (const line of addedCodeLines(upstream)) available.set(line, (available.get(line) ?? 0) + 1);
  let count = 0;
  for (const line of addedCodeLines(adapted)) {
    const left = available.get(line) ?? 0;
    if (left > 0) available.set(line, left - 1);
    else count++;
  }
  return count;
}
