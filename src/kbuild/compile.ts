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
 * tree's sources are never touched. The recorded command is run as kbuild runs it, with
 * `set -e`: when gcc fails, objtool does not run on an object that is not there.
 *
 * A unit that does not compile is refused with gcc's first error, its path relative to the
 * tree (`kernel/sys.c:9:10: fatal error: linux/x.h: No such file or directory`); the whole
 * command and output go with the error, for `tsplice create --verbose`.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../host/errors.js';
import { CommandError, firstErrorLine, run } from '../host/exec.js';
import { authorIncludeDir } from '../host/project.js';
import { KbuildReader } from './build-status.js';
import type { PreparedTree } from './tree.js';

/** `fs/proc/version.c` -> `fs/proc/version.o`. */
export function objectPathOf(unit: string): string {
  return unit.replace(/\.[cS]$/, '.o');
}

/**
 * Removes each `dir/../` from the paths of a command: kbuild spells an object that another
 * folder's Makefile names through that folder (`drivers/gpu/drm/amd/amdgpu/../display/dc/core/dc.o`,
 * `-I./drivers/gpu/drm/amd/amdgpu/../display/dc`), the same files as the plain paths the rest
 * of tsplice uses.
 */
export function withoutDotDot(command: string): string {
  let out = command;
  for (let before = ''; before !== out; ) {
    before = out;
    out = out.replace(/(^|[^\w.+-])([\w+-][\w.+-]*|\.[\w+-][\w.+-]*)\/\.\.\//g, (all: string, lead: string, segment: string) => (segment === '..' ? all : lead));
  }
  return out;
}

/** The .cmd file of an object, and its first line (`cmd_<object as kbuild spelled it> := …`). */
function commandLine(tree: PreparedTree, object: string): { cmdFile: string; first: string | undefined } {
  const cmdFile = join(tree.dir, dirname(object), `.${basename(object)}.cmd`);
  if (!existsSync(cmdFile)) return { cmdFile, first: undefined };
  return { cmdFile, first: readFileSync(cmdFile, 'utf8').split('\n')[0] ?? '' };
}

/**
 * The command kbuild recorded for an object (`cmd_<object> := …`), with its paths plain
 * (withoutDotDot): an object another folder's Makefile names is recorded under that spelling.
 */
export function recordedCommand(tree: PreparedTree, object: string): string {
  const { cmdFile, first } = commandLine(tree, object);
  if (first === undefined) throw new UserError(`kbuild recorded no command for ${object} (${cmdFile} is missing).`, { kind: 'not-a-unit', object });
  const recorded = /^cmd_(\S+) := /.exec(first);
  if (!recorded || withoutDotDot(recorded[1] ?? '') !== object) {
    throw new UserError(`${cmdFile} does not start with 'cmd_${object} := '.`, { kind: 'not-prepared', object: cmdFile, offset: 0 });
  }
  return withoutDotDot(first.slice(recorded[0].length));
}

/**
 * The make target that builds a unit's object with the flags of the module it is part of: its
 * own path, or, for a unit only another folder's Makefile names (amdgpu's display files, kvm's
 * virt/kvm files), that folder's spelling of it (`drivers/gpu/drm/amd/amdgpu/../display/…`),
 * which kbuild builds in that folder, with its KBUILD_MODNAME, -DMODULE and include paths.
 */
export function kbuildTarget(reader: KbuildReader, unit: string): string {
  const owner = reader.namedOnlyFrom(unit);
  return owner ? `${owner.folder}/${owner.word}` : objectPathOf(unit);
}

/**
 * Whether kbuild would leave the object alone: it exists, its recorded command exists and was
 * made for `target` (a unit another folder names, built before by its own path, was built with
 * the wrong flags), and no file its .cmd lists as a dependency is newer. Checking this here
 * spares the ~2 s that even a no-op `make` of one object costs (objtool and prepare checks).
 */
export function preObjectUpToDate(tree: PreparedTree, object: string, target = object): boolean {
  const objectPath = join(tree.dir, object);
  const { cmdFile, first } = commandLine(tree, object);
  if (!existsSync(objectPath) || first === undefined || !first.startsWith(`cmd_${target} := `)) return false;
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

/**
 * gcc's first error in `output` (else its first warning or note, else the last line), with
 * the work folder's copies under `sourceRoot` and `./` made tree-relative.
 */
export function firstCompileError(output: string, sourceRoot?: string): string {
  const lines = output
    .split('\n')
    .map((l) => (sourceRoot ? l.split(`${sourceRoot}/`).join('') : l).trim().replace(/^(\.\/)+/, ''))
    .filter((l) => l.length > 0);
  return lines.find((l) => /\berror:/.test(l)) ?? lines.find((l) => /:\d+:\d+: (warning|note):/.test(l)) ?? firstErrorLine(lines.join('\n')) ?? 'the compiler failed, printing nothing';
}

/** A failed compile of `unit` as a refusal: gcc's first error, the whole story as details. */
function compileFailure(error: unknown, tree: PreparedTree, unit: string, side: 'pre' | 'post', sourceRoot?: string): unknown {
  if (!(error instanceof CommandError)) return error;
  const details = error.details !== undefined ? { details: error.details } : {};
  // make's own words when the tree has no rule for the object (a .c file #included by others).
  if (side === 'pre' && /No rule to make target/.test(error.output)) {
    return new UserError(`kbuild has no rule to make ${objectPathOf(unit)}: ${unit} is not a unit of its own for this configuration.`, { kind: 'not-a-unit', unit }, details);
  }
  const first = firstCompileError(error.output, sourceRoot).replace(/\.$/, '');
  const how = side === 'post' ? 'with the patch' : `in ${tree.dir}, before the patch`;
  return new UserError(`${unit} does not compile ${how}: ${first}.`, { kind: 'does-not-compile', unit, reason: first }, details);
}

/**
 * One `make` at a time per prepared tree within this process: two runs at once could both
 * remake what every target depends on. Callers that create or derive in parallel (the corpus
 * with --jobs) go through here; the compiles of variants work on copies and need no lock.
 */
const treeMake = new Map<string, Promise<unknown>>();
function inTreeMake<T>(tree: PreparedTree, work: () => Promise<T>): Promise<T> {
  const before = treeMake.get(tree.dir) ?? Promise.resolve();
  const mine = before.then(work, work);
  treeMake.set(tree.dir, mine.catch(() => undefined));
  return mine;
}

/**
 * Builds the pre objects of many units in one kbuild run (`make -jN -k`), for a caller that
 * then works on them in parallel: two `make` runs in one tree at once could both remake what
 * every target depends on. A unit kbuild cannot build is left to buildPreObject, which names
 * the failure; returns how many pre objects were missing before.
 */
export async function buildPreObjects(tree: PreparedTree, units: readonly string[], jobs: number): Promise<number> {
  return inTreeMake(tree, async () => {
    const reader = new KbuildReader(tree.dir);
    const targets = new Map(units.filter((u) => existsSync(join(tree.dir, u))).map((u) => [objectPathOf(u), kbuildTarget(reader, u)]));
    const missing = [...targets].filter(([object, target]) => !preObjectUpToDate(tree, object, target)).map(([, target]) => target);
    if (missing.length === 0) return 0;
    try {
      await run(['make', `-j${jobs}`, '-k', ...tree.makeVariables, ...missing], { cwd: tree.dir, purpose: `compiling ${missing.length} pre objects in ${tree.dir}` });
    } catch (error) {
      // -k went on past each failure; buildPreObject reports them one unit at a time.
      if (!(error instanceof CommandError)) throw error;
    }
    return missing.length;
  });
}

/**
 * Builds the pre object through kbuild in the prepared tree (once); returns its path. A unit
 * another folder's Makefile names is built through that folder (kbuildTarget).
 */
export async function buildPreObject(tree: PreparedTree, unit: string): Promise<string> {
  const object = objectPathOf(unit);
  const target = kbuildTarget(new KbuildReader(tree.dir), unit);
  if (preObjectUpToDate(tree, object, target)) return join(tree.dir, object);
  return inTreeMake(tree, async () => {
    if (preObjectUpToDate(tree, object, target)) return join(tree.dir, object);
    try {
      await run(['make', ...tree.makeVariables, target], { cwd: tree.dir, purpose: `compiling ${unit} (pre) in ${tree.dir}` });
    } catch (error) {
      throw compileFailure(error, tree, unit, 'pre');
    }
    const path = join(tree.dir, object);
    if (!existsSync(path)) throw new UserError(`kbuild did not produce ${path}.`, { kind: 'not-a-unit', unit, object: path });
    return path;
  });
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
  // <linux/tsplice.h> is searched last, after every folder of the kernel's own.
  const extra = `-iquote ${dirname(unit)} -fmacro-prefix-map=${sourceRoot}/= -idirafter ${authorIncludeDir()}`;
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
  try {
    // -e as kbuild's own `set -e`: objtool runs only on an object gcc made.
    await run(['sh', '-e', '-c', command], { cwd: tree.dir, purpose: `compiling ${unit} (post)` });
  } catch (error) {
    throw compileFailure(error, tree, unit, 'post', sourceRoot);
  }
  const path = join(outputRoot, object);
  if (!existsSync(path)) throw new UserError(`Compiling ${unit} did not produce ${path}.`, { kind: 'not-a-unit', unit, object: path });
  return path;
}
