/**
 * The Debian package that carries a release to a fleet: `tsplice-updates-<release>` installs the
 * manifest and the update files into /usr/lib/tsplice/updates/<release>/, where `tsplice upgrade`
 * and tsplice.service find them. One package name per kernel, so a newer release of it replaces
 * the older through apt's ordinary upgrade, and its maintainer scripts keep the running kernel in
 * step with what is installed:
 *   - postinst (configure): `tsplice upgrade` applies what is new and undoes what the newer
 *     package dropped. A failure does not fail the install: the files are in place, the boot
 *     service tries again, and `tsplice status` says what is missing.
 *   - prerm (remove): `tsplice withdraw` undoes the package's updates, newest first. If it cannot
 *     (an update is busy), the removal fails: the package stays, as the kernel still holds it.
 *   - prerm (upgrade): nothing; the new package's postinst settles the difference.
 * Neither touches a kernel when the package is installed for another kernel than the running one,
 * or inside a chroot (an image being built), where the running kernel is the host's.
 */
import { join } from 'node:path';
import { writeDebPackage, type DebPackage } from '../debian/deb-package.js';
import { INSTALLED_UPDATES_DIR, MANIFEST_FILE } from '../update/installed-manifest.js';
import type { ReleaseManifest } from './release-manifest.js';

/** Runs `action` only on the running kernel `release`, outside a chroot. */
function onRunningKernel(release: string, action: string): string {
  // ischroot: 0 in a chroot, 1 not, 2 when it cannot tell (then leave the kernel alone too).
  return `if [ "$(uname -r)" = "${release}" ] && { ischroot; [ $? -eq 1 ]; }; then\n${action}\nfi`;
}

export function maintainerScripts(release: string, pkg: string): Required<Pick<NonNullable<DebPackage['scripts']>, 'postinst' | 'prerm'>> {
  const postinst = `#!/bin/sh
# ${pkg}: apply the installed updates to the running kernel (tsplice upgrade).
set -e
if [ "$1" = configure ]; then
${onRunningKernel(release, `  tsplice upgrade || echo "${pkg}: not every update applied now; tsplice status says which, and tsplice.service tries again at boot" >&2`)}
fi
exit 0
`;
  const prerm = `#!/bin/sh
# ${pkg}: undo this package's updates in the running kernel before its files go (tsplice withdraw).
set -e
case "$1" in
  remove|deconfigure)
${onRunningKernel(release, '    tsplice withdraw')}
    ;;
esac
exit 0
`;
  return { postinst, prerm };
}

/** Writes the updates package of a release into `outDir`; returns the .deb's path. */
export async function writeUpdatesPackage(manifest: ReleaseManifest, updatesDir: string, outDir: string): Promise<string> {
  const installed = join(INSTALLED_UPDATES_DIR, manifest.kernel);
  const live = manifest.files.filter((f) => f.outcome === 'live').length;
  const pkg: DebPackage = {
    name: manifest.package.name,
    version: manifest.package.version,
    architecture: 'all',
    maintainer: 'tsplice maintainers <tsplice@localhost>',
    section: 'kernel',
    priority: 'optional',
    depends: ['tsplice'],
    description: [
      `rebootless updates for Linux ${manifest.kernel}: the fixes of Debian ${manifest.to}`,
      `Live updates for the kernel ${manifest.kernel} (Debian ${manifest.from}) that bring the fixes`,
      `of Debian's ${manifest.to} to the running kernel without a reboot: ${manifest.updates.length} updates`,
      `fixing ${live} of the ${manifest.files.length} changed source files live. tsplice applies them`,
      'when the package is installed and again at every boot (tsplice.service); `tsplice status`',
      'lists the changes that need a reboot, with why.',
    ].join('\n'),
    files: [
      { path: join(installed, MANIFEST_FILE), from: join(updatesDir, MANIFEST_FILE), mode: 0o644 },
      ...manifest.updates.map((u) => ({ path: join(installed, u.file), from: join(updatesDir, u.file), mode: 0o644 })),
    ],
    scripts: maintainerScripts(manifest.kernel, manifest.package.name),
  };
  return writeDebPackage(pkg, outDir);
}
