/** `tsplice lab …`: the kernel lab (Debian packages, prepared trees, the QEMU guest). */
import type { Command } from 'commander';
import { availableReleases } from '../../src/debian/packages.js';
import { fetchKernel, labKernel } from '../../src/debian/fetch.js';
import { chooseRelease } from '../../src/debian/kernel-choice.js';
import { prepareTree } from '../../src/kbuild/tree.js';
import { ensureLabPackages, runInGuest } from './qemu.js';
import { shellQuote } from './guest-image.js';
import { printJson, progress } from '../../src/cli/output.js';
import { debianRoot } from './debian-root.js';
import { debianShell, runOnceInDebianGuest } from './debian-guest.js';

interface KernelOption {
  kernel?: string;
  json?: boolean;
}

interface GuestOption {
  share?: string;
  memory: string;
  /** Boot the Debian 12 disk guest (systemd, apt, Debian's node) instead of the initramfs. */
  debian?: boolean;
}

const DEBIAN_OPTION = 'boot a Debian 12 system (systemd, apt, Debian\'s node 18) from a cached disk instead of the initramfs guest';

export function addLabCommands(program: Command): void {
  const lab = program.command('lab').description('the kernel lab: Debian kernels, prepared source trees, a QEMU guest');

  lab
    .command('releases')
    .description('list the lab kernels the Debian archive holds whole (image, headers, source)')
    .option('--json', 'print JSON')
    .action(async (opts: KernelOption) => {
      const releases = await availableReleases(progress);
      if (opts.json) printJson(releases);
      else for (const r of releases) process.stdout.write(`${r.release}\t${r.version}\n`);
    });

  lab
    .command('fetch')
    .description('download and unpack a Debian kernel image, its headers, kbuild and source')
    .option('--kernel <release>', 'kernel release, e.g. 6.1.0-47-amd64 (default: oldest complete 6.1)')
    .option('--json', 'print where things are as JSON')
    .action(async (opts: KernelOption) => {
      await ensureLabPackages();
      const kernel = await fetchKernel(await chooseRelease(opts.kernel, progress), progress);
      if (opts.json) printJson(kernel);
      else process.stdout.write(`${kernel.release} (${kernel.version}) is in ${kernel.root}\n`);
    });

  lab
    .command('prepare')
    .description('unpack the source and configure and prepare it like Debian built the kernel')
    .option('--kernel <release>', 'kernel release (default: oldest complete 6.1)')
    .option('--source-version <version>', 'Debian version of linux-source to prepare (default: the image\'s own)')
    .option('--json', 'print the tree as JSON')
    .action(async (opts: KernelOption & { sourceVersion?: string }) => {
      await ensureLabPackages();
      const tree = await prepareTree(await chooseRelease(opts.kernel, progress), progress, opts.sourceVersion);
      if (opts.json) printJson(tree);
      else process.stdout.write(`${tree.sourceVersion} prepared for ${tree.release} in ${tree.dir}\n`);
    });

  lab
    .command('run')
    .description('boot the kernel under QEMU and run a command in it as root, in the current folder')
    .option('--kernel <release>', 'kernel release (default: oldest complete 6.1)')
    .option('--share <dir>', 'host folder visible in the guest at the same path (default: the current folder)')
    .option('--timeout <seconds>', 'kill the guest if the command has not finished by then', '900')
    .option('--memory <MiB>', 'guest memory', '2048')
    .option('--debian', DEBIAN_OPTION)
    .argument('<command...>', 'the command and its arguments (after --)')
    .action(async (command: string[], opts: KernelOption & GuestOption & { timeout: string }) => {
      const release = await chooseRelease(opts.kernel, progress);
      const cwd = process.cwd();
      const shared = { command: command.map(shellQuote).join(' '), cwd, shares: [opts.share ?? cwd], timeoutSeconds: Number(opts.timeout), memoryMiB: Number(opts.memory) };
      if (opts.debian) {
        const boot = await runOnceInDebianGuest({ ...shared, root: await debianRoot(release, progress), onLine: (line) => process.stdout.write(`${line}\n`) });
        process.exitCode = boot.status;
        return;
      }
      const result = await runInGuest({ ...shared, kernel: await labKernel(release, progress) });
      process.exitCode = result.status;
    });

  lab
    .command('shell')
    .description('boot the kernel under QEMU with an interactive root shell (Ctrl-A X also quits)')
    .option('--kernel <release>', 'kernel release (default: oldest complete 6.1)')
    .option('--share <dir>', 'host folder visible in the guest at the same path (default: the current folder)')
    .option('--memory <MiB>', 'guest memory', '2048')
    .option('--debian', DEBIAN_OPTION)
    .action(async (opts: KernelOption & GuestOption) => {
      const release = await chooseRelease(opts.kernel, progress);
      const cwd = process.cwd();
      const shares = [opts.share ?? cwd];
      if (opts.debian) {
        await debianShell({ root: await debianRoot(release, progress), shares, memoryMiB: Number(opts.memory) });
        return;
      }
      await runInGuest({ kernel: await labKernel(release, progress), cwd, shares, timeoutSeconds: 24 * 3600, memoryMiB: Number(opts.memory) });
    });

  lab
    .command('debian-image')
    .description('build (once, minutes) or find the Debian 12 guest disk for a kernel and print where it is')
    .option('--kernel <release>', 'kernel release (default: oldest complete 6.1)')
    .option('--json', 'print the image, kernel and initrd paths as JSON')
    .action(async (opts: KernelOption) => {
      const root = await debianRoot(await chooseRelease(opts.kernel, progress), progress);
      if (opts.json) printJson(root);
      else process.stdout.write(`${root.image}\n`);
    });
}
