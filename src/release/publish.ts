/**
 * A release made public: its manifest written beside the updates with the package's version,
 * the Debian package that installs them (updates-package.ts), and, when asked, that package
 * added to an apt repository with a signed Release.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Log } from '../host/log.js';
import { MANIFEST_FILE } from '../update/installed-manifest.js';
import type { ReleaseResult } from './release.js';
import { writeUpdatesPackage } from './updates-package.js';

export interface PublishOptions {
  outDir: string;
  /** The package revision: version `<to>+tsplice<revision>`. */
  revision: number;
  /** An apt repository folder to add the package to. */
  repoDir?: string;
  /** The GnuPG home whose key signs the repository's Release. */
  gpgHome?: string;
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
  return { manifestPath: manifest, deb };
}
