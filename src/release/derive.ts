/**
 * The corpus of real fixes: every `.c` file that differs between two prepared trees (the
 * running kernel's source and a later stable release, prepared with the same .config) and is
 * built into vmlinux or into a loadable module, each with its own diff as a patch against the
 * older tree. A module unit's entry names its module as create finds it (kbuild's recorded
 * command, src/kbuild/module-of.ts), or why create will refuse it (several modules, vmlinux and
 * a module). A file whose derivation fails is recorded with why, and the run goes on.
 *
 * A file's diff alone may not compile against the older tree's headers (a new helper, a new
 * field, a new header). Then the header hunks it needs are grouped into its patch. First whole
 * header diffs: the changed headers the unit includes (the pre object's kbuild dependencies
 * and the new file's #include lines) whose hunks name an identifier the compiler complained
 * about; for a name none of them has, a changed header that adds it; after four rounds, if it
 * still fails, every changed header the unit includes. Once those compile, each header is cut
 * down to the hunks the unit needs (src/release/hunk-select.ts); a header none of whose hunks
 * is needed is dropped. Which headers and hunks were grouped, and the compiler line that made
 * each necessary, is recorded in the manifest. Every patch is checked to apply with GNU patch,
 * fuzz 0 and no offset, to the older tree's files (src/release/hunk-apply.ts). Nothing here edits
 * either tree: the compile tests run the unit's recorded kbuild command on copies in a work
 * folder (see compileWithOverlay). docs/corpus.md has the figures.
 *
 * Run: node dist/tools/corpus/derive-cli.js [--status built-in|module|all] [--under DIR]
 * [--only FILE,...] [--limit N] [--why FILE] (see derive-cli.ts)
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, normalize, relative } from 'node:path';
import { UserError } from '../host/errors.js';
import { buildStatus, KbuildReader, readAutoConf, type BuildStatus } from '../kbuild/build-status.js';
import { buildPreObject, buildPreObjects, objectPathOf, recordedCommand, variantCommand } from '../kbuild/compile.js';
import { moduleOf, modulesOfCommand } from '../kbuild/module-of.js';
import type { PreparedTree } from '../kbuild/tree.js';
import { applyToCopies } from './hunk-apply.js';
import { namedIn, selectHunks, type KeptHunk } from './hunk-select.js';

export { namedIn } from './hunk-select.js';

export type Log = (line: string) => void;

/** What `diff -rq` says about the two source trees, as paths relative to the tree tops. */
export interface TreeChanges {
  changed: string[];
  onlyOld: string[];
  onlyNew: string[];
}

/** Paths that `make prepare` (or an earlier build) writes into a tree: never part of a fix. */
export function isBuildProduct(path: string): boolean {
  const name = basename(path);
  if (name.startsWith('.')) return true;
  if (/\.(o|a|ko|mod|mod\.c|order|symvers|lds|s|tmp|d)$/.test(name)) return true;
  return /(^|\/)(include\/generated|include\/config|arch\/[^/]+\/include\/generated)(\/|$)/.test(path);
}

/** Parses `diff -rq OLD NEW` output. Exported for tests. */
export function parseDiffRq(output: string, oldDir: string, newDir: string): TreeChanges {
  const changes: TreeChanges = { changed: [], onlyOld: [], onlyNew: [] };
  const strip = (path: string, top: string): string => relative(top, path);
  for (const line of output.split('\n')) {
    const differ = /^Files (.+) and (.+) differ$/.exec(line);
    if (differ?.[1]) {
      changes.changed.push(strip(differ[1], oldDir));
      continue;
    }
    const only = /^Only in (.+): (.+)$/.exec(line);
    if (only?.[1] && only[2]) {
      const full = join(only[1], only[2]);
      if (full.startsWith(`${oldDir}/`)) changes.onlyOld.push(strip(full, oldDir));
      else if (full.startsWith(`${newDir}/`)) changes.onlyNew.push(strip(full, newDir));
    }
  }
  const keep = (p: string): boolean => !isBuildProduct(p);
  return {
    changed: changes.changed.filter(keep).sort(),
    onlyOld: changes.onlyOld.filter(keep).sort(),
    onlyNew: changes.onlyNew.filter(keep).sort(),
  };
}

/** Every source file that differs between the trees (`diff -rq`, build products left out). */
export function treeChanges(oldDir: string, newDir: string): TreeChanges {
  const r = spawnSync('diff', ['-rq', '--no-dereference', oldDir, newDir], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0 && r.status !== 1) throw new Error(`diff -rq ${oldDir} ${newDir} failed: ${r.stderr}`);
  return parseDiffRq(r.stdout, oldDir, newDir);
}

/** A unified diff of one file, `a/PATH` to `b/PATH` (a file missing on one side is /dev/null). */
export function fileDiff(oldDir: string, newDir: string, path: string): string {
  const oldPath = join(oldDir, path);
  const newPath = join(newDir, path);
  const hasOld = existsSync(oldPath);
  const hasNew = existsSync(newPath);
  const r = spawnSync(
    'diff',
    ['-u', '-p', '--label', hasOld ? `a/${path}` : '/dev/null', '--label', hasNew ? `b/${path}` : '/dev/null', hasOld ? oldPath : '/dev/null', hasNew ? newPath : '/dev/null'],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.status !== 0 && r.status !== 1) throw new Error(`diff -u of ${path} failed: ${r.stderr}`);
  return r.stdout;
}

/**
 * The unit a `.c` file is compiled in: itself, or a `.c` file of the same folder that
 * `#include`s it (kernel/sched/build_policy.c includes rt.c). Undefined when none does.
 */
export function includingUnit(treeDir: string, file: string): string | undefined {
  const dir = dirname(file);
  const name = basename(file);
  const pattern = new RegExp(`^\\s*#\\s*include\\s+"${name.replace(/[.]/g, '\\.')}"`, 'm');
  for (const entry of readdirSync(join(treeDir, dir)).sort()) {
    if (!entry.endsWith('.c') || entry === name) continue;
    if (pattern.test(readFileSync(join(treeDir, dir, entry), 'utf8'))) return join(dir, entry);
  }
  return undefined;
}

/**
 * Files kbuild lists as the object's dependencies (its .cmd), relative to the tree. gcc writes a
 * header reached by a quoted `../` include as it was named (`drivers/iommu/intel/../iommu-sva-lib.h`):
 * the paths are normalized, so that such a header is matched with the changed headers like any other.
 */
export function objectDependencies(treeDir: string, object: string): string[] {
  const cmd = join(treeDir, dirname(object), `.${basename(object)}.cmd`);
  if (!existsSync(cmd)) return [];
  const text = readFileSync(cmd, 'utf8');
  const deps = /\ndeps_[^\n]*:= \\\n([\s\S]*?)\n\n/.exec(text)?.[1] ?? '';
  return deps
    .split('\n')
    .map((l) => l.trim().replace(/\s*\\$/, ''))
    .filter((l) => l && !l.startsWith('$(') && !l.startsWith('/'))
    .map((l) => normalize(l));
}

export interface CompileResult {
  ok: boolean;
  /** The compiler's complaints (error lines first), when not ok. */
  output: string;
  seconds: number;
}

function runShell(command: string, cwd: string): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    child.on('close', (code) => resolve({ status: code ?? 1, output: Buffer.concat(chunks).toString('utf8') }));
  });
}

/**
 * Compiles `unit` of the old tree with some files taken from the new tree instead (or given as
 * text: the old header with some hunks applied), using the unit's recorded kbuild command.
 * Headers are overlaid by putting a copy of their folder (the changed header, the others as
 * links) in front of the tree's -I folders; the unit's own folder, searched first for quoted
 * includes, is copied the same way.
 */
export async function compileWithOverlay(
  tree: PreparedTree,
  unit: string,
  files: string[],
  newDir: string,
  /** Text to use instead of the new tree's, by path (a header with only some hunks applied). */
  texts?: ReadonlyMap<string, string>,
): Promise<CompileResult> {
  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'tsplice-corpus-'));
  try {
    const root = join(work, 'src');
    const out = join(work, 'out');
    mkdirSync(join(root, dirname(unit)), { recursive: true });
    copyFileSync(join(tree.dir, unit), join(root, unit));
    for (const file of files) {
      const to = join(root, file);
      mkdirSync(dirname(to), { recursive: true });
      rmSync(to, { force: true });
      const text = texts?.get(file);
      if (text !== undefined) writeFileSync(to, text);
      else copyFileSync(join(newDir, file), to);
    }
    // With a header overlaid, the rest of its folder, of the unit's folder and of every folder
    // the unit's pre object depends on, as links to the old tree: a header resolves a quoted
    // include beside itself first, so one reached through a sibling or through a header of
    // another folder must find the overlaid copy, not the old tree's (a sibling of nf_internals.h
    // includes "nf_internals.h"; <trace/events/sof_intel.h> includes
    // "../../../sound/soc/sof/sof-audio.h", which includes "sof-priv.h"). Linked after every
    // copy is made: no copy is written through a linked folder into the old tree.
    const headers = files.filter((f) => f.endsWith('.h'));
    const reached = headers.length > 0 ? objectDependencies(tree.dir, objectPathOf(unit)).filter((d) => d.endsWith('.h')) : [];
    const folders = new Set(headers.length > 0 ? [dirname(unit), ...headers.map((h) => dirname(h)), ...reached.map((d) => dirname(d))] : []);
    for (const dir of folders) {
      if (!existsSync(join(tree.dir, dir))) continue;
      mkdirSync(join(root, dir), { recursive: true });
      for (const entry of readdirSync(join(tree.dir, dir))) {
        if (!existsSync(join(root, dir, entry))) symlinkSync(join(tree.dir, dir, entry), join(root, dir, entry));
      }
    }
    let command = variantCommand(recordedCommand(tree, objectPathOf(unit)), unit, root, out);
    // Overlaid folders in front of the tree's: -I./include -> -I<root>/include -I./include.
    command = command.replace(/(^|\s)-I\.\/(\S+)/g, (all, space: string, dir: string) =>
      existsSync(join(root, dir)) ? `${space}-I${join(root, dir)} -I./${dir}` : all,
    );
    command = command.replace(/(^|\s)-include \.\/(\S+)/g, (all, space: string, header: string) =>
      files.includes(header) ? `${space}-include ${join(root, header)}` : all,
    );
    mkdirSync(join(out, dirname(unit)), { recursive: true });
    const r = await runShell(command, tree.dir);
    const lines = r.output.split('\n');
    const errors = lines.filter((l) => /\berror\b|fatal/.test(l));
    const output = [...errors, ...lines.filter((l) => !errors.includes(l))].join('\n').trim();
    return { ok: r.status === 0 && existsSync(join(out, objectPathOf(unit))), output, seconds: (Date.now() - started) / 1000 };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Identifiers the compiler named in its error lines (`'foo' undeclared`, no member named 'bar'...). */
export function identifiersInErrors(output: string): string[] {
  const found = new Set<string>();
  for (let line of output.split('\n')) {
    if (!/\berror\b|fatal/.test(line)) continue;
    // gcc's guesses ("did you mean 'of_node_set_flag'?") name what exists, not what is missing.
    line = line.replace(/;? did you mean [‘'`"][^’'"]*[’'"]\??/g, '');
    for (const m of line.matchAll(/[‘'`"]([A-Za-z_][\w]*)(?:\(\))?[’'"]/g)) if (m[1]) found.add(m[1]);
    const missing = /fatal error: ([\w./-]+): No such file/.exec(line);
    if (missing?.[1]) found.add(missing[1]);
    const struct = /(?:struct|union|enum) ([A-Za-z_]\w*)/.exec(line);
    if (struct?.[1]) found.add(struct[1]);
  }
  // Keywords and type words carry no information about where the fix lives.
  for (const w of ['struct', 'union', 'enum', 'int', 'void', 'char', 'long', 'unsigned', 'const', 'static', 'return']) found.delete(w);
  return [...found];
}

/** The lines a diff adds. */
function addedText(diff: string): string {
  return diff
    .split('\n')
    .filter((l) => l.startsWith('+') && !l.startsWith('+++'))
    .join('\n');
}

/** The lines of a diff's hunks (context, removed and added), without the file names. */
function hunkText(diff: string): string {
  return diff
    .split('\n')
    .filter((l) => /^[ +-]/.test(l) && !l.startsWith('+++') && !l.startsWith('---'))
    .join('\n');
}

/**
 * Headers a source file names in #include lines, as tree paths that exist in `treeDir`:
 * <x.h> under include/, arch/x86/include/ and their uapi/, "x.h" beside the file.
 */
export function directIncludes(treeDir: string, file: string): string[] {
  const text = readFileSync(join(treeDir, file), 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/^\s*#\s*include\s+([<"])([^>"]+)[>"]/gm)) {
    const name = m[2] ?? '';
    const places = m[1] === '"' ? [join(dirname(file), name)] : ['include', 'arch/x86/include', 'include/uapi', 'arch/x86/include/uapi'].map((d) => join(d, name));
    for (const p of places) if (existsSync(join(treeDir, p))) found.push(p);
  }
  return found;
}

/**
 * Whether the changed header `path` is the file a failed #include names (`fatal error: NAME: No
 * such file or directory`): "x.h" or "../x.h" beside the including file, as kbuild's quoted
 * includes are found (net/netfilter/nf_internals.h for "nf_internals.h"), or <linux/x.h> by its
 * tail under an include folder.
 */
export function headerNamed(path: string, name: string, includingDir: string): boolean {
  if (path === normalize(join(includingDir, name))) return true;
  return name.includes('/') && !name.startsWith('.') && (path === name || path.endsWith(`/${name}`));
}

export interface HeaderNeed {
  path: string;
  /** The compiler line that made it necessary (or why it was grouped). */
  reason: string;
  /** Hunks in the header's whole diff. */
  hunksTotal?: number;
  /** The hunks of its diff the patch carries, each with why (src/release/hunk-select.ts). */
  hunks?: KeptHunk[];
}

export type CompileOutcome = 'alone' | 'with-headers' | 'fails';

/** Which units a run derives: those linked into vmlinux, those of loadable modules, or both. */
export type StatusChoice = 'built-in' | 'module' | 'all';

/** A changed .c file to derive: the unit it is compiled in and that unit's build status. */
export interface Candidate {
  /** The changed source file. */
  file: string;
  /** The compilation unit it is built in (the file itself, or the unit including it). */
  unit: string;
  includedInto?: string;
  status: BuildStatus;
}

/**
 * Why create will refuse a unit for the module it is linked into (src/kbuild/module-of.ts):
 * kinds as create's diagnostics name them, the reason as create words it.
 */
export interface ModuleRefusal {
  kind: 'several-modules' | 'built-in-and-module';
  reason: string;
}

/** Where kbuild links a unit: `module` (KBUILD_MODNAME, the .ko name with '_') or none for vmlinux. */
export interface ModulePlace {
  module?: string;
  moduleRefusal?: ModuleRefusal;
}

/** A file whose derivation failed (its patch did not apply, its pre object did not build). */
export interface DeriveFailure extends Candidate, ModulePlace {
  /** One sentence: the file and what failed (patch's own words for a patch that does not apply). */
  deriveError: string;
  /** The refusal's kind when tsplice refused it (create would refuse it the same way). */
  kind?: string;
}

export interface CorpusEntry extends Candidate, ModulePlace {
  /** Changed headers grouped into the patch, each with why. */
  headers: HeaderNeed[];
  compile: CompileOutcome;
  /** The compiler's first error lines when compile is 'fails', or the file's alone. */
  compileError?: string;
  /** Patch file name (under the patches folder or the cache). */
  patch: string;
  diffBytes: number;
  sha256: string;
  /** For a module unit: whether `modprobe` loads its module in the lab guest (module-loads.ts). */
  loadsInLab?: boolean;
  /** Why it does not load: modprobe's last words. */
  loadError?: string;
}

export interface CorpusManifest {
  from: { release: string; version: string };
  to: { version: string };
  derivedAt: string;
  command: string;
  counts: {
    changedFiles: number;
    changedC: number;
    addedC: number;
    builtIn: number;
    module: number;
    notBuilt: number;
    unknown: number;
    includedIntoBuiltIn: number;
    changedHeaders: number;
  };
  /** Changed .c files whose build status could not be told from the Makefile. */
  unknown: string[];
  /**
   * Files where create's check (buildStatus) and the corpus's status differ. Both read the
   * Makefiles with src/kbuild/build-status.ts now, so this stays empty; an entry that appears
   * must say why in `explained`.
   */
  buildStatusDisagrees: { file: string; buildStatus: BuildStatus; corpus: BuildStatus; explained?: string }[];
  /** Changed built-in assembly files: left out of the corpus (tsplice compiles .c units). */
  builtInAssembly: string[];
  patchesStored: 'repository' | 'cache';
  patchesDir: string;
  totalPatchBytes: number;
  files: CorpusEntry[];
  /** Files whose derivation failed, each with why; absent when none did. No patch is stored for them. */
  deriveErrors?: DeriveFailure[];
  /** When and on which kernel the module entries' loadsInLab was found (module-loads.ts). */
  loadsChecked?: { at: string; release: string; command: string };
}

/** `kernel/time/timer.c` -> `kernel-time-timer.patch`. */
export function patchNameFor(file: string): string {
  return `${file.replace(/\.c$/, '').replace(/[^\w.-]+/g, '-')}.patch`;
}

function firstErrors(output: string, count = 3): string {
  return output
    .split('\n')
    .filter((l) => /\berror\b|fatal/.test(l))
    .slice(0, count)
    .map((l) => l.replace(/^.*?(\S+\.[ch]:\d+:\d+: )/, '$1').replace(/\/tmp\/tsplice-corpus-\w+\/src\//g, '').trim())
    .join(' | ');
}

/** Which candidates a run derives (derive-cli's --status, --under, --only, --limit). */
export interface CandidateChoice {
  /** Default 'built-in': what the corpus's main list is made of. */
  status?: StatusChoice;
  /** Only files under this folder of the tree (net/netfilter). */
  under?: string;
  /** Only these files (a slice). */
  only?: readonly string[];
  /** Only the first N of the rest. */
  limit?: number;
}

/** One file's derivation: its entry and patch text, or why it failed. */
export type DerivedFile = { entry: CorpusEntry; text: string } | DeriveFailure;

/**
 * Where each file's derivation is kept between runs (src/release/derivation-store.ts). Deriving
 * a whole stable release takes the better part of an hour; with a store, a run killed half-way
 * resumes at the first file it had not finished. `keep` is called only with what the same inputs
 * would give again: an entry, or a failure tsplice refused (`kind` set). A failure of another
 * cause (a killed compiler, a full disk) is tried again next run.
 */
export interface DerivationStore {
  kept(c: Candidate): DerivedFile | undefined;
  keep(c: Candidate, derived: DerivedFile): void;
}

export interface DeriveOptions extends CandidateChoice {
  oldTree: PreparedTree;
  newTree: PreparedTree;
  log: Log;
  /** The command the manifest records (derive-cli's, with its options). */
  command?: string;
  /** How many files to derive at once (default 1). */
  jobs?: number;
  /** Each file's derivation kept from an earlier run, and kept for the next. */
  store?: DerivationStore;
}

export interface DerivedCorpus {
  manifest: Omit<CorpusManifest, 'patchesStored' | 'patchesDir' | 'totalPatchBytes'>;
  /** Patch text per entry, keyed by patch name. */
  patches: Map<string, string>;
}

/**
 * The header hunks a unit needs, once the whole diffs of `headers` make it compile
 * (src/release/hunk-select.ts): each header with the hunks kept and why, and its part of the
 * patch. A header none of whose hunks is needed is dropped; when no smaller set compiles, the
 * whole diffs are kept and the reason says so.
 */
async function headerHunks(
  oldTree: PreparedTree,
  newDir: string,
  c: { file: string; unit: string },
  headers: readonly HeaderNeed[],
  headerDiff: (path: string) => string,
  outputs: readonly string[],
  ownDiff: string,
  log: Log,
): Promise<{ headers: HeaderNeed[]; parts: string[] }> {
  const selection = await selectHunks(
    headers.map((h) => ({ path: h.path, diff: headerDiff(h.path) })),
    outputs,
    async (diffs) => {
      const texts = new Map<string, string>();
      for (const [path, diff] of diffs) {
        const applied = applyToCopies(oldTree.dir, diff);
        if (!applied.clean) throw new Error(`Some hunks of ${path} do not apply to ${oldTree.dir}: ${applied.problems.join('; ')}`);
        for (const [p, t] of applied.texts) texts.set(p, t);
      }
      return compileWithOverlay(oldTree, c.unit, [c.file, ...diffs.keys()], newDir, texts);
    },
    { clean: (line) => firstErrors(line, 1) || line.trim(), log, ownDiff },
  );
  const out: HeaderNeed[] = [];
  const parts: string[] = [];
  for (const [k, choice] of selection.choices.entries()) {
    const need = headers[k] as HeaderNeed;
    if (!selection.ok) {
      // The whole diffs compiled a moment ago but not in the selection's own check: keep them.
      out.push({ ...need, reason: `${need.reason} (whole diff: the hunks could not be chosen, the whole diffs failed to compile again)` });
      parts.push(headerDiff(need.path));
      continue;
    }
    if (choice.kept.length === 0) {
      log(`  ${need.path}: none of its ${choice.total} hunks is needed; left out`);
      continue;
    }
    // Each kept hunk was found needed (the unit fails without it), so keeping all of several
    // means no smaller set compiles.
    const note = choice.kept.length === choice.total && choice.total > 1 ? ' (whole diff: no smaller set of its hunks compiles)' : '';
    out.push({ path: need.path, reason: `${need.reason}${note}`, hunksTotal: choice.total, hunks: choice.kept });
    parts.push(choice.diff);
  }
  log(`  hunks (${selection.method}, ${selection.compiles} compiles): ${out.map((h) => `${h.path} ${h.hunks?.length ?? '?'}/${h.hunksTotal ?? '?'}`).join(', ')}`);
  return { headers: out, parts };
}

/** The changed files as kbuild sees them: the manifest's counts, and each .c file's unit and status. */
export interface ChangeClassification {
  counts: CorpusManifest['counts'];
  unknown: string[];
  buildStatusDisagrees: CorpusManifest['buildStatusDisagrees'];
  builtInAssembly: string[];
  /** Every changed or added .c file in diff order, whatever its status. */
  files: Candidate[];
}

/**
 * Reads both trees' Makefiles once to tell, for each changed or added .c file, the unit it is
 * compiled in (itself, or the .c file of its folder that #includes it) and that unit's status:
 * the candidates come from here, and so does `--why`'s answer.
 */
export function classifyChanges(oldDir: string, newDir: string, changes: TreeChanges): ChangeClassification {
  const changedHeaders = [...changes.changed, ...changes.onlyNew].filter((p) => p.endsWith('.h'));
  const config = readAutoConf(oldDir);
  const newConfig = readAutoConf(newDir);
  const oldMakefiles = new KbuildReader(oldDir, config);
  const newMakefiles = new KbuildReader(newDir, newConfig);
  const counts = { changedFiles: changes.changed.length + changes.onlyNew.length + changes.onlyOld.length, changedC: 0, addedC: 0, builtIn: 0, module: 0, notBuilt: 0, unknown: 0, includedIntoBuiltIn: 0, changedHeaders: changedHeaders.length };
  const unknown: string[] = [];
  const disagreements: CorpusManifest['buildStatusDisagrees'] = [];
  const files: Candidate[] = [];
  const sources = [...changes.changed.filter((p) => p.endsWith('.c')), ...changes.onlyNew.filter((p) => p.endsWith('.c'))];
  for (const file of sources) {
    const added = !existsSync(join(oldDir, file));
    if (added) counts.addedC++;
    else counts.changedC++;
    const dir = added ? newDir : oldDir;
    const makefiles = added ? newMakefiles : oldMakefiles;
    let status = makefiles.unit(file);
    // What create checks for the same file, by its own call.
    const plain = buildStatus(dir, file, added ? newConfig : config);
    if (plain !== status) disagreements.push({ file, buildStatus: plain, corpus: status });
    let unit = file;
    let includedInto: string | undefined;
    if (status === 'unknown') {
      const including = includingUnit(dir, file);
      if (including) {
        includedInto = including;
        unit = including;
        status = makefiles.unit(including);
        if (status === 'built-in') counts.includedIntoBuiltIn++;
      }
    }
    if (status === 'built-in') counts.builtIn++;
    else if (status === 'module') counts.module++;
    else if (status === 'not built') counts.notBuilt++;
    else {
      counts.unknown++;
      unknown.push(file);
    }
    files.push({ file, unit, status, ...(includedInto ? { includedInto } : {}) });
  }
  const builtInAssembly = changes.changed.filter((p) => p.endsWith('.S') && oldMakefiles.unit(p) === 'built-in');
  return { counts, unknown, buildStatusDisagrees: disagreements, builtInAssembly, files };
}

/** Whether a unit of `status` is of the chosen kind: kbuild links it into vmlinux or a module. */
function statusChosen(status: BuildStatus, choice: StatusChoice): boolean {
  return choice === 'all' ? status === 'built-in' || status === 'module' : status === choice;
}

/** `net/netfilter/` and `net/netfilter` name one folder; '' or '.' the whole tree. */
function isUnder(file: string, folder: string | undefined): boolean {
  const top = normalize(folder ?? '.').replace(/\/+$/, '');
  return top === '.' || file.startsWith(`${top}/`);
}

/**
 * The candidates a run derives, in diff order: of the chosen status (default built-in, the
 * corpus's main list), under the folder, among the files named, the first `limit`.
 */
export function selectCandidates(files: readonly Candidate[], choice: CandidateChoice): Candidate[] {
  const chosen = files
    .filter((c) => statusChosen(c.status, choice.status ?? 'built-in'))
    .filter((c) => isUnder(c.file, choice.under))
    .filter((c) => !choice.only || choice.only.length === 0 || choice.only.includes(c.file));
  return choice.limit === undefined ? chosen : chosen.slice(0, choice.limit);
}

/**
 * Why `file` is or is not a candidate of a run with `choice`, in one sentence (`--why`, and
 * for each `--only` file a run leaves out): unchanged, not a .c file, not built, of the other
 * status, outside the folder, or a candidate, with its unit and status.
 */
export function whyCandidate(file: string, changes: TreeChanges, classified: ChangeClassification, choice: CandidateChoice): string {
  const c = classified.files.find((f) => f.file === file);
  if (!c) {
    if (changes.onlyOld.includes(file)) return `${file} is removed by the later tree: there is no fix to derive.`;
    if (!changes.changed.includes(file) && !changes.onlyNew.includes(file)) return `${file} does not differ between the two trees (or is in neither): nothing to derive.`;
    if (file.endsWith('.h')) return `${file} is a changed header: its hunks go into the patches of the units that need them.`;
    return `${file} is not a .c file: the corpus derives .c units${classified.builtInAssembly.includes(file) ? ' (it is a built-in assembly file, listed in builtInAssembly)' : ''}.`;
  }
  const unit = c.includedInto ? `unit ${c.unit}, which #includes it` : `unit ${c.unit}`;
  if (c.status === 'not built') return `${file} is not built for this configuration (${unit}, by the Makefiles): not a candidate.`;
  if (c.status === 'unknown') return `${file}'s build status cannot be told from the Makefiles (${unit}): not a candidate.`;
  const status = choice.status ?? 'built-in';
  if (!statusChosen(c.status, status)) return `${file} is a candidate of status ${c.status} (${unit}), left out by --status ${status}.`;
  if (!isUnder(file, choice.under)) return `${file} is a candidate of status ${c.status} (${unit}), not under ${choice.under}.`;
  return `${file} is a candidate of status ${c.status} (${unit}).`;
}

/**
 * The module kbuild links `unit` into, found as create finds it (moduleOf, from the command
 * kbuild recorded at the pre compile). Create's refusal of a unit of several modules, or of
 * vmlinux and a module, is kept as `moduleRefusal`: the file is recorded with why, not dropped.
 */
export function modulePlace(tree: PreparedTree, unit: string, status: BuildStatus): ModulePlace {
  try {
    const module = moduleOf(tree, unit, status);
    return module === undefined ? {} : { module };
  } catch (error) {
    if (!(error instanceof UserError) || (error.kind !== 'several-modules' && error.kind !== 'built-in-and-module')) throw error;
    // The one module of a unit also in vmlinux; the names of several are in the reason.
    const modules = modulesOfCommand(recordedCommand(tree, objectPathOf(unit)));
    return { ...(modules.length === 1 ? { module: modules[0] } : {}), moduleRefusal: { kind: error.kind, reason: error.diagnostic.reason } };
  }
}

/** A failed derivation in one sentence: the file, then the error's first line. */
function deriveErrorOf(file: string, error: unknown): string {
  const message = ((error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '').trim();
  return message.startsWith(file) ? message : `${file}: ${message}`;
}

/**
 * Derives the chosen candidates one by one (the file's own diff, the header hunks it needs,
 * its module), each patch checked to apply as create will apply it. A file whose derivation
 * fails is recorded in `deriveErrors` with why, and the run goes on.
 */
export async function deriveCorpus(options: DeriveOptions): Promise<DerivedCorpus> {
  const { oldTree, newTree, log } = options;
  const oldDir = oldTree.dir;
  const newDir = newTree.dir;
  log(`Comparing ${oldDir} with ${newDir} (diff -rq)...`);
  const changes = treeChanges(oldDir, newDir);
  const changedHeaders = new Set([...changes.changed, ...changes.onlyNew].filter((p) => p.endsWith('.h')));
  const classified = classifyChanges(oldDir, newDir, changes);
  const { counts } = classified;
  log(
    `${counts.changedC} changed and ${counts.addedC} added .c files: ${counts.builtIn} built-in (${counts.includedIntoBuiltIn} through an including unit), ` +
      `${counts.module} modules, ${counts.notBuilt} not built, ${counts.unknown} unknown; ${changedHeaders.size} changed headers.`,
  );

  const selected = selectCandidates(classified.files, options);
  for (const file of options.only ?? []) {
    if (!selected.some((c) => c.file === file)) log(`${file}: left out. ${whyCandidate(file, changes, classified, options)}`);
  }

  const entries: CorpusEntry[] = [];
  const failures: DeriveFailure[] = [];
  const patches = new Map<string, string>();
  const headerDiffs = new Map<string, string>();
  const headerDiff = (h: string): string => {
    let text = headerDiffs.get(h);
    if (text === undefined) headerDiffs.set(h, (text = fileDiff(oldDir, newDir, h)));
    return text;
  };
  /**
   * One candidate's entry and patch text; throws when it cannot be derived. `place` is filled
   * as soon as kbuild has said where the unit goes, so that a failure after it names the module.
   */
  const deriveOne = async (c: Candidate, place: ModulePlace): Promise<{ entry: CorpusEntry; text: string }> => {
    const own = fileDiff(oldDir, newDir, c.file);
    const headers: HeaderNeed[] = [];
    /** Each grouped header's part of the patch: the hunks it needs. */
    const headerParts: string[] = [];
    let compile: CompileOutcome = 'alone';
    let compileError: string | undefined;
    if (!existsSync(join(oldDir, c.unit))) {
      compile = 'fails';
      compileError = `${c.unit} is new in ${newTree.sourceVersion}: there is no pre object to compare with`;
    } else {
      await buildPreObject(oldTree, c.unit);
      // kbuild recorded the unit's command with the pre compile: it says which module, if any.
      Object.assign(place, modulePlace(oldTree, c.unit, c.status));
      let result = await compileWithOverlay(oldTree, c.unit, [c.file], newDir);
      if (!result.ok) {
        compileError = firstErrors(result.output);
        // Every output that made a header necessary: its names seed the hunk selection.
        const outputs = [result.output];
        const deps = objectDependencies(oldDir, objectPathOf(c.unit));
        // Changed headers the unit includes: in the old object's dependencies, or named by an
        // #include of the new file (it may include a header the old one did not).
        const included = [...new Set([...deps, ...directIncludes(newDir, c.file)])].filter((d) => changedHeaders.has(d));
        const others = [...changedHeaders].filter((h) => !included.includes(h)).sort();
        // Rounds: group the headers whose changed hunks name what the compiler missed; a name
        // is looked for in the included headers first, then in every changed header.
        let output = result.output;
        for (let round = 0; round < 4 && !result.ok; round++) {
          const names = identifiersInErrors(output);
          const more: HeaderNeed[] = [];
          for (const n of names) {
            const line = output.split('\n').find((l) => l.includes(n) && /\berror\b|fatal/.test(l)) ?? n;
            // A header an #include names ("nf_internals.h", "../ops.h", <linux/x.h>) is found by
            // its path, beside the file that includes it (the error line's) or the unit's file.
            const isFile = /[./]/.test(n);
            const including = /^(?:\S*\/tsplice-corpus-\w+\/src\/|\.\/)?(\S+?\.[ch]):\d+/.exec(line)?.[1];
            const dirs = [...new Set([...(including ? [dirname(including)] : []), dirname(c.file)])];
            const chosen = (tier: string[], text: (diff: string) => string): string[] =>
              tier
                .filter((h) => !headers.some((x) => x.path === h) && !more.some((x) => x.path === h))
                .filter((h) => (isFile ? dirs.some((d) => headerNamed(h, n, d)) : namedIn(n, text(headerDiff(h)))));
            // Beyond the included headers only one that adds the name (a new helper, a new header).
            const hits = chosen(included, hunkText);
            // Not for plain words ('device' of 'struct device'), nor when several headers add it.
            const specific = isFile || (n.includes('_') && n.length >= 6);
            const wide = hits.length > 0 || !specific ? [] : chosen(others, addedText);
            const found = hits.length > 0 ? hits : wide.length <= 2 ? wide : [];
            for (const h of found) more.push({ path: h, reason: firstErrors(line, 1) || `needs ${n}` });
          }
          if (more.length === 0) break;
          headers.push(...more);
          result = await compileWithOverlay(oldTree, c.unit, [c.file, ...headers.map((h) => h.path)], newDir);
          output = result.output;
          outputs.push(output);
        }
        if (!result.ok) {
          // Still failing: every changed header the unit includes.
          const rest = included.filter((h) => !headers.some((x) => x.path === h));
          const why = firstErrors(output, 1) || 'the named headers were not enough';
          for (const h of rest) headers.push({ path: h, reason: `grouped wholesale: ${why}` });
          result = await compileWithOverlay(oldTree, c.unit, [c.file, ...headers.map((h) => h.path)], newDir);
        }
        compile = result.ok ? 'with-headers' : 'fails';
        if (!result.ok) compileError = `${compileError} || with ${headers.length} headers: ${firstErrors(result.output)}`;
        if (result.ok) {
          // The whole diffs compile: keep only the hunks the unit needs.
          const chosen = await headerHunks(oldTree, newDir, c, headers, headerDiff, outputs, own, log);
          headers.splice(0, headers.length, ...chosen.headers);
          headerParts.push(...chosen.parts);
        } else headerParts.push(...headers.map((h) => headerDiff(h.path)));
      }
    }
    const headerNote = headers.length > 0 ? headers.map((h) => (h.hunks ? `${h.path} (${h.hunks.length} of ${h.hunksTotal} hunks)` : h.path)).join(', ') : 'none';
    const first = `# tsplice corpus: ${c.file} (unit ${c.unit}), ${oldTree.sourceVersion} -> ${newTree.sourceVersion}; grouped headers: ${headerNote}\n`;
    const text = first + [own, ...headerParts].join('');
    // What create will do with it: every hunk must apply at its stated line, without fuzz.
    const check = applyToCopies(oldDir, text, true);
    if (!check.clean) {
      throw new UserError(`${c.file}: its derived patch does not apply to the ${oldTree.sourceVersion} files (GNU patch, fuzz 0, no offset): ${check.problems.map((p) => p.trim()).join('; ')}`, {
        kind: 'patch-does-not-apply',
        object: c.file,
      });
    }
    const entry: CorpusEntry = {
      file: c.file,
      unit: c.unit,
      ...(c.includedInto ? { includedInto: c.includedInto } : {}),
      status: c.status,
      ...place,
      headers,
      compile,
      ...(compileError ? { compileError } : {}),
      patch: patchNameFor(c.file),
      diffBytes: Buffer.byteLength(text),
      sha256: createHash('sha256').update(text).digest('hex'),
    };
    log(`  ${c.file}: ${compile}${headers.length ? ` (+${headers.length} headers: ${headerNote})` : ''}${compile === 'fails' ? `: ${compileError}` : ''}`);
    return { entry, text };
  };
  // Several files at once: each compile test works on its own copies, and the pre objects are
  // built first in one kbuild run, so that no two `make` runs share the tree.
  const jobs = Math.max(1, options.jobs ?? 1);
  const results: DerivedFile[] = new Array(selected.length);
  // What an earlier run kept is taken as it is: no pre object is built for it.
  const kept = selected.map((c) => options.store?.kept(c));
  const keptCount = kept.filter((k) => k !== undefined).length;
  if (keptCount > 0) log(`${keptCount} of ${selected.length} files were derived before (kept in the cache).`);
  if (jobs > 1) {
    const built = await buildPreObjects(oldTree, selected.filter((_, i) => kept[i] === undefined).map((c) => c.unit), jobs);
    if (built > 0) log(`Built ${built} pre objects (make -j${jobs}).`);
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < selected.length; i = next++) {
      const c = selected[i]!;
      const earlier = kept[i];
      if (earlier !== undefined) {
        results[i] = earlier;
        continue;
      }
      const place: ModulePlace = {};
      log(`[${i + 1}/${selected.length}] ${c.file}${c.status === 'module' ? ' (module unit)' : ''}...`);
      try {
        results[i] = await deriveOne(c, place);
        options.store?.keep(c, results[i]!);
      } catch (error) {
        const failure: DeriveFailure = { ...c, ...place, deriveError: deriveErrorOf(c.file, error), ...(error instanceof UserError ? { kind: error.kind } : {}) };
        results[i] = failure;
        if (failure.kind !== undefined) options.store?.keep(c, failure);
        log(`  derive error: ${failure.deriveError}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, selected.length) }, worker));
  // In the order of the candidates, whatever order the workers finished in.
  for (const r of results) {
    if ('deriveError' in r) {
      failures.push(r);
      continue;
    }
    patches.set(r.entry.patch, r.text);
    entries.push(r.entry);
    if (r.entry.moduleRefusal) log(`  ${r.entry.file}: create will refuse it: ${r.entry.moduleRefusal.reason}`);
  }
  return {
    manifest: {
      from: { release: oldTree.release, version: oldTree.sourceVersion },
      to: { version: newTree.sourceVersion },
      derivedAt: new Date().toISOString(),
      command: options.command ?? 'npm run build && node dist/tools/corpus/derive-cli.js',
      counts,
      unknown: classified.unknown,
      buildStatusDisagrees: classified.buildStatusDisagrees,
      builtInAssembly: classified.builtInAssembly,
      files: entries,
      ...(failures.length > 0 ? { deriveErrors: failures } : {}),
    },
    patches,
  };
}

/**
 * `--why FILE`: whether the file is a candidate of a run with `choice` and, for a candidate
 * whose unit the older tree has, where kbuild links it (its pre object is built for that, as
 * the run would).
 */
export async function whyFile(oldTree: PreparedTree, newTree: PreparedTree, file: string, choice: CandidateChoice): Promise<string[]> {
  const changes = treeChanges(oldTree.dir, newTree.dir);
  const classified = classifyChanges(oldTree.dir, newTree.dir, changes);
  const lines = [whyCandidate(file, changes, classified, choice)];
  const c = classified.files.find((f) => f.file === file);
  if (c && (c.status === 'built-in' || c.status === 'module') && existsSync(join(oldTree.dir, c.unit))) {
    await buildPreObject(oldTree, c.unit);
    const place = modulePlace(oldTree, c.unit, c.status);
    lines.push(
      place.moduleRefusal
        ? `kbuild compiles ${c.unit} for ${place.module ?? 'several modules'}; create refuses it (${place.moduleRefusal.kind}): ${place.moduleRefusal.reason}.`
        : `kbuild links ${c.unit} into ${place.module ? `the module ${place.module}` : 'vmlinux'}.`,
    );
  }
  return lines;
}

/** Patches in the repository while they stay small; above this, in the cache. */
export const MAX_STORED_PATCH_BYTES = 5 * 1024 * 1024;

/**
 * Writes the manifest and the patches: into `patchesDir` (the repository's test/corpus/patches)
 * when they total less than 5 MB, else into `cacheDir`, with the manifest naming where.
 */
export function writeCorpus(derived: DerivedCorpus, manifestPath: string, patchesDir: string, cacheDir: string): CorpusManifest {
  const total = [...derived.patches.values()].reduce((n, t) => n + Buffer.byteLength(t), 0);
  const stored = total < MAX_STORED_PATCH_BYTES ? 'repository' : 'cache';
  const dir = stored === 'repository' ? patchesDir : cacheDir;
  // An earlier run's patches go; nothing else in the folder does (--manifest /tmp/x.json puts them in /tmp/patches).
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(dir)) if (name.endsWith('.patch')) rmSync(join(dir, name), { force: true });
  for (const [name, text] of derived.patches) writeFileSync(join(dir, name), text);
  const manifest: CorpusManifest = {
    ...derived.manifest,
    patchesStored: stored,
    patchesDir: stored === 'repository' ? relative(dirname(manifestPath), dir) : dir,
    totalPatchBytes: total,
  };
  mkdirSync(dirname(manifestPath), { recursive: true });
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** Reads test/corpus/manifest.json. */
export function readManifest(manifestPath: string): CorpusManifest {
  return JSON.parse(readFileSync(manifestPath, 'utf8')) as CorpusManifest;
}

/** Where an entry's patch is, checked against its recorded sha256. */
export function patchPath(manifestPath: string, manifest: CorpusManifest, entry: CorpusEntry): string {
  const dir = manifest.patchesStored === 'repository' ? join(dirname(manifestPath), manifest.patchesDir) : manifest.patchesDir;
  const path = join(dir, entry.patch);
  if (!existsSync(path)) throw new Error(`The corpus patch ${path} is missing: derive the corpus again (node dist/tools/corpus/derive-cli.js).`);
  const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
  if (sha !== entry.sha256) throw new Error(`The corpus patch ${path} does not match the manifest's sha256: derive the corpus again.`);
  return path;
}
