/**
 * Where this project's files are at run time: the folder holding package.json, found from this
 * file's compiled position (dist/src/host/project.js), so the tool works from any working folder.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding package.json: three levels above dist/src/host/. */
export function projectRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/**
 * The header patch authors include as <linux/tsplice.h> (hooks, declarations, shadow data),
 * relative to kmod/: the core module implements it and is built with it.
 */
export const AUTHOR_HEADER = 'include/linux/tsplice.h';

/** The folder a post compile searches last for <linux/tsplice.h>. */
export function authorIncludeDir(): string {
  return join(projectRoot(), 'kmod', 'include');
}
