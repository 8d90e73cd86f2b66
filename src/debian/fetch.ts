/**
 * `tsplice lab fetch`: download a lab kernel's packages and unpack them into the cache.
 * Idempotent: a package already downloaded and verified, or a kernel already unpacked, costs
 * nothing the second time. A cached package whose checksum no longer matches the archive's is
 * said to be corrupt and downloaded again, so a damaged cache repairs itself.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../host/errors.js';
import type { Log } from '../host/log.js';
import { type AptPackage, ensureHostPackages, requireApt } from './apt.js';
import { cachePath, cacheRoot, ensureDir, isStepDone, markStepDone, resetDir } from '../host/cache.js';
import { run } from '../host/exec.js';
import { type KernelPackages, resolveKernel } from './packages.js';

/** Host packages a kernel's tree and modules are built with, and depmod; the lab adds its own. */
export const BUILD_PACKAGES = [
  'kmod',
  'make',
  'gcc-12',
  'gcc',
  'libc6-dev',
  'binutils',
  'bc',
  'bison',
  'flex',
  'libelf-dev',
  'libssl-dev',
  'dwarves',
  'rsync',
  'xz-utils',
  'util-linux',
  'patch',
];

/** Where one lab kernel lives once fetched. */
export interface LabKernel {
  release: string;
  version: string;
  /** dpkg -x of image, headers, common headers and kbuild. */
  root: string;
  vmlinuz: string;
  /** The headers folder modules are built against (`make -C headersDir M=...`). */
  headersDir: string;
  modulesDir: string;
  /** The kernel build's `.config` and `.kernelvariables`, from the headers. */
  config: string;
  kernelVariables: string;
  /** The linux-source package of the image's version. */
  source: AptPackage;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(0)} MB`;
  return `${(bytes / 1e3).toFixed(0)} kB`;
}

/** Refuses in one sentence when the cache's file system lacks the room a step needs. */
export function requireFreeSpace(bytes: number, what: string): void {
  const root = ensureDir(cacheRoot());
  const stats = statfsSync(root);
  const free = stats.bavail * stats.bsize;
  if (free < bytes) {
    throw new UserError(`Not enough free space in ${root} to ${what}: ${formatBytes(free)} free, ${formatBytes(bytes)} needed.`, { kind: 'no-space', object: root });
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The path of a verified copy of `pkg` in the cache, downloading it when missing or corrupt.
 * Verification is by the archive's SHA256; a stamp beside the file (size and mtime) spares
 * re-hashing 139 MB on every warm call.
 */
export async function cachedPackage(pkg: AptPackage, log: Log): Promise<string> {
  const dir = ensureDir(cachePath('debs'));
  const path = join(dir, pkg.fileName);
  const stamp = `${path}.verified`;
  if (existsSync(path)) {
    const st = statSync(path);
    const expectedStamp = `${pkg.sha256} ${st.size} ${st.mtimeMs}`;
    if (existsSync(stamp) && readFileSync(stamp, 'utf8') === expectedStamp) return path;
    if (st.size === pkg.size && (await sha256File(path)) === pkg.sha256) {
      writeFileSync(stamp, expectedStamp);
      return path;
    }
    log(`The cached ${pkg.fileName} is corrupt (its SHA256 does not match the archive's); downloading it again.`);
    rmSync(path, { force: true });
    rmSync(stamp, { force: true });
  }
  requireFreeSpace(pkg.size + 64e6, `download ${pkg.fileName}`);
  const started = Date.now();
  log(`Downloading ${pkg.name} ${pkg.version} (${formatBytes(pkg.size)})...`);
  await run(['apt-get', 'download', '-q', `${pkg.name}=${pkg.version}`], {
    cwd: dir,
    purpose: `downloading ${pkg.name} ${pkg.version}`,
  });
  if (!existsSync(path)) throw new UserError(`apt-get download did not produce ${path}.`, { kind: 'command-failed', object: path });
  const digest = await sha256File(path);
  if (digest !== pkg.sha256) {
    rmSync(path, { force: true });
    throw new UserError(`The download of ${pkg.fileName} is corrupt: its SHA256 does not match the archive's.`, { kind: 'corrupt-download', object: pkg.fileName });
  }
  const st = statSync(path);
  writeFileSync(stamp, `${pkg.sha256} ${st.size} ${st.mtimeMs}`);
  const seconds = (Date.now() - started) / 1000;
  log(`  ${pkg.fileName}: ${formatBytes(pkg.size)} in ${seconds.toFixed(1)} s`);
  return path;
}

export function labKernelPaths(packages: KernelPackages): LabKernel {
  const root = cachePath('kernels', packages.release, 'root');
  const headersDir = join(root, 'usr/src', `linux-headers-${packages.release}`);
  return {
    release: packages.release,
    version: packages.version,
    root,
    vmlinuz: join(root, 'boot', `vmlinuz-${packages.release}`),
    headersDir,
    modulesDir: join(root, 'lib/modules', packages.release),
    config: join(headersDir, '.config'),
    kernelVariables: join(headersDir, '.kernelvariables'),
    source: packages.source,
  };
}

/**
 * The unpacked packages carry absolute paths meant for an installed system: the headers'
 * Makefile includes `/usr/src/linux-headers-…-common/Makefile`, and `lib/modules/REL/build`
 * and `source` link to `/usr/src/…`. Point them into the cache so modules build against the
 * unpacked headers without touching the host's /usr/src.
 */
function relocateUnpackedKernel(kernel: LabKernel, packages: KernelPackages): void {
  const makefile = join(kernel.headersDir, 'Makefile');
  const text = readFileSync(makefile, 'utf8');
  writeFileSync(makefile, text.replace(/include \/usr\/src\//g, `include ${kernel.root}/usr/src/`));
  const common = `linux-headers-${packages.release.replace(/-amd64$/, '')}-common`;
  for (const [link, target] of [
    ['build', kernel.headersDir],
    ['source', join(kernel.root, 'usr/src', common)],
  ] as const) {
    const path = join(kernel.modulesDir, link);
    rmSync(path, { force: true });
    symlinkSync(target, path);
  }
}

/**
 * A kernel that an earlier fetch unpacked, without asking apt anything: what booting and
 * building use, so that a warm `lab run` costs no archive look-ups. `lab fetch` itself always
 * re-checks the archive and the cached packages.
 */
export function fetchedKernel(release: string): LabKernel | undefined {
  const packages = fetchedKernelPackages(release);
  return packages && labKernelPaths(packages);
}

/** The packages an earlier fetch resolved for a release (the image's .deb among them), from the cache. */
export function fetchedKernelPackages(release: string): KernelPackages | undefined {
  const record = cachePath('kernels', release, 'packages.json');
  if (!existsSync(cachePath('kernels', release, '.done')) || !existsSync(record)) return undefined;
  return JSON.parse(readFileSync(record, 'utf8')) as KernelPackages;
}

/** The fetched kernel, fetching it first when the cache lacks it. */
export async function labKernel(release: string, log: Log): Promise<LabKernel> {
  return fetchedKernel(release) ?? fetchKernel(release, log);
}

/** Fetches and unpacks one lab kernel; returns where its parts are. */
export async function fetchKernel(release: string, log: Log): Promise<LabKernel> {
  requireApt();
  await ensureHostPackages(BUILD_PACKAGES, log);
  const packages = await resolveKernel(release, log);
  const kernel = labKernelPaths(packages);
  const parts = [packages.image, packages.headers, packages.headersCommon, packages.kbuild];
  const debs: string[] = [];
  for (const pkg of [...parts, packages.source]) debs.push(await cachedPackage(pkg, log));
  const kernelDir = cachePath('kernels', release);
  const key = parts.map((p) => `${p.name}=${p.version}:${p.sha256}`).join('\n');
  if (!isStepDone(kernelDir, key)) {
    requireFreeSpace(600e6, `unpack ${release}`);
    log(`Unpacking ${release} (image, headers, kbuild)...`);
    resetDir(kernelDir);
    for (const deb of debs.slice(0, parts.length)) {
      await run(['dpkg-deb', '-x', deb, kernel.root], { purpose: `unpacking ${deb}` });
    }
    relocateUnpackedKernel(kernel, packages);
    await run(['depmod', '-b', kernel.root, release], { purpose: `indexing the modules of ${release}` });
    markStepDone(kernelDir, key);
  }
  writeFileSync(join(kernelDir, 'packages.json'), `${JSON.stringify(packages, null, 2)}\n`);
  return kernel;
}
