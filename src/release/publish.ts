/**
 * A release made public: its manifest written beside the updates with the package's version,
 * the Debian package that installs them (updates-package.ts), and, when asked, that package
 * added to an apt repository with a signed Release (src/debian/apt-repository.ts), where a fleet
 * finds it with the sources line `deb [signed-by=KEYRING] URI bookworm main`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Log } from '../host/log.js';
import { MANIFEST_FILE } from '../update/installed-manifest.js';
import type { ReleaseResult } from './release.js';
import { writeUpdatesPackage } from './updates-package.js';
import { writeAptRepository } from '../debian/apt-repository.js';
import { secretKeyIn, stopGpgAgent } from '../debian/openpgp.js';

/** The suite of a release's repository: Debian 12's codename, whose machines it serves. */
export const REPOSITORY_SUITE = 'bookworm';

export interface PublishOptions {
  outDir: string;
  /** The package revision: version `<to>+tsplice<revision>`. */
  revision: number;
  /** An apt repository folder to add the package to. */
  repoDir?: string;
  /** The GnuPG home whose one key signs the repository's Release. */
  gpgHome?: string;
  /** Other packages to publish beside the release's (tsplice's own). */
  alsoPublish?: readonly string[];
  log: Log;
}

export interface Published {
  /** The manifest.json written beside the updates. */
  manifestPath: string;
  deb: string;
  repository?: string;
}

/** The package version of a release: the source version it brings, and the maintainer's revision. */
export function packageVersion(to: string, revision: number): string {
  return `${to}+tsplice${revision}`;
}

export async function publishRelease(release: ReleaseResult, options: PublishOptions): Promise<Published> {
  release.manifest.package.version = packageVersion(release.manifest.to, options.revision);
  const manifest = join(release.updatesDir, MANIFEST_FILE);
  writeFileSync(manifest, `${JSON.stringify(release.manifest, null, 2)}\n`);
  options.log(`Wrote ${manifest}.`);
  const deb = await writeUpdatesPackage(release.manifest, release.updatesDir, options.outDir);
  options.log(`Wrote ${deb}.`);
  if (options.repoDir === undefined) return { manifestPath: manifest, deb };
  const signing = options.gpgHome !== undefined ? { homeDir: options.gpgHome, fingerprint: await secretKeyIn(options.gpgHome) } : undefined;
  try {
    await writeAptRepository({
      dir: options.repoDir,
      debs: [deb, ...(options.alsoPublish ?? [])],
      suite: REPOSITORY_SUITE,
      component: 'main',
      origin: 'tsplice',
      label: 'tsplice',
      description: 'rebootless kernel updates made by tsplice release',
      architectures: ['all', 'amd64'],
      ...(signing ? { signing } : {}),
      log: options.log,
    });
  } finally {
    if (signing) await stopGpgAgent(signing.homeDir);
  }
  options.log(`Published ${release.manifest.package.name} ${release.manifest.package.version} in ${options.repoDir} (${signing ? `signed by ${signing.fingerprint}` : 'unsigned'}).`);
  return { manifestPath: manifest, deb, repository: options.repoDir };
}
