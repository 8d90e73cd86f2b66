/**
 * Which update modules tsplice is loading. A run killed between `insmod` and the kernel's
 * record of the update (stage) leaves a module that no update names; to find it again without
 * guessing from module names, apply marks each module it loads here before `insmod` and
 * removes the mark once the kernel names the update (or the module is unloaded again). A mark
 * whose module is loaded and named by no update is a leftover; one whose module is gone is
 * stale. /run is a tmpfs: the marks go with a reboot, as the modules do.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LOADING_DIR = '/run/tsplice/loading';

/** Marks `module` as being loaded by this process. */
export function markLoading(module: string, dir = LOADING_DIR): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, module), `${process.pid}\n`);
}

/** The kernel names the update now, or the module is gone again. */
export function unmarkLoading(module: string, dir = LOADING_DIR): void {
  rmSync(join(dir, module), { force: true });
}

/** The modules marked as being loaded. */
export function markedLoading(dir = LOADING_DIR): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}
