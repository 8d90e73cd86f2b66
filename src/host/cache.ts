/**
 * The one cache folder that holds everything the lab downloads or prepares: Debian packages,
 * unpacked kernels, prepared source trees, the guest's base initramfs. CI caches this folder
 * as a whole; deleting it only costs time.
 *
 *   $TSPLICE_CACHE (default ~/.cache/tsplice)
 *     debs/                           downloaded .deb files, as apt names them
 *     kernels/<release>/root/         dpkg -x of image, headers, headers-common, kbuild
 *     trees/<release>/<source>/       prepared source trees (olddefconfig + prepare done)
 *     guest/                          the guest's base initramfs
 *     debian-root/<key>/              the Debian guest's disk image, kernel and initrd
 */
import { mkdirSync, rmSync, existsSync, writeFileSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function cacheRoot(): string {
  const fromEnv = process.env['TSPLICE_CACHE'];
  return fromEnv && fromEnv.length > 0 ? fromEnv : join(homedir(), '.cache', 'tsplice');
}

export function cachePath(...parts: string[]): string {
  return join(cacheRoot(), ...parts);
}

export function ensureDir(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}

/**
 * A step whose result lives in `dir` is done when `dir/.done` holds the same key. Writing the
 * mark last means a step killed half-way is redone from scratch next time, never trusted.
 */
export function isStepDone(dir: string, key: string): boolean {
  const mark = join(dir, '.done');
  return existsSync(mark) && readFileSync(mark, 'utf8') === key;
}

export function markStepDone(dir: string, key: string): void {
  const mark = join(dir, '.done');
  writeFileSync(`${mark}.tmp`, key);
  renameSync(`${mark}.tmp`, mark);
}

/** Removes a half-made result so the step starts clean. */
export function resetDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
}
