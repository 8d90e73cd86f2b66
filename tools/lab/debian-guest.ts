/**
 * Booting the Debian guest (debian-root.ts) under QEMU: a real Debian 12 with systemd, booted
 * from a throwaway qcow2 overlay on the cached disk, across as many real reboots as the caller
 * asks for.
 *
 * QEMU runs without -no-reboot, so `systemctl reboot`, a sysrq-b reset or a panic (panic=-1)
 * resets the machine and the same disk boots again in the same QEMU process; a power-off ends
 * QEMU. At each boot the image's tsplice-lab.service runs the script the host put in the
 * control share for that boot number (counted on the disk), framed on the console by
 *   TSPLICE-BOOT-<nonce>:<n>:start   and   TSPLICE-BOOT-<nonce>:<n>:end:<status>
 * then reboots when a script for the next boot exists and powers off otherwise. A boot whose
 * end marker never comes (a crash, a reset, its own reboot) ends when the next boot starts or
 * QEMU exits; its status is undefined and its `end` says which.
 *
 * The host's folders are mounted at their own paths by a generator in the image, from
 * `tsplice.share=TAG:PATH` words on the kernel command line (debian-root-files.ts).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../src/host/errors.js';
import { run } from '../../src/host/exec.js';
import type { DebianRoot } from './debian-root.js';
import { BOOT_MARKER } from './debian-root-files.js';
import { shellQuote } from './guest-image.js';
import { GuestFailure, crashReport, ensureLabPackages, machineArguments, runQemu, shareArguments } from './qemu-process.js';

/** The 9p tag of the control share (scripts and env for the run). */
const CONTROL_TAG = 'control';

/** Console lines the kernel prints (even with `quiet`) as the machine is about to reset. */
const RESET_LINE = /reboot: Restarting system|sysrq: Resetting|Kernel panic - not syncing/;

export interface DebianGuestOptions {
  root: DebianRoot;
  /** Host folders mounted in the guest at the same absolute paths (9p, read-write). */
  shares: string[];
  memoryMiB?: number;
  cpus?: number;
  /** Extra kernel command line words. */
  append?: string;
}

export interface DebianRunOptions extends DebianGuestOptions {
  /** One shell script per boot: boot n runs boots[n - 1] as root, in `cwd`, after multi-user.target. */
  boots: string[];
  /** The scripts' working folder in the guest (default: the first share, else /). */
  cwd?: string;
  /** Seconds for the whole run, all boots, before the guest is declared hung. */
  timeoutSeconds: number;
  /** Exported to every script. */
  env?: Record<string, string>;
  /** Receives each line a script prints, with its boot number; default: stdout. */
  onLine?: (line: string, boot: number) => void;
  /** Receives every console line (the kernel's and systemd's too, markers included), to debug a boot. */
  onConsole?: (line: string) => void;
}

/** How a boot ended. */
export type BootEnd =
  /** Its script ended and the end marker came: `status` is the script's. */
  | 'exited'
  /** The machine reset before the script ended (sysrq-b, a panic, the script's own reboot). */
  | 'reset'
  /** QEMU exited before the script ended (the script powered off). */
  | 'stopped';

export interface BootResult {
  boot: number;
  /** The script's exit status; undefined unless `end` is 'exited'. */
  status: number | undefined;
  end: BootEnd;
  /** What the script printed (stdout and stderr). */
  lines: string[];
  /** The first console line of this boot that said the kernel crashed. */
  crashLine: string | undefined;
  /** Milliseconds from the machine's (re)start to the script starting: the boot time. */
  bootMs: number;
  /** Milliseconds from the machine's (re)start to the boot's end. */
  elapsedMs: number;
}

/** The `key=value` lines a boot's script printed: how lab scripts report what they found. */
export function bootValues(boot: BootResult | undefined): Map<string, string> {
  const found = new Map<string, string>();
  for (const line of boot?.lines ?? []) {
    const m = /^([a-z0-9_-]+)=(.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) found.set(m[1], m[2]);
  }
  return found;
}

export interface DebianRunResult {
  boots: BootResult[];
  /** Milliseconds from starting QEMU to its exit. */
  elapsedMs: number;
}

/** The kernel's words for the root disk and the shares (one `tsplice.share` word per folder). */
function kernelCommandLine(shares: string[], control: boolean, append: string | undefined): string {
  const words = ['root=/dev/vda', 'rw', 'console=ttyS0', 'panic=-1', 'quiet'];
  shares.forEach((dir, i) => words.push(`tsplice.share=share${i}:${dir}`));
  if (control) words.push(`tsplice.control=${CONTROL_TAG}`);
  if (append) words.push(append);
  return words.join(' ');
}

/** The real paths of the folders to share; refused when missing or unfit for the kernel command line. */
function sharedFolders(shares: string[]): string[] {
  return shares.map((share) => {
    if (!existsSync(share)) throw new UserError(`The folder to share, ${share}, does not exist.`, { kind: 'missing-file', object: share });
    const dir = realpathSync(share);
    if (!/^\/[\w@%+=:,./-]*$/.test(dir)) {
      throw new UserError(`The folder ${dir} cannot be shared with the Debian guest: its path must be plain (letters, digits, / . _ - and the like) to travel on the kernel command line.`, { kind: 'bad-argument', object: dir });
    }
    return dir;
  });
}

/**
 * The QEMU argv for one session: the overlay as a virtio disk, the kernel and initrd of the
 * image, the shares. `cache=unsafe` drops the host's flushes: the overlay is thrown away, and a
 * guest reset keeps what QEMU holds, so a script's writes still survive a sysrq-b.
 */
function qemuArguments(options: DebianGuestOptions, shares: string[], overlay: string, control: string | undefined, interactive: boolean): string[] {
  const args = [
    ...machineArguments({ memoryMiB: options.memoryMiB, cpus: options.cpus, interactive }),
    '-kernel',
    options.root.vmlinuz,
    '-initrd',
    options.root.initrd,
    '-append',
    kernelCommandLine(shares, control !== undefined, options.append),
    '-drive',
    `file=${overlay},if=virtio,format=qcow2,cache=unsafe`,
  ];
  shares.forEach((dir, i) => args.push(...shareArguments(dir, `share${i}`)));
  if (control !== undefined) args.push(...shareArguments(control, CONTROL_TAG, true));
  return args;
}

/** A scratch folder with a qcow2 overlay on the cached disk: the run writes there, never to the cache. */
async function scratchDisk(root: DebianRoot): Promise<{ scratch: string; overlay: string }> {
  const scratch = mkdtempSync(join(tmpdir(), 'tsplice-debian-'));
  const overlay = join(scratch, 'disk.qcow2');
  await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', root.image, '-F', 'raw', overlay], { purpose: 'making the guest\'s throwaway disk' });
  return { scratch, overlay };
}

/** The control share's files: a script per boot and the run's environment. */
function writeControl(control: string, options: DebianRunOptions, cwd: string, nonce: string): void {
  options.boots.forEach((script, i) => writeFileSync(join(control, `boot-${i + 1}.sh`), `${script}\n`));
  const env = { ...options.env, TSPLICE_NONCE: nonce, TSPLICE_CWD: cwd, TSPLICE_IN_GUEST: '1' };
  writeFileSync(join(control, 'env'), Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}\n`).join(''));
}

/**
 * Boots the Debian guest once per script, each boot running its script; returns what each
 * boot did. Throws GuestFailure when the run times out or QEMU ends before every script started.
 */
export async function runDebianGuest(options: DebianRunOptions): Promise<DebianRunResult> {
  if (options.boots.length === 0) throw new UserError('A Debian guest run needs at least one boot script.', { kind: 'bad-argument' });
  await ensureLabPackages();
  const shares = sharedFolders(options.shares);
  const cwd = options.cwd ?? shares[0] ?? '/';
  const nonce = randomBytes(6).toString('hex');
  const { scratch, overlay } = await scratchDisk(options.root);
  const control = join(scratch, 'control');
  mkdirSync(control);
  writeControl(control, options, cwd, nonce);

  const onLine = options.onLine ?? ((line: string) => process.stdout.write(`${line}\n`));
  const marker = `${BOOT_MARKER}${nonce}:`;
  const boots: BootResult[] = [];
  const started = Date.now();
  /** When the machine last (re)started: QEMU's start, then each reset the console announced. */
  let machineStart = started;
  let resetSeen: number | undefined;
  let crashLine: string | undefined;
  let current: BootResult | undefined;
  const close = (end: BootEnd, at: number): void => {
    if (!current) return;
    current.end = end;
    current.elapsedMs = at - machineStart;
    current = undefined;
  };
  const onConsole = (line: string): void => {
    options.onConsole?.(line);
    const at = line.indexOf(marker);
    if (at < 0) {
      crashLine ??= crashReport(line);
      if (RESET_LINE.test(line)) resetSeen ??= Date.now();
      if (current) {
        current.lines.push(line);
        onLine(line, current.boot);
      }
      return;
    }
    const [boot, event, status] = line.slice(at + marker.length).split(':');
    const now = Date.now();
    if (event === 'start') {
      // A boot still open here was cut short by a reset: the machine restarted when the console said so.
      if (current) {
        close('reset', resetSeen ?? now);
        machineStart = resetSeen ?? now;
      } else if (resetSeen !== undefined) {
        machineStart = resetSeen;
      }
      current = { boot: Number(boot), status: undefined, end: 'stopped', lines: [], crashLine, bootMs: now - machineStart, elapsedMs: 0 };
      boots.push(current);
      resetSeen = undefined;
      crashLine = undefined;
    } else if (event === 'end' && current) {
      current.status = Number(status);
      close('exited', now);
      // Until the console announces the reset, the next boot counts from this end.
      machineStart = now;
    }
  };
  try {
    const exit = await runQemu({
      argv: qemuArguments(options, shares, overlay, control, false),
      interactive: false,
      timeoutSeconds: options.timeoutSeconds,
      onSignal: () => rmSync(scratch, { recursive: true, force: true }),
      onLine: onConsole,
    });
    if (current) current.crashLine ??= crashLine;
    close('stopped', Date.now());
    const at = boots.length === 0 ? 'before its first script started' : `after boot ${boots.length} of ${options.boots.length}`;
    if (exit.timedOut) throw new GuestFailure(`The Debian guest did not finish within ${options.timeoutSeconds} s (${at}) and was killed.`, exit.lastLines);
    if (boots.length < options.boots.length) {
      throw new GuestFailure(
        crashLine !== undefined
          ? `The Debian guest's kernel crashed ${at}: ${crashLine}`
          : `The Debian guest stopped ${at} (QEMU exit status ${exit.code}).`,
        exit.lastLines,
      );
    }
    return { boots, elapsedMs: Date.now() - started };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Runs one shell command line in one boot of the Debian guest, then powers off. */
export async function runOnceInDebianGuest(options: Omit<DebianRunOptions, 'boots'> & { command: string }): Promise<BootResult> {
  const { boots } = await runDebianGuest({ ...options, boots: [options.command] });
  const boot = boots[0];
  if (boot?.status === undefined) {
    throw new GuestFailure(`The Debian guest's boot ended (${boot?.end ?? 'stopped'}) before the command finished.`, boot?.lines.slice(-30) ?? []);
  }
  return boot;
}

/** An interactive root shell on the Debian guest's console (autologin), until it powers off. */
export async function debianShell(options: DebianGuestOptions): Promise<number> {
  await ensureLabPackages();
  const shares = sharedFolders(options.shares);
  const { scratch, overlay } = await scratchDisk(options.root);
  process.stderr.write('tsplice lab shell --debian: root on the Debian guest; `poweroff` or Ctrl-A X ends it.\n');
  try {
    const exit = await runQemu({
      argv: qemuArguments(options, shares, overlay, undefined, true),
      interactive: true,
      timeoutSeconds: 24 * 3600,
      onSignal: () => rmSync(scratch, { recursive: true, force: true }),
      onLine: () => {},
    });
    return exit.code ?? 1;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
