/**
 * The compilation units a changed header reaches, for `create`.
 *
 * kbuild's own dependency records (`deps_…` in `.<unit>.o.cmd`) are exact but exist only for
 * units compiled once in the tree, and a prepared tree has compiled almost none. So this reads
 * every `#include` line of the tree into a graph (about 2 s for the 55,000 .c and .h files of
 * a 6.1 tree, then cached in the tsplice cache), walks it backwards from the header to the
 * `.c` files, and keeps those built into vmlinux. The graph ignores conditionals, so it may
 * name a unit that does not really include the header: that costs a compile and yields no
 * changed function. It must never miss one, so an include it cannot place on kbuild's common
 * search path is linked to every file whose path ends the same way (a folder Makefile's own
 * `-I` finds those).
 *
 * unitsReached narrows those units to the ones whose code the change can reach: those whose
 * text names what changed, directly or through the other headers they see
 * (src/header-reach/header-reach.ts); the limit then counts only them.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { UserError } from '../host/errors.js';
import { cachePath } from '../host/cache.js';
import type { PreparedTree } from './tree.js';
import { KbuildReader, readAutoConf, type BuildStatus } from './build-status.js';
import { headerChange, type HeaderChange } from '../header-reach/header-change.js';
import { parseItems } from '../header-reach/header-items.js';
import { findReach, type ReachCache } from '../header-reach/header-reach.js';
import { tailName } from '../header-reach/token-pastes.js';

/** kbuild's search path for `<…>` includes on x86 (LINUXINCLUDE in the top Makefile), in order. */
export const INCLUDE_ROOTS = [
  'arch/x86/include',
  'arch/x86/include/generated',
  'include',
  'arch/x86/include/uapi',
  'arch/x86/include/generated/uapi',
  'include/uapi',
  'include/generated/uapi',
];

/** Headers kbuild puts in front of every unit with `-include`: whatever they reach, every unit reaches. */
export const FORCED_INCLUDES = ['include/linux/compiler-version.h', 'include/linux/kconfig.h', 'include/linux/compiler_types.h'];

/** How many units create rebuilds for one changed header before it refuses. */
export const DEFAULT_HEADER_UNIT_LIMIT = 40;

export interface HeaderUnits {
  header: string;
  /** The units built into vmlinux that include the header (and, with reach, use what changed), directly or through other headers. */
  units: string[];
  /** Units that include it but are not rebuilt: modules, units not built, and 'unknown' ones. */
  skipped: { unit: string; status: BuildStatus }[];
  /** With reach (unitsReached): the header's changed names (tails as `*tail*`), or why the change reaches every includer. */
  changed?: string[];
  /** With reach: for each unit rebuilt, the changed names that reach it. */
  reasons?: Record<string, string[]>;
  /** With reach: units that include the header and may be built in, but use nothing that changed. */
  notReached?: number;
}

export interface IncludeGraph {
  files: string[];
  index: Map<string, number>;
  /** For each file, the files it includes. */
  includes: number[][];
  /** For each file, the files that include it. */
  includedBy: number[][];
}

const GRAPH_FORMAT = 3;

interface StoredGraph {
  format: number;
  dir: string;
  fingerprint: string;
  files: string[];
  /** For each file, the files it includes. */
  includes: number[][];
}

/** Every regular file of the tree (hidden folders skipped), with the .c/.h count and newest mtime. */
function listTree(treeDir: string): { all: string[]; fingerprint: string } {
  const all: string[] = [];
  let sources = 0;
  let newest = 0;
  const walk = (rel: string): void => {
    for (const entry of readdirSync(join(treeDir, rel), { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(path);
      // A link to a file is included like one; links to folders are not followed (loops).
      else if (entry.isFile() || (entry.isSymbolicLink() && statSync(join(treeDir, path), { throwIfNoEntry: false })?.isFile())) {
        all.push(path);
        if (path.endsWith('.c') || path.endsWith('.h')) {
          sources++;
          newest = Math.max(newest, statSync(join(treeDir, path)).mtimeMs);
        }
      }
    }
  };
  walk('');
  return { all, fingerprint: `${sources}:${newest}` };
}

const INCLUDE_LINE = /^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]/gm;

/** Resolves one include of `includer` as gcc would with kbuild's flags; several files when only a path suffix is known. */
function resolveInclude(includer: string, quoted: boolean, name: string, exists: Set<string>, byBase: Map<string, string[]>): string[] {
  const candidates = quoted ? [posix.join(posix.dirname(includer), name)] : [];
  for (const root of INCLUDE_ROOTS) candidates.push(posix.join(root, name));
  const found = candidates.find((p) => exists.has(p));
  if (found) return [found];
  const suffix = `/${posix.normalize(name).replace(/^(\.\.\/)+/, '')}`;
  return (byBase.get(posix.basename(name)) ?? []).filter((p) => `/${p}`.endsWith(suffix) && !offPath(p, quoted));
}

/**
 * Files no folder Makefile's -I puts on an x86 kernel compile's path: other architectures,
 * and for `<…>` names (libc's <string.h> in uapi headers' user-space branches) the user-space
 * copies in tools/ and scripts/.
 */
function offPath(path: string, quoted: boolean): boolean {
  if (/^arch\//.test(path) && !path.startsWith('arch/x86/')) return true;
  return !quoted && /^(tools|scripts|Documentation)\//.test(path);
}

function buildGraph(treeDir: string, all: string[], fingerprint: string): StoredGraph {
  const exists = new Set(all);
  const byBase = new Map<string, string[]>();
  for (const p of all) {
    const base = posix.basename(p);
    byBase.set(base, [...(byBase.get(base) ?? []), p]);
  }
  const files: string[] = [];
  const index = new Map<string, number>();
  const includes: number[][] = [];
  const idOf = (p: string): number => {
    let id = index.get(p);
    if (id === undefined) {
      id = files.length;
      index.set(p, id);
      files.push(p);
    }
    return id;
  };
  for (const p of all) if (p.endsWith('.c') || p.endsWith('.h')) idOf(p);
  // Included files of other kinds (.inc, .S, tables) join the queue as they are found.
  for (let id = 0; id < files.length; id++) {
    const file = files[id] ?? '';
    const text = readFileSync(join(treeDir, file), 'latin1');
    const targets = new Set<number>();
    for (const m of text.matchAll(INCLUDE_LINE)) {
      for (const target of resolveInclude(file, m[1] === '"', m[2] ?? '', exists, byBase)) targets.add(idOf(target));
    }
    includes[id] = [...targets];
  }
  return { format: GRAPH_FORMAT, dir: treeDir, fingerprint, files, includes };
}

/** The include graph of the tree, from the cache when the tree's .c and .h files are unchanged. */
export function includeGraph(tree: PreparedTree): IncludeGraph {
  const cacheFile = cachePath('include-graphs', `${createHash('sha256').update(tree.dir).digest('hex').slice(0, 16)}.json`);
  const { all, fingerprint } = listTree(tree.dir);
  let stored: StoredGraph | undefined;
  if (existsSync(cacheFile)) {
    try {
      const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as StoredGraph;
      if (cached.format === GRAPH_FORMAT && cached.dir === tree.dir && cached.fingerprint === fingerprint) stored = cached;
    } catch {
      // An unreadable cache is only a cost: the graph is built again below.
    }
  }
  if (!stored) {
    stored = buildGraph(tree.dir, all, fingerprint);
    mkdirSync(dirname(cacheFile), { recursive: true });
    // Written aside and renamed, so a create running beside this one never reads half a file.
    const partial = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(partial, JSON.stringify(stored));
    renameSync(partial, cacheFile);
  }
  const includedBy: number[][] = stored.files.map(() => []);
  stored.includes.forEach((targets, from) => {
    for (const t of targets) includedBy[t]?.push(from);
  });
  return { files: stored.files, index: new Map(stored.files.map((f, i) => [f, i])), includes: stored.includes, includedBy };
}

/** The files reached from `file` along `edges`, directly or not (`file` itself excluded). */
function closure(graph: IncludeGraph, file: string, edges: number[][]): string[] {
  const seen = reachable(graph, [file], edges);
  seen.delete(file);
  return [...seen];
}

/** The files that include `file`, directly or not. */
export function includersOf(graph: IncludeGraph, file: string): string[] {
  return closure(graph, file, graph.includedBy);
}

/** The files `file` includes, directly or not. */
export function includedFrom(graph: IncludeGraph, file: string): string[] {
  return closure(graph, file, graph.includes);
}

/**
 * kbuild's own object lists for a folder: scripts/Makefile.build read with the tree's
 * configuration, and a target that prints what it computed. Exact (conditionals, `:=`,
 * composite objects, objects listed from a folder above), about 20 ms a folder.
 */
class KbuildLists {
  private readonly lists = new Map<string, { y: Set<string>; m: Set<string>; dirs: Set<string> } | undefined>();
  private readonly folders = new Map<string, BuildStatus>();
  constructor(
    private readonly tree: PreparedTree,
    private readonly config: ReadonlyMap<string, string>,
    private readonly readMakefiles: KbuildReader,
  ) {}

  private query(folder: string): { y: Set<string>; m: Set<string>; dirs: Set<string> } | undefined {
    if (this.lists.has(folder)) return this.lists.get(folder);
    let result: { y: Set<string>; m: Set<string>; dirs: Set<string> } | undefined;
    if (['Kbuild', 'Makefile'].some((f) => existsSync(join(this.tree.dir, folder, f)))) {
      const print = 'tsplice-lists: ; @echo "y $(real-obj-y) $(lib-y)"; echo "m $(real-obj-m)"; echo "d $(subdir-builtin)"';
      const r = spawnSync(
        'make',
        [
          '-s',
          ...this.tree.makeVariables,
          'SRCARCH=x86',
          `BITS=${this.config.get('CONFIG_64BIT') === 'y' ? 64 : 32}`,
          'srctree=.',
          'objtree=.',
          'need-builtin=1',
          '-f',
          'scripts/Makefile.build',
          `obj=${folder}`,
          `--eval=${print}`,
          'tsplice-lists',
        ],
        { cwd: this.tree.dir, encoding: 'utf8' },
      );
      if (r.status === 0) {
        const line = (tag: string): Set<string> =>
          new Set((r.stdout.split('\n').find((l) => l.startsWith(`${tag} `)) ?? '').split(/\s+/).slice(1).filter(Boolean));
        result = { y: line('y'), m: line('m'), dirs: new Set([...line('d')].map((d) => d.replace(/\/built-in\.a$/, ''))) };
      }
    }
    this.lists.set(folder, result);
    return result;
  }

  private folder(folder: string): BuildStatus {
    if (folder === '') return 'built-in';
    const known = this.folders.get(folder);
    if (known) return known;
    let status: BuildStatus = 'not built';
    for (let a = parentOf(folder); ; a = parentOf(a)) {
      // The top-level folders and the arch Makefile's libs-y/drivers-y need the whole top
      // Makefile to evaluate; their few forms are read from the files.
      if (a === '') {
        status = this.readMakefiles.folder(folder);
        break;
      }
      const lists = this.query(a);
      if (lists?.dirs.has(folder)) {
        status = this.folder(a);
        break;
      }
    }
    this.folders.set(folder, status);
    return status;
  }

  unit(unit: string): BuildStatus {
    const object = unit.replace(/\.c$/, '.o');
    let makefiles = 0;
    for (let a = parentOf(unit); a !== ''; a = parentOf(a)) {
      const lists = this.query(a);
      if (lists?.y.has(object)) return this.folder(a);
      if (lists?.m.has(object)) return 'module';
      if (lists) makefiles++;
      else if (['Kbuild', 'Makefile'].some((f) => existsSync(join(this.tree.dir, a, f)))) return 'unknown';
      // Objects are named by their own folder's Makefile or, without one, by the folder above.
      if (makefiles >= 2) break;
    }
    return 'not built';
  }
}

function parentOf(path: string): string {
  return path.includes('/') ? posix.dirname(path) : '';
}

/** Above this many folders to ask kbuild about, the Makefile reading's count decides a refusal. */
const EXACT_FOLDER_BUDGET = 150;

export interface IncludersOptions {
  /** Refuse when more built-in units than this include the header (default DEFAULT_HEADER_UNIT_LIMIT). */
  limit?: number;
  /** A graph already loaded, to answer several headers with one load. */
  graph?: IncludeGraph;
}

function tooMany(header: string, count: number, limit: number): UserError {
  return new UserError(
    `${header} is included by ${count} units built into vmlinux, more than the ${limit} that create rebuilds for a changed header.`,
    { kind: 'too-many-units', unit: header },
  );
}

/** The `.c` files that include `header`, split by what the Makefiles say of them; refuses a header every unit has. */
function includingUnits(tree: PreparedTree, header: string, graph: IncludeGraph, limit: number) {
  const reached = includersOf(graph, header);
  const forced = FORCED_INCLUDES.find((f) => f === header || reached.includes(f));
  if (forced) {
    throw new UserError(
      `${header} is part of every unit of the kernel (through kbuild's -include ${forced}), far more than the ${limit} units create rebuilds for a changed header.`,
      { kind: 'too-many-units', unit: header },
    );
  }
  const config = readAutoConf(tree.dir);
  const readMakefiles = new KbuildReader(tree.dir, config);
  const skipped: HeaderUnits['skipped'] = [];
  const candidates: string[] = [];
  const builtIn = new Set<string>();
  for (const file of reached.filter((f) => f.endsWith('.c')).sort()) {
    const status = readMakefiles.unit(file);
    if (status === 'module' || status === 'not built') skipped.push({ unit: file, status });
    else candidates.push(file);
    if (status === 'built-in') builtIn.add(file);
  }
  return { config, readMakefiles, skipped, candidates, builtIn };
}

/** Of `candidates`, those kbuild's own lists build into vmlinux; the others join `skipped`. */
function exactlyBuiltIn(tree: PreparedTree, config: ReadonlyMap<string, string>, readMakefiles: KbuildReader, candidates: readonly string[], skipped: HeaderUnits['skipped']): string[] {
  const kbuild = new KbuildLists(tree, config, readMakefiles);
  const units: string[] = [];
  for (const unit of candidates) {
    const status = kbuild.unit(unit);
    if (status === 'built-in') units.push(unit);
    else skipped.push({ unit, status });
  }
  skipped.sort((a, b) => a.unit.localeCompare(b.unit));
  return units;
}

/**
 * The units built into vmlinux that a change to `header` affects; refuses above the limit.
 * The candidates' status is first read from the Makefiles (fast, for thousands), then, when
 * few enough, asked of kbuild itself, which is exact: `proc-$(CONFIG_MMU) := task_mmu.o`
 * replaces `proc-y := nommu.o`, which a reading of assignments cannot see.
 */
export function unitsIncluding(tree: PreparedTree, header: string, options: IncludersOptions = {}): HeaderUnits {
  const limit = options.limit ?? DEFAULT_HEADER_UNIT_LIMIT;
  const graph = options.graph ?? includeGraph(tree);
  const { config, readMakefiles, skipped, candidates, builtIn } = includingUnits(tree, header, graph, limit);
  const folders = new Set(candidates.map((c) => posix.dirname(c)));
  if (builtIn.size > limit && folders.size > EXACT_FOLDER_BUDGET) throw tooMany(header, builtIn.size, limit);
  const units = exactlyBuiltIn(tree, config, readMakefiles, candidates, skipped);
  if (units.length > limit) throw tooMany(header, units.length, limit);
  return { header, units, skipped };
}

/** Whether kbuild builds `unit` into vmlinux, from its own lists (exact; about 20 ms a folder). */
export function kbuildStatus(tree: PreparedTree, unit: string): BuildStatus {
  const config = readAutoConf(tree.dir);
  return new KbuildLists(tree, config, new KbuildReader(tree.dir, config)).unit(unit);
}

export interface ReachOptions extends IncludersOptions {
  /** The header's text before the patch ('' for a header the patch creates) and after. */
  pre: string;
  post: string;
  /** The post text of every file the patch changes (tree-relative path -> text): a mention in either text counts. */
  patched?: ReadonlyMap<string, string>;
  /** Texts read for another header of the same patch (with the same `patched`). */
  cache?: ReachCache;
}

/** `<x.h>` or `"x.h"` from `includer`, as the graph would resolve it (first match on the search path). */
function resolveSpec(graph: IncludeGraph, treeDir: string, includer: string, spec: string): string | undefined {
  const m = /^([<"])([^>"]+)[>"]/.exec(spec);
  if (!m?.[2]) return undefined;
  const candidates = m[1] === '"' ? [posix.join(posix.dirname(includer), m[2])] : [];
  for (const root of INCLUDE_ROOTS) candidates.push(posix.join(root, m[2]));
  return candidates.find((p) => graph.index.has(p) || existsSync(join(treeDir, p)));
}

/** The files reached from all of `starts` along `edges` (the starts included). */
function reachable(graph: IncludeGraph, starts: Iterable<string>, edges: number[][], through?: (file: string) => boolean): Set<string> {
  const seen = new Set<number>();
  const queue: number[] = [];
  for (const s of starts) {
    const id = graph.index.get(s);
    if (id !== undefined && !seen.has(id)) {
      seen.add(id);
      queue.push(id);
    }
  }
  while (queue.length > 0) {
    for (const next of edges[queue.pop() ?? 0] ?? []) {
      if (seen.has(next)) continue;
      if (through && !through(graph.files[next] ?? '')) continue;
      seen.add(next);
      queue.push(next);
    }
  }
  return new Set([...seen].map((i) => graph.files[i] ?? ''));
}

/**
 * An `#include` line the patch adds to (or removes from) the header changes, for every unit
 * that includes the header, which names are declared before its own code: so the names the
 * included header, and the headers it brings that the header did not already bring (by the
 * graph), define at top level count as changed. A unit that already had them through another
 * path is rebuilt for nothing; one that did not is rebuilt as it must be. An include that
 * cannot be found is a change no name carries.
 */
function includeSeeds(
  graph: IncludeGraph,
  treeDir: string,
  change: HeaderChange,
  post: string,
  read: (file: string) => string,
): { seeds: Map<string, string>; files: string[]; unresolved?: string } {
  const seeds = new Map<string, string>();
  const files: string[] = [];
  const header = change.header;
  const before = new Set([header, ...includedFrom(graph, header)]);
  let after: Set<string> | undefined;
  const lines = [...change.includesAdded.map((spec) => ({ spec, added: true })), ...change.includesRemoved.map((spec) => ({ spec, added: false }))];
  for (const { spec, added } of lines) {
    const path = resolveSpec(graph, treeDir, header, spec);
    if (!path) return { seeds, files, unresolved: `#include ${spec} ${added ? 'added' : 'removed'}, a file tsplice does not find` };
    if (!added && !after) {
      const direct = parseItems(post).flatMap((i) => (i.include !== undefined ? [resolveSpec(graph, treeDir, header, i.include)] : [])).filter((p): p is string => p !== undefined);
      after = reachable(graph, [header, ...direct], graph.includes);
    }
    const had = added ? before : (after ?? new Set<string>());
    const brought = [path, ...includedFrom(graph, path).filter((f) => !had.has(f) && !f.endsWith('.c'))];
    for (const file of brought) {
      files.push(file);
      for (const item of parseItems(read(file))) {
        for (const name of item.names) if (!seeds.has(name)) seeds.set(name, `#include ${spec}`);
        for (const tail of item.tails) if (!seeds.has(tailName(tail))) seeds.set(tailName(tail), `#include ${spec}`);
      }
    }
  }
  return { seeds, files };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function tooManyReached(header: string, count: number, limit: number, byName: Map<string, number>, everything?: string): UserError {
  const over = `more than the ${limit} that create rebuilds for a changed header`;
  const top = [...byName].filter(([name]) => name !== everything).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const shown = top.slice(0, 3).map(([name, n]) => `${name} reaches ${plural(n, 'unit')}`);
  const more = top.length > 3 ? `, and ${plural(top.length - 3, 'other changed name')}` : '';
  if (everything && top.length === 0) {
    return new UserError(`${everything}: a change no name carries, so all ${count} units built into vmlinux that include the header count, ${over}.`, { kind: 'too-many-units', unit: everything });
  }
  const why = everything ? `; ${everything.replace(/^\S+: /, '')}, so every unit that includes it counts` : '';
  return new UserError(`${header}: the names it changes reach ${plural(count, 'unit')} built into vmlinux, ${over} (${shown.join(', ')}${more}${why}).`, { kind: 'too-many-units', unit: header });
}

/** For each reached unit, the changed names that reach it, counted per name over `units`. */
function countByName(reasons: ReadonlyMap<string, string[]>, units: Iterable<string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const unit of units) for (const why of reasons.get(unit) ?? []) out.set(why, (out.get(why) ?? 0) + 1);
  return out;
}

/**
 * The units built into vmlinux whose code a change to `header` can reach (src/header-reach/header-reach.ts):
 * of the units that include it, those whose text names what changed, directly or through the
 * other headers they include. Refuses above the limit, naming the changed names that reach
 * the most units.
 */
export function unitsReached(tree: PreparedTree, header: string, options: ReachOptions): HeaderUnits {
  const limit = options.limit ?? DEFAULT_HEADER_UNIT_LIMIT;
  const graph = options.graph ?? includeGraph(tree);
  const { config, readMakefiles, skipped, candidates, builtIn } = includingUnits(tree, header, graph, limit);
  const patched = options.patched ?? new Map<string, string>();
  const read = (file: string): string => {
    const path = join(tree.dir, file);
    const own = existsSync(path) ? readFileSync(path, 'latin1') : '';
    const post = patched.get(file);
    return post === undefined ? own : `${own}\n${post}`;
  };
  const change = headerChange(header, options.pre, options.post);
  const brought = includeSeeds(graph, tree.dir, change, options.post, read);
  if (brought.unresolved) change.unnamed.push(brought.unresolved);
  const candidateSet = new Set(candidates);
  // Every file the candidates' translation units can hold: a type or macro a unit uses may be
  // declared in a header that does not include this one (a forward declaration) and still
  // lead to what changed, so the closure runs over all of them, not only the includers.
  const forced = reachable(graph, FORCED_INCLUDES, graph.includes);
  const files = new Set([...reachable(graph, candidates, graph.includes), ...forced, ...brought.files, header]);
  for (const c of candidates) files.delete(c);
  const result = findReach({
    change,
    seeds: brought.seeds,
    files: [...files].sort(),
    units: candidates,
    read,
    // A unit's text with the .c/.inc files it #includes (not headers: those are in the closure).
    unitFiles: (unit) => [...reachable(graph, [unit], graph.includes, (f) => !f.endsWith('.h'))],
    unitsIncluding: (file) => includersOf(graph, file).filter((u) => candidateSet.has(u)),
    ...(options.cache ? { cache: options.cache } : {}),
  });
  const reachedCandidates = candidates.filter((c) => result.units.has(c));
  const reachedBuiltIn = reachedCandidates.filter((c) => builtIn.has(c));
  const folders = new Set(reachedCandidates.map((c) => posix.dirname(c)));
  if (reachedBuiltIn.length > limit && folders.size > EXACT_FOLDER_BUDGET) {
    throw tooManyReached(header, reachedBuiltIn.length, limit, countByName(result.units, reachedBuiltIn), result.everything);
  }
  const units = exactlyBuiltIn(tree, config, readMakefiles, reachedCandidates, skipped);
  if (units.length > limit) throw tooManyReached(header, units.length, limit, countByName(result.units, units), result.everything);
  const reasons: Record<string, string[]> = {};
  for (const unit of units) reasons[unit] = result.units.get(unit) ?? [];
  return {
    header,
    units,
    skipped,
    changed: result.everything ? [result.everything] : [...change.names, ...new Set(brought.seeds.values())],
    reasons,
    notReached: candidates.length - reachedCandidates.length,
  };
}

function underIncludeRoot(file: string): boolean {
  return INCLUDE_ROOTS.some((root) => file.startsWith(`${root}/`));
}

/**
 * The folders whose files a post compile must find beside the patched headers' copies: gcc
 * looks a quoted include up in the includer's own folder first, which no flag can put in
 * front of the tree. That is each changed header's folder, and for a header outside the
 * include roots (fs/proc/internal.h) the folders of the headers that include it, those under
 * an include root too: <trace/events/sof_intel.h> includes
 * "../../../sound/soc/sof/sof-audio.h", which includes the changed "sof-priv.h"; found in the
 * tree's include/, it would bring the old one. The compile puts a mirrored include root in
 * front of the tree's (overlayPatchedHeaders), so the copy's quoted includes stay in the copy.
 */
export function foldersToMirror(graph: IncludeGraph, headers: readonly string[]): string[] {
  const folders = new Set<string>();
  for (const header of headers) {
    folders.add(posix.dirname(header));
    if (underIncludeRoot(header)) continue;
    for (const file of includersOf(graph, header)) {
      if (file.endsWith('.h')) folders.add(posix.dirname(file));
    }
  }
  return [...folders].sort();
}
