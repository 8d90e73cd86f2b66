/**
 * tsplice's packages (`tsplice`, `tsplice-updates-<release>`) as a signed apt repository, so a
 * fleet takes kernel updates the way it takes any other package. The pool keeps every version
 * ever published; the indexes under `dists/` are made afresh from the whole pool each time, by
 * apt-ftparchive, and signed with gpg, the tools Debian's own repositories are made with.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { UserError } from '../host/errors.js';
import { run } from '../host/exec.js';
import type { Log } from '../host/log.js';
import { ensureHostPackages } from './apt.js';
import { addToPool } from './apt-pool.js';
import { type SigningKey, signFile } from './openpgp.js';

export interface AptRepositoryOptions {
  /** The repository's root: what a sources line's URI points at. */
  dir: string;
  /** .deb files to publish, added to those the pool already holds. */
  debs: readonly string[];
  /** The suite clients name (`bookworm`); the folder `dists/<suite>`. */
  suite: string;
  /** Defaults to the suite. */
  codename?: string;
  /** Defaults to `main`. */
  component?: string;
  origin: string;
  label: string;
  description: string;
  /** `all` with the machines' architectures, e.g. `['all', 'amd64']`. */
  architectures: readonly string[];
  /** Without a key the repository is unsigned, and apt refuses it unless told to trust it. */
  signing?: SigningKey;
  log?: Log;
}

/** What was written, as paths relative to the repository's root. */
export interface AptRepository {
  /** Where each of the given debs is in the pool, in the order given. */
  published: string[];
  release: string;
  /** InRelease and Release.gpg, when signed. */
  signatures: string[];
}

/** A suite, component or architecture becomes a folder name and a word in a sources line. */
const NAME = /^[a-z0-9][a-z0-9.+-]*$/;

function checkNames(o: AptRepositoryOptions, component: string, codename: string): void {
  for (const [what, value] of [['suite', o.suite], ['codename', codename], ['component', component], ...o.architectures.map((a) => ['architecture', a])]) {
    if (!value || !NAME.test(value)) throw new UserError(`The apt repository at ${o.dir} cannot have the ${what} '${value}': use lower-case letters, digits, '.', '+' and '-'.`, { kind: 'bad-argument', object: o.dir });
  }
  if (o.architectures.length === 0) throw new UserError(`The apt repository at ${o.dir} needs at least one architecture.`, { kind: 'bad-argument', object: o.dir });
  for (const [what, value] of [['origin', o.origin], ['label', o.label], ['description', o.description]]) {
    if (value?.includes('\n')) throw new UserError(`The ${what} of the apt repository at ${o.dir} must be one line.`, { kind: 'bad-argument', object: o.dir });
  }
}

/**
 * `Packages` and `Packages.gz` of each architecture. With `--arch`, apt-ftparchive takes the
 * files named `_<arch>.deb` and `_all.deb`, so an architecture's index lists the `all` packages
 * too, as Debian's does: apt on amd64 reads binary-amd64 and, when the Release lists `all`,
 * binary-all, and finds them either way.
 */
async function writePackagesIndexes(dir: string, suiteDir: string, component: string, architectures: readonly string[]): Promise<void> {
  for (const arch of architectures) {
    const folder = join(suiteDir, component, `binary-${arch}`);
    mkdirSync(folder, { recursive: true });
    // Run from the root, so each Filename is the path a client asks for below its URI.
    const { stdout } = await run(['apt-ftparchive', '--arch', arch, 'packages', join('pool', component)], {
      cwd: dir,
      purpose: `indexing ${join(dir, 'pool', component)} for ${arch}`,
    });
    writeFileSync(join(folder, 'Packages'), stdout);
    writeFileSync(join(folder, 'Packages.gz'), gzipSync(stdout, { level: 9 }));
  }
}

/** The Release file: the suite's description and the checksums of its indexes. */
async function writeRelease(suiteDir: string, o: AptRepositoryOptions, component: string, codename: string): Promise<void> {
  const fields: [string, string][] = [
    ['Origin', o.origin],
    ['Label', o.label],
    ['Suite', o.suite],
    ['Codename', codename],
    ['Architectures', o.architectures.join(' ')],
    ['Components', component],
    ['Description', o.description],
  ];
  const { stdout } = await run(['apt-ftparchive', ...fields.flatMap(([name, value]) => ['-o', `APT::FTPArchive::Release::${name}=${value}`]), 'release', '.'], {
    cwd: suiteDir,
    purpose: `writing the Release file of ${suiteDir}`,
  });
  writeFileSync(join(suiteDir, 'Release'), stdout);
}

/**
 * Adds `debs` to the repository at `dir` and writes its indexes for one suite and component,
 * signed when a key is given. The new `dists/<suite>` is made beside the old one and swapped
 * in, so a client updating meanwhile sees the old indexes or the new, not half of each.
 */
export async function writeAptRepository(o: AptRepositoryOptions): Promise<AptRepository> {
  const component = o.component ?? 'main';
  const codename = o.codename ?? o.suite;
  checkNames(o, component, codename);
  await ensureHostPackages(['apt-utils', ...(o.signing ? ['gnupg'] : [])], o.log ?? ((m) => process.stderr.write(`${m}\n`)));

  mkdirSync(o.dir, { recursive: true });
  const published: string[] = [];
  for (const deb of o.debs) published.push(await addToPool(o.dir, component, deb));

  const finalDir = join(o.dir, 'dists', o.suite);
  const newDir = `${finalDir}.new`;
  rmSync(newDir, { recursive: true, force: true });
  await writePackagesIndexes(o.dir, newDir, component, o.architectures);
  await writeRelease(newDir, o, component, codename);
  const signatures: string[] = [];
  if (o.signing) {
    await signFile(o.signing, join(newDir, 'Release'), join(newDir, 'InRelease'), 'clear');
    await signFile(o.signing, join(newDir, 'Release'), join(newDir, 'Release.gpg'), 'detached');
    signatures.push(join('dists', o.suite, 'InRelease'), join('dists', o.suite, 'Release.gpg'));
  }
  const oldDir = `${finalDir}.old`;
  rmSync(oldDir, { recursive: true, force: true });
  if (existsSync(finalDir)) renameSync(finalDir, oldDir);
  renameSync(newDir, finalDir);
  rmSync(oldDir, { recursive: true, force: true });
  return { published, release: join('dists', o.suite, 'Release'), signatures };
}
