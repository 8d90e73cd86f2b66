/**
 * The Debian guest's disk: a Debian 12 root file system made by mmdebstrap from Debian's
 * archive, with the lab kernel's own stock image package installed (so /lib/modules and the
 * initrd are Debian's, made by initramfs-tools), imaged as a raw ext4 file and cached.
 *
 *   $TSPLICE_CACHE/debian-root/<key>/
 *     root.raw      the disk (ext4, no partition table: root=/dev/vda); never booted itself,
 *                   each run boots a qcow2 overlay on it (debian-guest.ts)
 *     vmlinuz       the kernel and the initrd, copied out of /boot before imaging, for -kernel
 *     initrd.img    and -initrd (the guest has no boot loader)
 *     .done         the key, written last
 *
 * The key hashes everything that goes in: the suite, the package list, the files and commands
 * the lab adds, the kernel package's file and checksum. The image is built in `<key>.partial`
 * and renamed at the end, so a build killed half-way is never taken for a disk.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from '../../src/host/errors.js';
import type { Log } from '../../src/host/log.js';
import { run } from '../../src/host/exec.js';
import { cachePath, isStepDone, markStepDone, resetDir } from '../../src/host/cache.js';
import { ensureHostPackages } from '../../src/debian/apt.js';
import { cachedPackage, fetchedKernelPackages, labKernel, requireFreeSpace } from '../../src/debian/fetch.js';
import { CUSTOMIZE_COMMANDS, ROOT_FILES } from './debian-root-files.js';

/** Host tools the image is built with: mmdebstrap, mkfs.ext4 (-d), qemu-img for the overlays. */
const IMAGE_TOOLS = ['mmdebstrap', 'e2fsprogs', 'qemu-utils'];

const SUITE = 'bookworm';
const MIRROR = 'http://deb.debian.org/debian';

/**
 * What the guest is: systemd as init, udev and kmod to load the stock modules, apt and dpkg as
 * on any Debian system, Debian's own Node (18 in bookworm) for scripts, initramfs-tools for the
 * kernel package's initrd. The `apt` variant adds these to the Essential set and apt.
 */
const PACKAGES = ['systemd', 'systemd-sysv', 'udev', 'kmod', 'apt', 'dpkg', 'nodejs', 'initramfs-tools'];

/** The disk's size; a sparse file, so only what the root holds (~1 GB) takes room on the host. */
const IMAGE_SIZE = '4G';

/** Where one built image lives. */
export interface DebianRoot {
  release: string;
  dir: string;
  /** The raw ext4 disk; read-only for runs (they boot an overlay). */
  image: string;
  vmlinuz: string;
  initrd: string;
}

function rootPaths(release: string, dir: string): DebianRoot {
  return { release, dir, image: join(dir, 'root.raw'), vmlinuz: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') };
}

/** The cached Debian root for a lab kernel, built first when the cache lacks it (minutes). */
export async function debianRoot(release: string, log: Log): Promise<DebianRoot> {
  await ensureHostPackages(IMAGE_TOOLS, log);
  await labKernel(release, log);
  const packages = fetchedKernelPackages(release);
  if (!packages) throw new UserError(`The lab kernel ${release} is not fetched; run 'tsplice lab fetch --kernel ${release}'.`, { kind: 'missing-file', object: release });
  const deb = await cachedPackage(packages.image, log);
  const key = createHash('sha256')
    .update(JSON.stringify({ SUITE, MIRROR, PACKAGES, IMAGE_SIZE, ROOT_FILES, CUSTOMIZE_COMMANDS, deb: packages.image.fileName, sha256: packages.image.sha256 }))
    .digest('hex')
    .slice(0, 16);
  const dir = cachePath('debian-root', key);
  if (isStepDone(dir, key)) return rootPaths(release, dir);
  await buildRoot(release, deb, key, dir, log);
  return rootPaths(release, dir);
}

async function buildRoot(release: string, deb: string, key: string, dir: string, log: Log): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new UserError('Building the Debian guest\'s disk needs root (mmdebstrap --mode=root keeps the files\' owners for the image).', { kind: 'not-root' });
  }
  requireFreeSpace(3e9, 'build the Debian guest\'s disk');
  const partial = `${dir}.partial`;
  resetDir(partial);
  const overlay = join(partial, 'overlay');
  for (const file of ROOT_FILES) {
    const path = join(overlay, file.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, file.text, { mode: file.mode });
  }
  const root = join(partial, 'root');
  const started = Date.now();
  log(`Building the Debian ${SUITE} guest disk for ${release} with mmdebstrap (a few minutes)...`);
  await run(
    [
      'mmdebstrap',
      '--mode=root',
      '--variant=apt',
      `--include=${[...PACKAGES, deb].join(',')}`,
      // Before the packages: the initramfs hook must be there when the kernel's postinst makes the initrd.
      `--essential-hook=sync-in ${overlay} /`,
      ...CUSTOMIZE_COMMANDS.map((command) => `--customize-hook=chroot "$1" sh -c ${shellWord(command)}`),
      SUITE,
      root,
      MIRROR,
    ],
    { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, purpose: `building the Debian ${SUITE} root` },
  );
  for (const [from, to] of [
    [join(root, 'boot', `vmlinuz-${release}`), join(partial, 'vmlinuz')],
    [join(root, 'boot', `initrd.img-${release}`), join(partial, 'initrd.img')],
  ] as const) {
    if (!existsSync(from)) throw new UserError(`The Debian root has no ${from}; the kernel package did not install.`, { kind: 'missing-file', object: from });
    copyFileSync(from, to);
  }
  await run(['mkfs.ext4', '-q', '-F', '-L', 'tsplice-root', '-d', root, join(partial, 'root.raw'), IMAGE_SIZE], { purpose: 'imaging the Debian root' });
  rmSync(root, { recursive: true, force: true });
  rmSync(overlay, { recursive: true, force: true });
  markStepDone(partial, key);
  rmSync(dir, { recursive: true, force: true });
  renameSync(partial, dir);
  const used = statSync(join(dir, 'root.raw')).blocks * 512;
  log(`  built in ${((Date.now() - started) / 1000).toFixed(0)} s: ${join(dir, 'root.raw')} (${IMAGE_SIZE}, ${(used / 1e6).toFixed(0)} MB used)`);
}

/** One word for mmdebstrap's hook shell. */
function shellWord(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
