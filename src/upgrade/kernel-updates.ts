/** The running kernel as `upgrade` sees it: apply's own functions, each under the target's lock. */
import { applyUpdate, undoUpdate, unloadUpdate } from '../apply/apply.js';
import { CoreModule } from '../switch/core-module.js';
import type { CoreStatus, UpdateState } from '../switch/core-status.js';
import type { KernelUpdates } from './upgrade.js';

/** What the kernel holds now (undefined: the core module is not loaded, so nothing). */
export async function kernelStatus(): Promise<CoreStatus | undefined> {
  return CoreModule.isLoaded() ? new CoreModule().status() : undefined;
}

export const runningKernel: KernelUpdates = {
  async held() {
    const status = await kernelStatus();
    return new Map<string, UpdateState>((status?.updates ?? []).map((u) => [u.id, u.state]));
  },
  async apply(file) {
    await applyUpdate(file.update);
  },
  async undo(id) {
    await undoUpdate(id);
  },
  async unload(id) {
    await unloadUpdate(id);
  },
};
