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
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { UserError } from '../errors.js';
import { cachePath } from '../lab/cache.js';
import type { PreparedTree } from '../lab/prepare.js';
import { buildStatus, readAutoConf, type BuildStatus } from './config.js';

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
  /** The units built into vmlinux that include the header, directly or through other headers. */
  units: string[];
  /** Units that include it but are not rebuilt: modules, units not built, and 'unknown' ones. */
  skipped: { unit: string; status: BuildStatus }[];
}

export interface IncludeGraph {
  files: string[];
  index: Map<string, number>;
  /** For each file, the files that include it. */
  includedBy: number[][];
}

const GRAPH_FORMAT = 1;

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
      else if (entry.isFile()) {
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
  return (byBase.get(posix.basename(name)) ?? []).filter((p) => `/${p}`.endsWith(suffix));
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
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as StoredGraph;
    if (cached.format === GRAPH_FORMAT && cached.dir === tree.dir && cached.fingerprint === fingerprint) stored = cached;
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
  return { files: stored.files, index: new Map(stored.files.map((f, i) => [f, i])), includedBy };
}

/** The files that include `file`, directly or not (`file` itself excluded). */
export function includersOf(graph: IncludeGraph, file: string): string[] {
  const start = graph.index.get(file);
  if (start === undefined) return [];
  const seen = new Set<number>([start]);
  const queue = [start];
  while (queue.length > 0) {
    for (const from of graph.includedBy[queue.pop() ?? 0] ?? []) {
      if (seen.has(from)) continue;
      seen.add(from);
      queue.push(from);
    }
  }
  seen.delete(start);
  return [...seen].map((i) => graph.files[i] ?? '');
}

/** Makefile assignments with continuations joined and the variables kbuild would expand here. */
function makefileAssignments(path: string, config: Map<string, string>): [string, string[]][] {
  const text = readFileSync(path, 'utf8').replace(/\\\n/g, ' ');
  const expand = (s: string): string =>
    s
      .replace(/\$\((CONFIG_\w+)\)/g, (_all, name: string) => config.get(name) ?? '')
      .replace(/\$\(SRCARCH\)/g, 'x86')
      .replace(/\$\(BITS\)/g, '64')
      .replace(/\$\(subst m,y,(\w*)\)/g, (_all, value: string) => value.replace(/m/g, 'y'));
  const out: [string, string[]][] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([\w$().,-]+)\s*[+:]?=\s*(.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) out.push([expand(m[1]), expand(m[2]).split(/\s+/).filter(Boolean)]);
  }
  return out;
}

/**
 * Whether kbuild descends into a folder and links what it builds there into vmlinux. A folder
 * is entered from the nearest folder above whose Makefile names it (`obj-y += proc/`, or
 * `drivers-y += arch/x86/pci/` in the arch Makefile for top-level paths).
 */
class FolderStatus {
  private readonly known = new Map<string, BuildStatus>([['', 'built-in']]);
  private readonly listings = new Map<string, [string, string[]][]>();
  constructor(
    private readonly treeDir: string,
    private readonly config: Map<string, string>,
  ) {}

  private listing(dir: string): [string, string[]][] {
    let list = this.listings.get(dir);
    if (list) return list;
    const files = dir === '' ? ['Kbuild', 'Makefile', 'arch/x86/Makefile'] : [`${dir}/Kbuild`, `${dir}/Makefile`];
    const present = files.map((f) => join(this.treeDir, f)).filter((f) => existsSync(f));
    // A folder with a Kbuild file descends by it alone; the root's subfolders come from all three.
    const used = dir === '' ? present : present.slice(0, 1);
    list = used.flatMap((f) => makefileAssignments(f, this.config));
    this.listings.set(dir, list);
    return list;
  }

  private mention(ancestor: string, folder: string): BuildStatus | undefined {
    const word = `${ancestor === '' ? folder : folder.slice(ancestor.length + 1)}/`;
    let best: BuildStatus | undefined;
    for (const [variable, words] of this.listing(ancestor)) {
      if (!words.includes(word)) continue;
      const m = /^(obj|core|drivers|libs|lib)-(y|m)$/.exec(variable);
      const status: BuildStatus = !m ? 'not built' : m[2] === 'y' ? 'built-in' : 'module';
      if (status === 'built-in') return status;
      if (status === 'module' || best === undefined) best = status;
    }
    return best;
  }

  of(folder: string): BuildStatus {
    const cached = this.known.get(folder);
    if (cached) return cached;
    const parent = folder.includes('/') ? posix.dirname(folder) : '';
    let status: BuildStatus | undefined;
    for (let a = parent; status === undefined; a = a.includes('/') ? posix.dirname(a) : '') {
      const said = this.mention(a, folder);
      if (said) status = combine(this.of(a), said);
      else if (a === '') break;
    }
    // Named by no Makefile: top-level folders the root does not list, other architectures and
    // folders inside a folder not built are not built; elsewhere kbuild may reach it some way
    // this does not read.
    if (status === undefined) {
      const outside = parent === '' || (parent === 'arch' && folder !== 'arch/x86') || this.of(parent) === 'not built';
      status = outside ? 'not built' : 'unknown';
    }
    this.known.set(folder, status);
    return status;
  }
}

/** What a thing of `inner` status inside a folder of `outer` status amounts to for vmlinux. */
function combine(outer: BuildStatus, inner: BuildStatus): BuildStatus {
  if (outer === 'not built' || inner === 'not built') return 'not built';
  if (inner === 'module' || outer === 'module') return 'module';
  if (outer === 'unknown' || inner === 'unknown') return 'unknown';
  return 'built-in';
}

export interface IncludersOptions {
  /** Refuse when more built-in units than this include the header (default DEFAULT_HEADER_UNIT_LIMIT). */
  limit?: number;
  /** A graph already loaded, to answer several headers with one load. */
  graph?: IncludeGraph;
}

/** The units built into vmlinux that a change to `header` affects; refuses above the limit. */
export function unitsIncluding(tree: PreparedTree, header: string, options: IncludersOptions = {}): HeaderUnits {
  const limit = options.limit ?? DEFAULT_HEADER_UNIT_LIMIT;
  const graph = options.graph ?? includeGraph(tree);
  const reached = includersOf(graph, header);
  const forced = FORCED_INCLUDES.find((f) => f === header || reached.includes(f));
  if (forced) {
    throw new UserError(
      `${header} is part of every unit of the kernel (through kbuild's -include ${forced}), far more than the ${limit} units create rebuilds for a changed header.`,
    );
  }
  const config = readAutoConf(tree.dir);
  const folders = new FolderStatus(tree.dir, config);
  const units: string[] = [];
  const skipped: HeaderUnits['skipped'] = [];
  for (const file of reached.filter((f) => f.endsWith('.c')).sort()) {
    const folder = folders.of(posix.dirname(file));
    const status = folder === 'not built' ? folder : combine(folder, buildStatus(tree.dir, file, config));
    // A .c file that other files include and no Makefile names is a fragment of those
    // includers (kernel/sched/build_policy.c includes fair.c…), which are walked already.
    if (status === 'unknown' && (graph.includedBy[graph.index.get(file) ?? -1]?.length ?? 0) > 0) continue;
    if (status === 'built-in') units.push(file);
    else skipped.push({ unit: file, status });
  }
  if (units.length > limit) {
    throw new UserError(
      `${header} is included by ${units.length} units built into vmlinux, more than the ${limit} that create rebuilds for a changed header.`,
    );
  }
  return { header, units, skipped };
}
