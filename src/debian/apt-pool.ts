/**
 * The pool of an apt repository: every .deb it has ever published, under
 * `pool/<component>/<prefix>/<source>/`, the layout of Debian's archive. Files are named from
 * their control fields, not from the path they came from, because apt-ftparchive tells an
 * architecture's packages by the `_<arch>.deb` ending of the name.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../host/errors.js';
import { run } from '../host/exec.js';
import { debFileName } from './deb-package.js';

/** The control fields of a .deb that place it in the pool. */
export interface DebIdentity {
  package: string;
  version: string;
  architecture: string;
  /** The source package's name (the package's own when the deb names none). */
  source: string;
}

/** Reads the fields with `dpkg-deb --field`, which prints them as `Name: value` lines. */
export async function readDebIdentity(deb: string): Promise<DebIdentity> {
  if (!existsSync(deb)) throw new UserError(`${deb} does not exist.`, { kind: 'missing-file', object: deb });
  const { stdout } = await run(['dpkg-deb', '--field', deb, 'Package', 'Version', 'Architecture', 'Source'], {
    purpose: `reading the control fields of ${deb}`,
  });
  const fields = new Map<string, string>();
  for (const m of stdout.matchAll(/^([A-Za-z-]+):\s*(.*)$/gm)) if (m[1] && m[2] !== undefined) fields.set(m[1], m[2].trim());
  const [pkg, version, architecture] = [fields.get('Package'), fields.get('Version'), fields.get('Architecture')];
  if (!pkg || !version || !architecture) {
    throw new UserError(`${deb} has no Package, Version or Architecture field: it is not a Debian binary package.`, { kind: 'bad-argument', object: deb });
  }
  // A Source field may carry the source's version when it differs: "linux-signed (6.1.1)".
  const source = fields.get('Source')?.split(' ')[0] || pkg;
  return { package: pkg, version, architecture, source };
}

/** The pool folder of a source package: `lib` sources are spread over `libX/`, as in Debian. */
export function poolFolder(component: string, source: string): string {
  const prefix = source.startsWith('lib') && source.length > 3 ? source.slice(0, 4) : source.slice(0, 1);
  return join('pool', component, prefix, source);
}

/**
 * Copies a .deb into the pool of the repository at `dir` and returns its path there, relative
 * to `dir`. The same file twice is fine (each release passes every package it publishes); a
 * different file under a published name is refused, because apt clients that saw the first
 * would reject the second's checksum: a changed package needs a new version.
 */
export async function addToPool(dir: string, component: string, deb: string): Promise<string> {
  const identity = await readDebIdentity(deb);
  const relative = join(poolFolder(component, identity.source), debFileName({ name: identity.package, version: identity.version, architecture: identity.architecture }));
  const target = join(dir, relative);
  if (existsSync(target)) {
    if (readFileSync(target).equals(readFileSync(deb))) return relative;
    throw new UserError(`${target} is already published with different contents than ${deb}: a changed package needs a new version.`, {
      kind: 'file-exists',
      object: target,
    });
  }
  mkdirSync(join(dir, poolFolder(component, identity.source)), { recursive: true });
  copyFileSync(deb, target);
  return relative;
}
