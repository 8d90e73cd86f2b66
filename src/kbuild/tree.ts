/**
 * `tsplice lab prepare`: a kernel source tree configured and prepared exactly like Debian's
 * build of a lab kernel, so that compiling one object gives code byte-identical to the
 * running kernel's outside relocation sites (same gcc-12, same .config with its build salt).
 *
 * The tree is pristine after this step: tsplice never edits it. `create` patches copies of the
 * touched files elsewhere and points kbuild at them.
 */
import { copyFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../host/errors.js';
import type { Log } from '../host/log.js';
import { cachePath, ensureDir, isStepDone, markStepDone, resetDir } from '../host/cache.js';
import { run } from '../host/exec.js';
import { cachedPackage, fetchKernel, requireFreeSpace, type LabKernel } from '../debian/fetch.js';
import { resolveSource } from '../debian/packages.js';

/**
 * Flags every object of a prepared tree is compiled with. They must never change between
 * builds in one tree: a different KCFLAGS makes kbuild rebuild asm-offsets and everything after.
 */
export const SECTION_KCFLAGS = '-ffunction-sections -fdata-sections';

/** A prepared tree, and the make variables that reproduce Debian's build in it. */
export interface PreparedTree {
  release: string;
  sourceVersion: string;
  /** The top of the kernel source (holds .config, Makefile). */
  dir: string;
  /** `make` arguments: ARCH, KERNELRELEASE, CC and KCFLAGS as Debian's build had them. */
  makeVariables: string[];
}

interface TreeRecord {
  release: string;
  sourceVersion: string;
  makeVariables: string[];
}

/**
 * The variables from the headers' `.kernelvariables` that matter to the compiler: its
 * architecture, the release string and the compiler (gcc-12). The file is make syntax with
 * conditionals for cross builds; only these assignments are taken.
 */
export function makeVariablesFrom(kernelVariables: string, release: string): string[] {
  const arch = /override ARCH\s*=\s*(\S+)/.exec(kernelVariables)?.[1] ?? 'x86';
  const compiler = /\b(gcc-\d+)\b/.exec(kernelVariables)?.[1] ?? 'gcc';
  const kernelRelease = /override KERNELRELEASE\s*=\s*(\S+)/.exec(kernelVariables)?.[1] ?? release;
  return [`ARCH=${arch}`, `KERNELRELEASE=${kernelRelease}`, `CC=${compiler}`, `HOSTCC=${compiler}`, `KCFLAGS=${SECTION_KCFLAGS}`];
}

export function treeDir(release: string, sourceVersion: string): string {
  return cachePath('trees', release, sourceVersion);
}

/** A tree that `prepareTree` finished, or undefined. */
export function preparedTree(release: string, sourceVersion: string): PreparedTree | undefined {
  const base = treeDir(release, sourceVersion);
  const recordPath = join(base, 'tree.json');
  if (!existsSync(join(base, '.done')) || !existsSync(recordPath)) return undefined;
  const record = JSON.parse(readFileSync(recordPath, 'utf8')) as TreeRecord;
  return { ...record, dir: join(base, 'linux') };
}

/**
 * A tree prepared by someone else (`create --source DIR`): any kernel tree with a .config
 * and `make prepare` done. Its make variables come from its .kernelvariables if it has one.
 */
export function preparedTreeAt(dir: string): PreparedTree {
  if (!existsSync(join(dir, '.config')) || !existsSync(join(dir, 'include/generated/autoconf.h'))) {
    throw new UserError(`${dir} is not a prepared kernel tree: it needs a .config and 'make prepare' done.`, { kind: 'not-prepared', object: dir });
  }
  // A lab tree records what it was prepared for beside it.
  const record = join(dir, '..', 'tree.json');
  if (existsSync(record)) return { ...(JSON.parse(readFileSync(record, 'utf8')) as TreeRecord), dir };
  const release = existsSync(join(dir, 'include/config/kernel.release'))
    ? readFileSync(join(dir, 'include/config/kernel.release'), 'utf8').trim()
    : 'unknown';
  const variablesFile = join(dir, '.kernelvariables');
  const makeVariables = existsSync(variablesFile)
    ? makeVariablesFrom(readFileSync(variablesFile, 'utf8'), release)
    : [`KCFLAGS=${SECTION_KCFLAGS}`];
  return { release, sourceVersion: 'local', dir, makeVariables };
}

/** Prints a line every few seconds while make runs, so a long prepare is seen to progress. */
function makeProgress(log: Log, what: string): (line: string) => void {
  let steps = 0;
  let last = Date.now();
  return (line) => {
    if (/^\s+[A-Z]+\s/.test(line)) steps++;
    if (Date.now() - last > 5000) {
      last = Date.now();
      log(`  ${what}: ${steps} build steps so far (${line.trim().slice(0, 60)})`);
    }
  };
}

/**
 * Prepares a tree of `sourceVersion` (default: the image's own version) for the lab kernel
 * `release`: unpack, the headers' .config, olddefconfig, prepare. Idempotent.
 */
export async function prepareTree(
  release: string,
  log: Log,
  sourceVersion?: string,
): Promise<PreparedTree> {
  const done = sourceVersion === undefined ? undefined : preparedTree(release, sourceVersion);
  if (done) return done;
  const kernel = await fetchKernel(release, log);
  const version = sourceVersion ?? kernel.version;
  const sourcePackage = version === kernel.version ? kernel.source : await resolveSource(release, version, log);
  const deb = await cachedPackage(sourcePackage, log);
  const base = treeDir(release, version);
  const makeVariables = makeVariablesFrom(readFileSync(kernel.kernelVariables, 'utf8'), release);
  const key = JSON.stringify({ source: sourcePackage.sha256, config: readFileSync(kernel.config, 'utf8').length, makeVariables });
  if (isStepDone(base, key)) return { release, sourceVersion: version, dir: join(base, 'linux'), makeVariables };

  requireFreeSpace(2.5e9, `prepare the ${version} source tree`);
  resetDir(base);
  await unpackSource(deb, base, version, log);
  const dir = join(base, 'linux');
  await configureTree(dir, kernel, makeVariables, version, log);
  const record: TreeRecord = { release, sourceVersion: version, makeVariables };
  writeFileSync(join(base, 'tree.json'), `${JSON.stringify(record, null, 2)}\n`);
  markStepDone(base, key);
  return { ...record, dir };
}

async function unpackSource(deb: string, base: string, version: string, log: Log): Promise<void> {
  const started = Date.now();
  log(`Unpacking linux-source ${version}...`);
  const debDir = ensureDir(join(base, 'deb'));
  await run(['dpkg-deb', '-x', deb, debDir], { purpose: `unpacking ${deb}` });
  const tarball = join(debDir, 'usr/src', /linux-source-[\d.]+_/.exec(deb)?.[0].replace(/_$/, '.tar.xz') ?? '');
  if (!existsSync(tarball)) throw new UserError(`${deb} holds no source tarball at ${tarball}.`, { kind: 'not-prepared', object: deb });
  await run(['tar', '-xf', tarball, '-C', base], { purpose: `unpacking ${tarball}` });
  rmSync(debDir, { recursive: true, force: true });
  const top = join(base, tarball.split('/').pop()?.replace(/\.tar\.xz$/, '') ?? '');
  renameSync(top, join(base, 'linux'));
  log(`  unpacked in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

async function configureTree(
  dir: string,
  kernel: LabKernel,
  makeVariables: string[],
  version: string,
  log: Log,
): Promise<void> {
  copyFileSync(kernel.config, join(dir, '.config'));
  copyFileSync(kernel.kernelVariables, join(dir, '.kernelvariables'));
  const jobs = `-j${cpus().length}`;
  let started = Date.now();
  log(`Configuring ${version} with the ${kernel.release} .config (olddefconfig)...`);
  await run(['make', ...makeVariables, 'olddefconfig'], { cwd: dir, purpose: `olddefconfig in ${dir}` });
  log(`  configured in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  started = Date.now();
  log(`Preparing ${version} (make prepare)...`);
  await run(['make', ...makeVariables, jobs, 'prepare'], {
    cwd: dir,
    purpose: `make prepare in ${dir}`,
    onLine: makeProgress(log, 'prepare'),
  });
  log(`  prepared in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
