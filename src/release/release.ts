/**
 * `tsplice release`: what a maintainer ships for one kernel of a distribution when a newer
 * source version of it comes out. The difference between the running kernel's Debian source
 * and the newer one becomes one update per fix, a manifest naming every changed file with its
 * outcome, and (updates-package.ts) a Debian package of them. The steps, in order:
 *
 *   1. kernelAndTrees   the kernel's packages, and both source trees prepared alike
 *   2. deriveFixes      each changed file's own diff with the header hunks it needs (derive.ts)
 *   3. makeFixUpdates   one update per fix, files of one fix together, adapted patches where
 *                       the upstream fix needs new code (fix-updates.ts), reused when built before
 *   4. shipUpdates      the updates signed and numbered in apply order, and the manifest
 *
 * Every step keeps its result in the cache, so a re-run costs only what changed.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { fetchKernel, type LabKernel } from '../debian/fetch.js';
import { UserError } from '../host/errors.js';
import { cachePath, isStepDone, markStepDone, resetDir } from '../host/cache.js';
import type { Log } from '../host/log.js';
import { prepareTree, type PreparedTree } from '../kbuild/tree.js';
import { writeUpdate } from '../update/format.js';
import { derivationStore } from './derivation-store.js';
import { deriveCorpus, patchPath, readManifest, writeCorpus, type CorpusManifest, type StatusChoice } from './derive.js';
import { makeFixUpdates, type FixFile, type FixResult } from './fix-updates.js';
import type { ManifestUpdate } from '../update/installed-manifest.js';
import { fileOutcome, type ReleaseManifest } from './release-manifest.js';
import { shippedForm } from './shipped-form.js';
import { cachedCreate } from './update-cache.js';

export interface ReleaseOptions {
  /** The kernel the updates are for: its release, e.g. 6.1.0-47-amd64. */
  kernel: string;
  /** The newer Debian source version whose fixes are shipped, e.g. 6.1.176-1. */
  to: string;
  /** Where the updates, the manifest and the packages go. */
  outDir: string;
  /** Which changed files: built-in, module, or all (default). */
  status?: StatusChoice;
  /** Only these changed files (a cut-down release, as CI makes). */
  only?: readonly string[];
  /** The maintainer's adapted patches (src/release/adapted.ts). */
  adaptedDir?: string;
  /** Signs every update (tsplice key new). */
  signingKey?: KeyObject;
  jobs: number;
  log: Log;
}

export interface ReleaseResult {
  manifest: ReleaseManifest;
  /** The folder holding manifest.json and the update files, as the package installs them. */
  updatesDir: string;
}

/** Step 1: the kernel's packages (its headers build the updates' modules) and both trees. */
async function kernelAndTrees(options: ReleaseOptions): Promise<{ kernel: LabKernel; oldTree: PreparedTree; newTree: PreparedTree }> {
  const kernel = await fetchKernel(options.kernel, options.log);
  if (kernel.version === options.to) throw new UserError(`${options.kernel} is built from ${options.to} already: there is nothing newer to ship.`, { kind: 'bad-argument', object: options.kernel });
  const oldTree = await prepareTree(options.kernel, options.log, kernel.version);
  const newTree = await prepareTree(options.kernel, options.log, options.to);
  return { kernel, oldTree, newTree };
}

/**
 * Step 2: each changed file's patch, kept in the cache twice over: the whole result per choice
 * of files (a re-run reads it and derives nothing), and each file's as it is derived
 * (derivation-store.ts: a killed run resumes; deriving a whole stable release compiles
 * hundreds of units against both trees).
 */
async function deriveFixes(options: ReleaseOptions, oldTree: PreparedTree, newTree: PreparedTree): Promise<{ manifestPath: string; derived: CorpusManifest }> {
  const choice = { status: options.status ?? 'all', ...(options.only ? { only: [...options.only].sort() } : {}) };
  const key = JSON.stringify({ from: oldTree.sourceVersion, to: newTree.sourceVersion, ...choice });
  const dir = cachePath('release', options.kernel, `${oldTree.sourceVersion}..${newTree.sourceVersion}`, `derived-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`);
  const manifestPath = join(dir, 'derived.json');
  if (isStepDone(dir, key)) {
    options.log(`Reusing the fixes derived before (${dir}).`);
    return { manifestPath, derived: readManifest(manifestPath) };
  }
  resetDir(dir);
  // Each file's derivation is kept as it is made, whatever the choice: a killed run, or a run
  // with another --only or --status, takes the files derived before as they are.
  const store = derivationStore(cachePath('release', options.kernel, `${oldTree.sourceVersion}..${newTree.sourceVersion}`, 'derived-files'), oldTree, newTree);
  const derived = await deriveCorpus({ oldTree, newTree, log: options.log, ...choice, jobs: options.jobs, command: 'tsplice release', store });
  const manifest = writeCorpus(derived, manifestPath, join(dir, 'patches'), join(dir, 'patches'));
  markStepDone(dir, key);
  return { manifestPath, derived: manifest };
}

/** Step 4: the updates in apply order, signed, with the manifest; the folder is made anew. */
function shipUpdates(options: ReleaseOptions, kernel: LabKernel, derived: CorpusManifest, results: readonly FixResult[]): ReleaseResult {
  const updatesDir = join(options.outDir, 'updates', options.kernel);
  rmSync(updatesDir, { recursive: true, force: true });
  mkdirSync(updatesDir, { recursive: true });
  const shipped: ManifestUpdate[] = [];
  const core = results.flatMap((r) => (r.outcome === 'created' && r.update.coreModule !== undefined ? [r.update.coreModule] : []))[0];
  for (const result of results) {
    if (result.outcome !== 'created') continue;
    const update = shippedForm(result.update, shipped.length === 0 ? core : undefined);
    const file = `${String(shipped.length + 1).padStart(4, '0')}-${update.id}.tsplice`;
    const bytes = writeUpdate(join(updatesDir, file), update, options.signingKey);
    shipped.push({
      id: update.id,
      file,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      sources: result.group,
      modules: [...new Set(update.functions.map((f) => f.module ?? 'vmlinux'))].sort(),
      ...(result.adapted ? { newLines: result.adapted.newLines } : {}),
    });
  }
  const idOf = new Map(results.flatMap((r) => (r.outcome === 'created' ? [[r.file, r.update.id] as const] : [])));
  const files = [
    ...results.map((r) => fileOutcome(r, r.outcome === 'carried' ? idOf.get(r.carriedBy) : undefined)),
    ...(derived.deriveErrors ?? []).map((f) => ({ path: f.file, outcome: 'needs-reboot' as const, reason: `not derived: ${f.deriveError}` })),
  ].sort((a, b) => a.path.localeCompare(b.path));
  const manifest: ReleaseManifest = {
    format: 1,
    kernel: options.kernel,
    from: kernel.version,
    to: options.to,
    package: { name: updatesPackageName(options.kernel), version: '' },
    updates: shipped,
    files,
  };
  return { manifest, updatesDir };
}

/** The package that carries a kernel's updates: one per kernel release, newer versions replacing older. */
export function updatesPackageName(release: string): string {
  return `tsplice-updates-${release}`;
}

/** Steps 1 to 4. The package and repository are made from the result (updates-package.ts). */
export async function makeRelease(options: ReleaseOptions): Promise<ReleaseResult> {
  const { log } = options;
  const { kernel, oldTree, newTree } = await kernelAndTrees(options);
  log(`Deriving the fixes of ${kernel.version} -> ${options.to} for ${options.kernel}...`);
  const { manifestPath, derived } = await deriveFixes(options, oldTree, newTree);
  const files: FixFile[] = derived.files.map((e) => ({ file: e.file, unit: e.unit, patch: patchPath(manifestPath, derived, e) }));
  log(`Making ${files.length} changed files into updates (${options.jobs} at once)...`);
  const work = cachePath('release', options.kernel, `${oldTree.sourceVersion}..${newTree.sourceVersion}`, 'work');
  mkdirSync(work, { recursive: true });
  const started = Date.now();
  const results = await makeFixUpdates({
    tree: oldTree,
    headersDir: kernel.headersDir,
    distributionVersion: kernel.version,
    files,
    jobs: options.jobs,
    workDir: work,
    ...(options.adaptedDir ? { adaptedDir: options.adaptedDir } : {}),
    create: cachedCreate({ dir: cachePath('release', options.kernel, 'updates'), tree: oldTree, headersDir: kernel.headersDir, distributionVersion: kernel.version }),
    onResult: (r, i) => log(`[${i + 1}/${files.length}] ${r.file}: ${describeResult(r)}  [${((Date.now() - started) / 1000).toFixed(0)} s]`),
  });
  return shipUpdates(options, kernel, derived, results);
}

/** One line of progress: what became of a file. */
function describeResult(r: FixResult): string {
  if (r.outcome === 'carried') return `in the update of ${r.carriedBy}`;
  if (r.outcome === 'created') return `update ${r.update.id}${r.adapted ? ` (adapted, ${r.adapted.newLines} new lines)` : ''}${r.group.length > 1 ? ` with ${r.group.slice(1).join(', ')}` : ''}`;
  return `no update: ${r.notLive ?? r.classes[0]}`;
}
