/**
 * Compiling one compilation unit of a prepared tree, pre and post, exactly as kbuild does.
 *
 * Pre: `make <unit>.o` in the prepared tree, with the tree's recorded variables; kbuild
 * writes the full command (gcc, then objtool) into `.<unit>.o.cmd`. The object is kept there,
 * so each pre object is compiled once and shared by every later create.
 *
 * Post: that same recorded command, with the source, the object and the dependency file
 * pointed at a work folder, `-iquote <unit's folder>` so the unit's local headers are found as
 * before, and `-fmacro-prefix-map` so `__FILE__` reads as it does in the tree. The pristine
 * tree's sources are never touched.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../host/errors.js';
import { run } from '../host/exec.js';
import type { PreparedTree } from './tree.js';

/** `fs/proc/version.c` -> `fs/proc/version.o`. */
export function objectPathOf(unit: string): string {
  return unit.replace(/\.[cS]$/, '.o');
}

/** The command kbuild recorded for an object (`cmd_<object> := …`). */
export function recordedCommand(tree: PreparedTree, object: string): string {
  const cmdFile = join(tree.dir, dirname(object), `.${basename(object)}.cmd`);
  if (!existsSync(cmdFile)) throw new UserError(`kbuild recorded no command for ${object} (${cmdFile} is missing).`);
  const first = readFileSync(cmdFile, 'utf8').split('\n')[0] ?? '';
  const prefix = `cmd_${object} := `;
  if (!first.startsWith(prefix)) throw new UserError(`${cmdFile} does not start with '${prefix}'.`);
  return first.slice(prefix.length);
}

/**
 * Whether kbuild would leave the object alone: it exists, its recorded command exists, and
 * no file its .cmd lists as a dependency is newer. Checking this here spares the ~2 s that
 * even a no-op `make` of one object costs (objtool and prepare checks).
 */
export function preObjectUpToDate(tree: PreparedTree, object: string): boolean {
  const objectPath = join(tree.dir, object);
  const cmdFile = join(tree.dir, dirname(object), `.${basename(object)}.cmd`);
  if (!existsSync(objectPath) || !existsSync(cmdFile)) return false;
  const built = statSync(objectPath).mtimeMs;
  const text = readFileSync(cmdFile, 'utf8');
  if (!text.includes(`--function-sections`) && !text.includes('-ffunction-sections')) return false;
  const deps = /\ndeps_[^\n]*:= \\\n([\s\S]*?)\n\n/.exec(text)?.[1];
  if (!deps) return false;
  for (const line of deps.split('\n')) {
    const file = line.trim().replace(/\s*\\$/, '');
    if (!file || file.startsWith('$(')) continue;
    const path = file.startsWith('/') ? file : join(tree.dir, file);
    if (!existsSync(path) || statSync(path).mtimeMs > built) return false;
  }
  return true;
}

/** Builds the pre object through kbuild in the prepared tree (once); returns its path. */
export async function buildPreObject(tree: PreparedTree, unit: string): Promise<string> {
  const object = objectPathOf(unit);
  if (preObjectUpToDate(tree, object)) return join(tree.dir, object);
  await run(['make', ...tree.makeVariables, object], { cwd: tree.dir, purpose: `compiling ${unit} (pre) in ${tree.dir}` });
  const path = join(tree.dir, object);
  if (!existsSync(path)) throw new UserError(`kbuild did not produce ${path}.`);
  return path;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Replaces whole shell words equal to `from` (bounded by spaces, `;` or the ends). */
function replaceWord(command: string, from: string, to: string): string {
  return command.replace(new RegExp(`(^|[\\s;,=])${escapeRegExp(from)}(?=$|[\\s;])`, 'g'), `$1${to}`);
}

/** `./include` and `include` name the same folder of the tree. */
function treeRelative(path: string): string {
  return path.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

/**
 * Makes the command see the patched headers under `sourceRoot` in place of the tree's: each
 * include folder (`-I./include`, `-I ./fs/foo`) that holds a patched header gets its
 * `sourceRoot` counterpart just before it, so the search order, and which of two same-named
 * headers wins, stays the tree's; a patched forced include (`-include ./include/linux/x.h`)
 * is pointed at its copy.
 */
function overlayPatchedHeaders(command: string, sourceRoot: string, patched: readonly string[]): string {
  if (patched.length === 0) return command;
  const holdsPatched = (folder: string): boolean => patched.some((p) => p.startsWith(`${treeRelative(folder)}/`));
  return command
    .replace(/(^|\s)-I(\s*)(\S+)/g, (all, space: string, gap: string, folder: string) =>
      holdsPatched(folder) ? `${space}-I${gap}${join(sourceRoot, treeRelative(folder))} -I${gap}${folder}` : all,
    )
    .replace(/(^|\s)-include\s+(\S+)/g, (all, space: string, file: string) =>
      patched.includes(treeRelative(file)) ? `${space}-include ${join(sourceRoot, treeRelative(file))}` : all,
    );
}

/**
 * The recorded command turned to compile `sourceRoot/<unit>` into `outputRoot/<object>`, with
 * the headers in `patchedHeaders` (tree-relative; their copies are under `sourceRoot`) found
 * before the tree's. Exported for tests: the rewriting is what keeps pre and post comparable.
 */
export function variantCommand(
  recorded: string,
  unit: string,
  sourceRoot: string,
  outputRoot: string,
  patchedHeaders: readonly string[] = [],
): string {
  const object = objectPathOf(unit);
  const depFile = join(dirname(object), `.${basename(object)}.d`);
  let command = recorded;
  command = replaceWord(command, `-Wp,-MMD,${depFile}`, `-Wp,-MMD,${join(outputRoot, depFile)}`);
  command = replaceWord(command, object, join(outputRoot, object));
  command = replaceWord(command, unit, join(sourceRoot, unit));
  command = overlayPatchedHeaders(command, sourceRoot, patchedHeaders);
  const compiler = /^\s*(\S+)/.exec(command)?.[1] ?? 'gcc';
  const extra = `-iquote ${dirname(unit)} -fmacro-prefix-map=${sourceRoot}/=`;
  return command.replace(/^\s*\S+/, `${compiler} ${extra}`);
}

/**
 * Compiles `sourceRoot/<unit>` with the unit's recorded kbuild command, seeing the patched
 * headers' copies under `sourceRoot` first; returns the object path.
 */
export async function buildVariantObject(
  tree: PreparedTree,
  unit: string,
  sourceRoot: string,
  outputRoot: string,
  patchedHeaders: readonly string[] = [],
): Promise<string> {
  const object = objectPathOf(unit);
  const command = variantCommand(recordedCommand(tree, object), unit, sourceRoot, outputRoot, patchedHeaders);
  mkdirSync(join(outputRoot, dirname(object)), { recursive: true });
  await run(['sh', '-c', command], { cwd: tree.dir, purpose: `compiling ${unit} (post)` });
  const path = join(outputRoot, object);
  if (!existsSync(path)) throw new UserError(`Compiling ${unit} did not produce ${path}.`);
  return path;
}
