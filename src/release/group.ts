/**
 * Fixes that span several files. A corpus patch holds one file's diff and the header diffs it
 * needs. Upstream, one commit changed several files, and a maintainer ships them as one update:
 *   - when a header change renames or moves a declaration, another unit that uses it no longer
 *     compiles (create refuses with kind unit-must-change, naming that unit: "X does not compile
 *     with the patched …; it has to change that unit too");
 *   - when the new code calls a function that another file's diff adds (virtgpu_plane.c calls
 *     what virtgpu_gem.c adds), the running kernel has no such function: alone, the one update
 *     is refused at apply as an unresolved reference and the other as only adding functions.
 * When that other file is itself a corpus file, its diff joins the update: one patch holding
 * each file's diff once.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { diagnosticsOf } from '../host/errors.js';
import { unionHunks } from './hunks.js';

/** The file a diff section changes, from its `+++ b/PATH` line. */
const SECTION_TARGET = /^\+\+\+ b\/(\S+)/m;

/** A patch split into one diff section per file, comment lines before the first dropped. */
export function patchSections(text: string): Map<string, string> {
  const sections = new Map<string, string>();
  const starts = [...text.matchAll(/^--- a\/\S+.*$/gm)].map((m) => m.index ?? 0);
  starts.forEach((start, i) => {
    const section = text.slice(start, starts[i + 1] ?? text.length);
    const target = SECTION_TARGET.exec(section)?.[1];
    if (target && !sections.has(target)) sections.set(target, section.endsWith('\n') ? section : `${section}\n`);
  });
  return sections;
}

/**
 * One patch from several corpus patches: each file's diff once, files in the order first seen.
 * A header two patches both change carries the union of their hunks (each patch holds only the
 * hunks its file needs: kernel/exit.c one of sched.h's, kernel/fork.c the other). Throws if two
 * patches change one place of a file differently.
 */
export function combinePatches(texts: readonly string[], title: string): string {
  const combined = new Map<string, string>();
  for (const text of texts) {
    for (const [file, section] of patchSections(text)) {
      const known = combined.get(file);
      if (known === undefined || known === section) combined.set(file, section);
      else {
        try {
          combined.set(file, unionHunks(known, section));
        } catch {
          throw new Error(`The grouped patches change ${file} differently.`);
        }
      }
    }
  }
  return `# ${title}\n${[...combined.values()].join('')}`;
}

/** The unit create named as needing a change of its own (kind unit-must-change), if it did. */
export function unitThatMustChange(error: unknown): string | undefined {
  return diagnosticsOf(error).find((d) => d.kind === 'unit-must-change')?.unit;
}

/** Writes the combined patch of `files`' patches to `path`. */
export function writeGroupPatch(path: string, files: readonly string[], patchOf: (file: string) => string): string {
  const title = `tsplice corpus group: ${files.join(', ')} (one update: a header change in one needs the others' diffs to compile)`;
  writeFileSync(path, combinePatches(files.map((f) => readFileSync(patchOf(f), 'utf8')), title));
  return path;
}

/**
 * A function definition's first line in kernel style: at the start of the line, an optional
 * return type, the name and its parameter list, not ending in `;` (a prototype or a macro
 * statement). Calls are indented, so they never match.
 */
const DEFINITION = /^(?:[A-Za-z_][\w \t*]*?[ \t*])?([A-Za-z_]\w*)\s*\((?!.*;\s*$)/;
const NOT_A_FUNCTION = new Set(['if', 'for', 'while', 'switch', 'return', 'sizeof']);

/**
 * The global functions a patch defines on added lines and not on removed ones: what it adds
 * that another unit can call. A `static` one (on the name's line or the line before it, as in
 * `static void\nname(...)`) is the unit's own.
 */
export function addedFunctions(patch: string): Set<string> {
  const added = new Set<string>();
  const removed = new Set<string>();
  let previous = '';
  for (const line of patch.split('\n')) {
    const sign = line[0];
    if ((sign !== '+' && sign !== '-') || line.startsWith('+++ ') || line.startsWith('--- ')) continue;
    const text = line.slice(1);
    const name = DEFINITION.exec(text)?.[1];
    const isStatic = /^static\b/.test(text) || (name !== undefined && text.startsWith(name) && /^static\b/.test(previous));
    previous = text;
    if (name === undefined || NOT_A_FUNCTION.has(name) || isStatic) continue;
    (sign === '+' ? added : removed).add(name);
  }
  for (const name of removed) added.delete(name);
  return added;
}

/**
 * The first corpus file, other than those in `group`, whose diff adds a function in `calls`
 * (the globals the new code refers to), with the name; undefined when there is none.
 */
export function fileAddingCalled(calls: Iterable<string>, files: readonly string[], group: readonly string[], addedBy: (file: string) => Set<string>): { file: string; name: string } | undefined {
  const wanted = [...calls];
  for (const file of files) {
    if (group.includes(file)) continue;
    const added = addedBy(file);
    const name = wanted.find((n) => added.has(n));
    if (name !== undefined) return { file, name };
  }
  return undefined;
}

/** Whether a diff adds a line that calls `name` (a call, not its definition: indented). */
export function diffCalls(patch: string, name: string): boolean {
  const call = new RegExp(`\\b${name.replace(/[$]/g, '\\$')}\\s*\\(`);
  return patch.split('\n').some((line) => line.startsWith('+') && !line.startsWith('+++') && /^\+\s/.test(line) && call.test(line));
}
