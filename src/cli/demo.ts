/**
 * `tsplice demo`: the README's main command. Today it sets up the lab and boots the stock
 * kernel to show what runs; creating, applying and undoing a real fix join it as the
 * pipeline grows.
 */
import type { Command } from 'commander';
import { fetchKernel } from '../lab/fetch.js';
import { chooseRelease } from '../lab/kernel-choice.js';
import { prepareTree } from '../lab/prepare.js';
import { runInGuest } from '../lab/qemu.js';
import { progress } from './output.js';

const SHOW_RUNNING_KERNEL = [
  'echo "== running kernel: $(cat /proc/version)"',
  'echo "== uptime: $(cut -d" " -f1 /proc/uptime) s"',
  'echo "== tsplice in the guest:"; tsplice peek do_sys_poll --length 32',
].join('; ');

export function addDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('set up the lab, boot the stock Debian kernel under QEMU and show the running kernel')
    .option('--kernel <release>', 'kernel release (default: oldest complete 6.1)')
    .action(async (opts: { kernel?: string }) => {
      const release = await chooseRelease(opts.kernel, progress);
      progress(`[1/3] Fetching ${release} from Debian's archive`);
      const kernel = await fetchKernel(release, progress);
      progress(`[2/3] Preparing the ${kernel.version} source tree`);
      await prepareTree(release, progress);
      progress(`[3/3] Booting ${release} under QEMU`);
      const result = await runInGuest({
        kernel,
        command: SHOW_RUNNING_KERNEL,
        cwd: '/',
        shares: [],
        timeoutSeconds: 300,
      });
      process.exitCode = result.status;
    });
}
