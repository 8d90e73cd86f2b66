/**
 * Booting a lab kernel with the initramfs guest (guest-image.ts) under QEMU and running one
 * command in it.
 *
 * The guest's console is the only channel: the command's output streams back line by line,
 * and /init prints `TSPLICE-EXIT-<nonce>:<status>` when the command ends, then powers off.
 * QEMU itself (setpriv, signals, the timeout) is qemu-process.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, realpathSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../src/host/errors.js';
import type { LabKernel } from '../../src/debian/fetch.js';
import { MODULES_TAG, baseArchive, runArchive } from './guest-image.js';
import { GuestFailure, ensureLabPackages, machineArguments, runQemu, shareArguments } from './qemu-process.js';

export { GuestFailure, ensureLabPackages };

export interface GuestRunOptions {
  kernel: LabKernel;
  /** Shell command line; undefined gives an interactive shell on this terminal. */
  command?: string;
  /** Working folder in the guest; it (or a share above it) must be shared. */
  cwd: string;
  /** Host folders visible in the guest at the same absolute paths. */
  shares: string[];
  /** Seconds before the guest is declared hung. */
  timeoutSeconds: number;
  memoryMiB?: number;
  cpus?: number;
  /** Extra kernel command line words. */
  append?: string;
  env?: Record<string, string>;
  /** Receives each line the guest prints (without the exit marker); default: stdout. */
  onLine?: (line: string) => void;
}

export interface GuestRunResult {
  /** The command's exit status in the guest. */
  status: number;
  /** Milliseconds from starting QEMU to the end of the command. */
  elapsedMs: number;
  /** Every console line, for callers that parse output. */
  lines: string[];
}

function qemuArguments(options: GuestRunOptions, initrd: string, interactive: boolean): string[] {
  const args = [
    ...machineArguments({ memoryMiB: options.memoryMiB, cpus: options.cpus, interactive }),
    // /init powers off when the command ends; a reset is a crash, not a reboot to wait for.
    '-no-reboot',
    '-kernel',
    options.kernel.vmlinuz,
    '-initrd',
    initrd,
    '-append',
    `console=ttyS0 panic=-1 quiet ${options.append ?? ''}`.trim(),
  ];
  options.shares.forEach((dir, i) => args.push(...shareArguments(dir, `share${i}`)));
  // The stock image's modules, read-only, at /lib/modules/RELEASE in the guest (guest-image.ts
  // mounts it): modprobe loads any of them with its dependencies, as on an installed system.
  args.push(...shareArguments(options.kernel.modulesDir, MODULES_TAG, true));
  return args;
}

/** Boots the guest, runs the command, powers off; never leaves QEMU running. */
export async function runInGuest(options: GuestRunOptions): Promise<GuestRunResult> {
  await ensureLabPackages();
  const interactive = options.command === undefined;
  const nonce = randomBytes(6).toString('hex');
  const shares = options.shares.map((s) => realpathSync(s));
  for (const dir of shares) if (!existsSync(dir)) throw new UserError(`The folder to share, ${dir}, does not exist.`, { kind: 'missing-file', object: dir });
  const scratch = mkdtempSync(join(tmpdir(), 'tsplice-guest-'));
  const initrd = join(scratch, 'initrd.cpio');
  writeFileSync(initrd, readFileSync(baseArchive(options.kernel)));
  writeFileSync(
    initrd,
    runArchive({ command: options.command, cwd: options.cwd, shares, nonce, env: options.env }),
    { flag: 'a' },
  );
  const lines: string[] = [];
  let status: number | undefined;
  const marker = `TSPLICE-EXIT-${nonce}:`;
  const onLine = options.onLine ?? ((line: string) => process.stdout.write(`${line}\n`));
  const started = Date.now();
  try {
    const exit = await runQemu({
      argv: qemuArguments({ ...options, shares }, initrd, interactive),
      interactive,
      timeoutSeconds: options.timeoutSeconds,
      onSignal: () => rmSync(scratch, { recursive: true, force: true }),
      onLine: (line) => {
        const at = line.indexOf(marker);
        if (at >= 0) {
          status = Number(line.slice(at + marker.length));
          if (at > 0) onLine(line.slice(0, at));
          return;
        }
        // After the exit marker only the kernel's power-off messages follow.
        if (status !== undefined) return;
        lines.push(line);
        onLine(line);
      },
    });
    if (interactive) return { status: exit.code ?? 1, elapsedMs: Date.now() - started, lines };
    if (exit.timedOut) {
      throw new GuestFailure(`The guest (${options.kernel.release}) did not finish within ${options.timeoutSeconds} s and was killed.`, exit.lastLines);
    }
    if (status === undefined) {
      throw new GuestFailure(
        exit.crashLine !== undefined
          ? `The guest kernel (${options.kernel.release}) crashed before the command finished: ${exit.crashLine}`
          : `The guest (${options.kernel.release}) stopped before the command finished (QEMU exit status ${exit.code}).`,
        exit.lastLines,
      );
    }
    return { status, elapsedMs: Date.now() - started, lines };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
