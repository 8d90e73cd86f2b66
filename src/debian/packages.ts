/**
 * Which Debian packages make up one lab kernel. A release like `6.1.0-47-amd64` is a
 * `linux-image-…` package at one Debian version (6.1.170-3); the lab needs the headers of the
 * same version (their `.config` and `.kernelvariables` reproduce Debian's build), the
 * `linux-source-6.1` of the same version (the code the image was built from), and a
 * `linux-kbuild-6.1` that satisfies the headers' Depends — the exact one is often gone from
 * the archive, so the nearest newer one is taken.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { UserError } from '../host/errors.js';
import { cachePath, cacheRoot, ensureDir } from '../host/cache.js';
import type { Log } from '../host/log.js';
import {
  type AptPackage,
  availableVersions,
  availableVersionsOf,
  compareDebianVersions,
  packageListsStamp,
  refreshPackageLists,
  requireApt,
  searchPackageNames,
  showPackage,
} from './apt.js';

export interface KernelPackages {
  release: string;
  /** Debian version of the image, e.g. 6.1.170-3. */
  version: string;
  image: AptPackage;
  headers: AptPackage;
  headersCommon: AptPackage;
  kbuild: AptPackage;
  source: AptPackage;
}

const RELEASE_PATTERN = /^(\d+\.\d+)\.\d+-\d+-amd64$/;

/** `6.1.0-47-amd64` -> `linux-source-6.1`. */
export function sourcePackageName(release: string): string {
  const m = RELEASE_PATTERN.exec(release);
  if (!m) throw new UserError(`'${release}' is not a Debian amd64 kernel release (expected a name like 6.1.0-47-amd64).`, { kind: 'bad-argument' });
  return `linux-source-${m[1]}`;
}

/** A dependency of `depends` on `name`, with its relation and version if any. */
export function findDependency(depends: string, name: string): { relation?: string; version?: string } | undefined {
  for (const alternative of depends.split(/[,|]/)) {
    const m = /^\s*([^\s(]+)\s*(?:\(\s*([<>=]+)\s*([^)\s]+)\s*\))?\s*$/.exec(alternative);
    if (m?.[1] === name) return { relation: m[2], version: m[3] };
  }
  return undefined;
}

/** Lab kernels the archive holds whole (image, headers and source of one version), oldest first. */
export async function availableReleases(log: Log): Promise<{ release: string; version: string }[]> {
  requireApt();
  let names = await searchPackageNames('^linux-image-[0-9.]+-[0-9]+-amd64$');
  if (names.length === 0) {
    await refreshPackageLists(log);
    names = await searchPackageNames('^linux-image-[0-9.]+-[0-9]+-amd64$');
  }
  const releases = names
    .map((n) => n.replace(/^linux-image-/, ''))
    .filter((r) => RELEASE_PATTERN.test(r))
    .sort((a, b) => abiNumber(a) - abiNumber(b) || a.localeCompare(b));
  const versions = await availableVersionsOf([
    ...new Set(releases.flatMap((r) => [`linux-image-${r}`, `linux-headers-${r}`, sourcePackageName(r)])),
  ]);
  const complete: { release: string; version: string }[] = [];
  for (const release of releases) {
    const version = versions.get(`linux-image-${release}`)?.[0];
    if (!version) continue;
    if (!versions.get(sourcePackageName(release))?.includes(version)) continue;
    if (!versions.get(`linux-headers-${release}`)?.includes(version)) continue;
    complete.push({ release, version });
  }
  return complete;
}

function abiNumber(release: string): number {
  return Number(/-(\d+)-amd64$/.exec(release)?.[1] ?? 0);
}

/**
 * The default lab kernel: the oldest 6.1 image whose source and headers the archive still
 * holds. Debian drops old versions; taking the oldest complete one keeps the demo and the
 * tests working when it does, and gives the most stable fixes between it and the newest.
 */
export async function defaultRelease(log: Log): Promise<string> {
  const fromEnv = process.env['TSPLICE_KERNEL'];
  if (fromEnv) return fromEnv;
  // The answer only changes when the package lists do; remembering it spares ~60 look-ups.
  const remembered = cachePath('default-release.json');
  const stamp = packageListsStamp();
  if (existsSync(remembered)) {
    const saved = JSON.parse(readFileSync(remembered, 'utf8')) as { stamp: string; release: string };
    if (saved.stamp === stamp) return saved.release;
  }
  const all = (await availableReleases(log)).filter((r) => r.release.startsWith('6.1.'));
  const oldest = all[0];
  if (!oldest) throw new UserError('The Debian archive holds no complete 6.1 kernel (image, headers and source of one version).', { kind: 'not-in-archive' });
  ensureDir(cacheRoot());
  writeFileSync(remembered, JSON.stringify({ stamp: packageListsStamp(), release: oldest.release }));
  return oldest.release;
}

async function requirePackage(name: string, version: string, why: string): Promise<AptPackage> {
  const pkg = await showPackage(name, version);
  if (!pkg) throw new UserError(`The archive no longer holds ${name} ${version}, ${why}.`, { kind: 'not-in-archive', object: name });
  return pkg;
}

/** Resolves every package of a lab kernel, or says in one sentence why it can't. */
export async function resolveKernel(release: string, log: Log): Promise<KernelPackages> {
  requireApt();
  const sourceName = sourcePackageName(release);
  let versions = await availableVersions(`linux-image-${release}`);
  if (versions.length === 0) {
    await refreshPackageLists(log);
    versions = await availableVersions(`linux-image-${release}`);
  }
  const version = versions[0];
  if (!version) {
    const known = (await availableReleases(log)).map((r) => `${r.release} (${r.version})`);
    throw new UserError(`Kernel release ${release} is not in the Debian archive; available: ${known.join(', ') || 'none'}.`, { kind: 'not-in-archive', object: `linux-image-${release}` });
  }
  const image = await requirePackage(`linux-image-${release}`, version, 'the kernel image');
  const headers = await requirePackage(`linux-headers-${release}`, version, `the headers of ${release}`);
  const commonName = `linux-headers-${release.replace(/-amd64$/, '')}-common`;
  const headersCommon = await requirePackage(commonName, version, `the common headers of ${release}`);
  const source = await requirePackage(sourceName, version, `the source that ${release} was built from`);
  const kbuild = await resolveKbuild(headers, release);
  return { release, version, image, headers, headersCommon, kbuild, source };
}

/** The oldest linux-kbuild that satisfies the headers' Depends (the exact one may be gone). */
async function resolveKbuild(headers: AptPackage, release: string): Promise<AptPackage> {
  const name = `linux-kbuild-${/^(\d+\.\d+)/.exec(release)?.[1] ?? ''}`;
  const dep = findDependency(headers.depends, name);
  const minimum = dep?.version ?? headers.version;
  const candidates = (await availableVersions(name))
    .filter((v) => compareDebianVersions(v, minimum) >= 0)
    .sort(compareDebianVersions);
  const chosen = candidates[0];
  if (!chosen) throw new UserError(`No ${name} >= ${minimum} is in the archive, as the headers of ${release} require.`, { kind: 'not-in-archive', object: name });
  return requirePackage(name, chosen, `the kbuild tools for ${release}`);
}

/** A linux-source package at a given Debian version, for a second (post) source tree. */
export async function resolveSource(release: string, version: string, log: Log): Promise<AptPackage> {
  const name = sourcePackageName(release);
  let pkg = await showPackage(name, version);
  if (!pkg) {
    await refreshPackageLists(log);
    pkg = await showPackage(name, version);
  }
  if (!pkg) {
    const versions = await availableVersions(name);
    throw new UserError(`${name} ${version} is not in the Debian archive; available: ${versions.join(', ') || 'none'}.`, { kind: 'not-in-archive', object: name });
  }
  return pkg;
}
