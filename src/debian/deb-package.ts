/**
 * A Debian binary package written from a description: its control fields, its files (bytes, a
 * host file, or a host folder copied whole) and its maintainer scripts, built by
 * `dpkg-deb --root-owner-group --build`. Generic on purpose: it builds tsplice's own package
 * (tools/package) and the per-kernel updates packages of `tsplice release`. dpkg-deb does the
 * archive format (ar, control.tar, data.tar, compression), so this only lays out the tree and
 * writes the control file; the tree is owned by root whoever builds it (--root-owner-group).
 */
import { chmodSync, cpSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { UserError } from '../host/errors.js';
import { run } from '../host/exec.js';

/** One thing the package installs at `path` (absolute, as installed: `/usr/bin/tsplice`). */
export type DebFile =
  | { path: string; bytes: Buffer | string; mode?: number }
  /** A host file, or a host folder copied with everything under it (modes kept unless `mode`). */
  | { path: string; from: string; mode?: number };

export type MaintainerScript = 'preinst' | 'postinst' | 'prerm' | 'postrm';

export interface DebPackage {
  name: string;
  version: string;
  /** `all`, `amd64`, … */
  architecture: string;
  /** `Name <address>`. */
  maintainer: string;
  /** The first line is the synopsis; further lines are the long description. */
  description: string;
  depends?: string[];
  recommends?: string[];
  section?: string;
  priority?: string;
  homepage?: string;
  files: DebFile[];
  /** Files under /etc that dpkg keeps when the administrator changed them. */
  conffiles?: string[];
  /** Shell scripts, whole (with their `#!/bin/sh` line); installed with mode 0755. */
  scripts?: Partial<Record<MaintainerScript, string>>;
}

const NAME = /^[a-z0-9][a-z0-9.+-]+$/;
const VERSION = /^(\d+:)?[0-9][A-Za-z0-9.+~-]*$/;
const ARCHITECTURE = /^[a-z0-9-]+$/;

const refuse = (field: string, reason: string): UserError => new UserError(`The package description's ${field} ${reason}.`, { kind: 'bad-argument', section: field, reason: `${field} ${reason}` });

/** The package's file name as Debian names it: the epoch is not part of it. */
export function debFileName(pkg: Pick<DebPackage, 'name' | 'version' | 'architecture'>): string {
  return `${pkg.name}_${pkg.version.replace(/^\d+:/, '')}_${pkg.architecture}.deb`;
}

/** The description field: the synopsis, then each further line indented, an empty one as ` .`. */
function descriptionField(text: string): string {
  const [synopsis = '', ...rest] = text.trim().split('\n');
  return [synopsis, ...rest.map((l) => (l.trim() === '' ? ' .' : ` ${l}`))].join('\n');
}

/** Kibibytes the files take once installed, for Installed-Size (dpkg's own estimate rounds up per file). */
function installedKib(root: string): number {
  let bytes = 0;
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir)) {
      if (dir === root && entry === 'DEBIAN') continue;
      const path = join(dir, entry);
      const stat = lstatSync(path);
      if (stat.isDirectory()) walk(path);
      else bytes += Math.ceil(stat.size / 1024) * 1024;
    }
  };
  walk(root);
  return Math.max(1, Math.ceil(bytes / 1024));
}

export function controlText(pkg: DebPackage, installedSize: number): string {
  const fields: [string, string | undefined][] = [
    ['Package', pkg.name],
    ['Version', pkg.version],
    ['Architecture', pkg.architecture],
    ['Maintainer', pkg.maintainer],
    ['Installed-Size', String(installedSize)],
    ['Depends', pkg.depends?.length ? pkg.depends.join(', ') : undefined],
    ['Recommends', pkg.recommends?.length ? pkg.recommends.join(', ') : undefined],
    ['Section', pkg.section],
    ['Priority', pkg.priority],
    ['Homepage', pkg.homepage],
    ['Description', descriptionField(pkg.description)],
  ];
  return `${fields.flatMap(([k, v]) => (v === undefined ? [] : [`${k}: ${v}`])).join('\n')}\n`;
}

function checkPackage(pkg: DebPackage): void {
  if (!NAME.test(pkg.name)) throw refuse('name', `${JSON.stringify(pkg.name)} is not a Debian package name (lower case letters, digits, . + -)`);
  if (!VERSION.test(pkg.version)) throw refuse('version', `${JSON.stringify(pkg.version)} is not a Debian version`);
  if (!ARCHITECTURE.test(pkg.architecture)) throw refuse('architecture', `${JSON.stringify(pkg.architecture)} is not an architecture`);
  if (!/^[^\n<>]+ <[^\n<>@]+@[^\n<>]+>$/.test(pkg.maintainer)) throw refuse('maintainer', `${JSON.stringify(pkg.maintainer)} is not 'Name <address>'`);
  if (pkg.description.trim() === '') throw refuse('description', 'is empty');
  for (const f of pkg.files) {
    // Every path stays inside the package's tree: no `..`, and none under DEBIAN/.
    if (!f.path.startsWith('/') || normalize(f.path) !== f.path || f.path === '/' || f.path.startsWith('/DEBIAN')) throw refuse('files', `path ${JSON.stringify(f.path)} is not an absolute path in the installed system`);
  }
  for (const c of pkg.conffiles ?? []) {
    if (!pkg.files.some((f) => f.path === c)) throw refuse('conffiles', `name ${c}, which the package does not install`);
  }
}

/** Lays out the package's tree in `root` (files and DEBIAN/). */
function layOut(pkg: DebPackage, root: string): void {
  for (const f of pkg.files) {
    const target = join(root, f.path);
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    if ('bytes' in f) {
      writeFileSync(target, f.bytes);
      chmodSync(target, f.mode ?? 0o644);
    } else {
      cpSync(f.from, target, { recursive: true, dereference: true });
      if (f.mode !== undefined) chmodSync(target, f.mode);
    }
  }
  const debian = join(root, 'DEBIAN');
  mkdirSync(debian);
  chmodSync(debian, 0o755);
  writeFileSync(join(debian, 'control'), controlText(pkg, installedKib(root)));
  if (pkg.conffiles?.length) writeFileSync(join(debian, 'conffiles'), `${pkg.conffiles.join('\n')}\n`);
  for (const [name, text] of Object.entries(pkg.scripts ?? {})) {
    writeFileSync(join(debian, name), text.endsWith('\n') ? text : `${text}\n`);
    chmodSync(join(debian, name), 0o755);
  }
}

/**
 * Writes the package into `outDir` and returns the .deb's path. A description that is not a
 * package (bad name, version, path) is refused before anything is written.
 */
export async function writeDebPackage(pkg: DebPackage, outDir: string): Promise<string> {
  checkPackage(pkg);
  const root = mkdtempSync(join(tmpdir(), 'tsplice-deb-'));
  // dpkg-deb refuses a tree whose DEBIAN folder is group- or world-writable (a umask of 002).
  chmodSync(root, 0o755);
  try {
    layOut(pkg, root);
    mkdirSync(outDir, { recursive: true });
    const path = join(outDir, debFileName(pkg));
    await run(['dpkg-deb', '--root-owner-group', '--build', root, path], { purpose: `building ${debFileName(pkg)}` });
    return path;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
