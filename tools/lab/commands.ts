/** `tsplice lab …`: the kernel lab (Debian packages, prepared trees, the QEMU guest). */
import type { Command } from 'commander';
import { availableReleases } from '../../src/debian/packages.js';
import { fetchKernel, labKernel } from '../../src/debian/fetch.js';
import { chooseRelease } from '../../src/debian/kernel-choice.js';
import { prepareTree } from '../../src/kbuild/tree.js';
import { ensureLabPackages, runInGuest } from './qemu.js';
import { shellQuote } from './guest-image.js';
import { printJson, progress } from '../../src/cli/output.js';

interface KernelOption {
  kernel?: string;
  json?: boolean;
}

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
    .argument('<command...>', 'the command and its arguments (after --)')
    .action(async (command: string[], opts: KernelOption & { share?: string; timeout: string; memory: string }) => {
      const kernel = await labKernel(await chooseRelease(opts.kernel, progress), progress);
      const cwd = process.cwd();
      const result = await runInGuest({
        kernel,
        command: command.map(shellQuote).join(' '),
        cwd,
        shares: [opts.share ?? cwd],
        timeoutSeconds: Number(opts.timeout),
        memoryMiB: Number(opts.memory),
      });
      process.exitCode = result.status;
    });

  lab
    .command('shell')
    .description('boot the kernel under QEMU with an interactive root shell (Ctrl-A X also quits)')
    .option('--kernel <release>', 'kernel release (default: oldest complete 6.1)')
    .option('--share <dir>', 'host folder visible in the guest at the same path (default: the current folder)')
    .option('--memory <MiB>', 'guest memory', '2048')
    .action(async (opts: KernelOption & { share?: string; memory: string }) => {
      const kernel = await labKernel(await chooseRelease(opts.kernel, progress), progress);
      const cwd = process.cwd();
      await runInGuest({ kernel, cwd, shares: [opts.share ?? cwd], timeoutSeconds: 24 * 3600, memoryMiB: Number(opts.memory) });
    });
}
