/**
 * The lab's only way to the outside: Debian's archive through the ordinary apt clients.
 * Host tools are installed with apt-get when missing (and the user is told which); kernel
 * packages are fetched with `apt-get download`, never installed on the host.
 */
import { statSync } from 'node:fs';
import { UserError } from '../host/errors.js';
import { haveProgram, probe, run } from '../host/exec.js';
import type { Log } from '../host/log.js';


/** A Debian package at one version, as `apt-cache show` describes it. */
export interface AptPackage {
  name: string;
  version: string;
  /** The file name apt-get download gives it. */
  fileName: string;
  size: number;
  sha256: string;
  depends: string;
}

export function requireApt(): void {
  if (!haveProgram('apt-get') || !haveProgram('apt-cache') || !haveProgram('dpkg')) {
    throw new UserError('tsplice lab needs a Debian host with apt-get, apt-cache and dpkg on PATH; they were not found.', { kind: 'missing-program' });
  }
}

let listsRefreshed = false;

/** Runs `apt-get update` at most once per process: needed on a fresh machine before any look-up. */
export async function refreshPackageLists(log: Log): Promise<void> {
  if (listsRefreshed) return;
  log('Refreshing the package lists (apt-get update)...');
  await run(['apt-get', 'update', '-q'], { purpose: 'refreshing the package lists' });
  listsRefreshed = true;
}

/** Which of these Debian packages are not installed on the host. */
export function missingHostPackages(names: readonly string[]): string[] {
  return names.filter((name) => {
    // Without dpkg-query every package counts as missing; installing them asks for apt.
    const r = haveProgram('dpkg-query') ? probe(['dpkg-query', '-W', '-f=${Status}', name]) : undefined;
    return r?.status !== 0 || !r.stdout.includes('install ok installed');
  });
}

/** Installs the host packages that are missing, saying which. */
export async function ensureHostPackages(names: readonly string[], log: Log): Promise<void> {
  const missing = missingHostPackages(names);
  if (missing.length === 0) return;
  requireApt();
  await refreshPackageLists(log);
  log(`Installing host packages with apt-get: ${missing.join(' ')}`);
  await run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...missing], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    purpose: `installing ${missing.join(' ')}`,
  });
}

/** Versions of a package the archive offers, newest first (`apt-cache madison`). */
export async function availableVersions(name: string): Promise<string[]> {
  return (await availableVersionsOf([name])).get(name) ?? [];
}

/** Versions of several packages in one `apt-cache madison` call (each call costs ~0.1 s). */
export async function availableVersionsOf(names: readonly string[]): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  if (names.length === 0) return found;
  const { stdout } = await run(['apt-cache', 'madison', ...names], { purpose: 'looking up package versions' });
  for (const line of stdout.split('\n')) {
    const [pkg, version] = line.split('|').map((f) => f.trim());
    if (!pkg || !version) continue;
    const list = found.get(pkg) ?? [];
    if (!list.includes(version)) list.push(version);
    found.set(pkg, list);
  }
  return found;
}

/** Names of packages matching a regular expression (`apt-cache search --names-only`). */
export async function searchPackageNames(regex: string): Promise<string[]> {
  const { stdout } = await run(['apt-cache', 'search', '--names-only', regex], { purpose: 'searching packages' });
  return stdout
    .split('\n')
    .map((line) => line.split(' - ')[0]?.trim() ?? '')
    .filter((name) => name.length > 0);
}

/** The record of one package version, or undefined when the archive does not have it. */
export async function showPackage(name: string, version: string): Promise<AptPackage | undefined> {
  const r = probe(['apt-cache', 'show', `${name}=${version}`]);
  if (r.status !== 0 || !r.stdout.trim()) return undefined;
  const fields = new Map<string, string>();
  for (const line of r.stdout.split('\n\n')[0]?.split('\n') ?? []) {
    const m = /^([A-Za-z0-9-]+):\s?(.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) fields.set(m[1], m[2]);
  }
  const filename = fields.get('Filename');
  const sha256 = fields.get('SHA256');
  const size = Number(fields.get('Size'));
  if (!filename || !sha256 || !Number.isFinite(size)) return undefined;
  return {
    name,
    version,
    fileName: filename.split('/').pop() ?? filename,
    size,
    sha256,
    depends: fields.get('Depends') ?? '',
  };
}

/** Debian version order (`dpkg --compare-versions`): negative, zero or positive like a comparator. */
export function compareDebianVersions(a: string, b: string): number {
  if (a === b) return 0;
  const lt = probe(['dpkg', '--compare-versions', a, 'lt', b]).status === 0;
  return lt ? -1 : 1;
}

/**
 * A stamp that changes whenever the package lists do (apt-get update rewrites the folder
 * /var/lib/apt/lists): answers derived from the lists can be cached under it.
 */
export function packageListsStamp(): string {
  try {
    return String(statSync('/var/lib/apt/lists').mtimeMs);
  } catch {
    return 'none';
  }
}
