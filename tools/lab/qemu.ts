/**
 * Booting a lab kernel under QEMU (software emulation) and running one command in it.
 *
 * The guest's console is the only channel: the command's output streams back line by line,
 * and /init prints `TSPLICE-EXIT-<nonce>:<status>` when the command ends, then powers off.
 * QEMU is started under `setpriv --pdeathsig KILL`, so it dies with this process even when
 * this process is killed outright; SIGINT and SIGTERM kill it too, and a guest that outlives
 * --timeout is killed and reported with its last console lines.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, realpathSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../src/host/errors.js';
import { ensureHostPackages } from '../../src/debian/apt.js';
import type { LabKernel } from '../../src/debian/fetch.js';
import { MODULES_TAG, baseArchive, runArchive } from './guest-image.js';

/** Host packages the lab adds to the build tools: QEMU, the guest's busybox, cpio. */
const LAB_PACKAGES = ['qemu-system-x86', 'busybox-static', 'cpio'];

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

/** Terminal control sequences the guest's shell may print; they are not output. */
// eslint-disable-next-line no-control-regex
const TERMINAL_ESCAPE = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Console lines kept to explain a guest that died or hung. */
const LAST_LINES = 30;

export class GuestFailure extends UserError {
  constructor(
    message: string,
    readonly lastLines: string[],
  ) {
    super(`${message}\nLast console lines:\n${lastLines.map((l) => `  | ${l}`).join('\n')}`, { kind: 'command-failed', object: 'qemu', reason: message });
  }
}

function qemuArguments(options: GuestRunOptions, initrd: string, interactive: boolean): string[] {
  const args = [
    'qemu-system-x86_64',
    '-no-user-config',
    '-nodefaults',
    '-no-reboot',
    '-accel',
    // One host thread for all vCPUs: multi-threaded TCG killed the guest's node now and then
    // (SIGSEGV, SIGILL, wasm traps: 1 to 9 in 80 corpus applies with the host busy), single was
    // clean and faster on the 2-core lab (docs/lab.md).
    process.env.TSPLICE_QEMU_ACCEL ?? 'tcg,thread=single',
    '-m',
    String(options.memoryMiB ?? 2048),
    '-smp',
    String(options.cpus ?? 2),
    '-kernel',
    options.kernel.vmlinuz,
    '-initrd',
    initrd,
    '-append',
    `console=ttyS0 panic=-1 quiet ${options.append ?? ''}`.trim(),
    '-display',
    'none',
  ];
  if (interactive) args.push('-serial', 'mon:stdio');
  else args.push('-serial', 'stdio', '-monitor', 'none');
  options.shares.forEach((dir, i) => {
    args.push('-virtfs', `local,path=${dir},mount_tag=share${i},security_model=none,id=share${i}`);
  });
  // The stock image's modules, read-only, at /lib/modules/RELEASE in the guest (guest-image.ts
  // mounts it): modprobe loads any of them with its dependencies, as on an installed system.
  args.push('-virtfs', `local,path=${options.kernel.modulesDir},mount_tag=${MODULES_TAG},security_model=none,readonly=on,id=${MODULES_TAG}`);
  return args;
}

/** Boots the guest, runs the command, powers off; never leaves QEMU running. */
/** Installs what the lab needs beyond the build tools (debian/fetch.ts has those), saying so. */
export async function ensureLabPackages(): Promise<void> {
  await ensureHostPackages(LAB_PACKAGES, (message) => process.stderr.write(`${message}\n`));
}

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
  const argv = ['setpriv', '--pdeathsig', 'KILL', '--', ...qemuArguments({ ...options, shares }, initrd, interactive)];
  const started = Date.now();
  const child = spawn(argv[0] ?? 'setpriv', argv.slice(1), {
    stdio: interactive ? 'inherit' : ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const last: string[] = [];
  let status: number | undefined;
  let pending = '';
  /** The first line that says the kernel crashed; the trace after it can push it out of `last`. */
  let crashLine: string | undefined;
  const marker = `TSPLICE-EXIT-${nonce}:`;
  const onLine = options.onLine ?? ((line: string) => process.stdout.write(`${line}\n`));
  const consume = (chunk: Buffer): void => {
    const parts = (pending + chunk.toString('utf8')).split('\n');
    pending = parts.pop() ?? '';
    for (const raw of parts) {
      const line = raw.replace(/\r$/, '').replace(TERMINAL_ESCAPE, '');
      const at = line.indexOf(marker);
      if (at >= 0) {
        status = Number(line.slice(at + marker.length));
        if (at > 0) onLine(line.slice(0, at));
        continue;
      }
      last.push(line);
      if (last.length > LAST_LINES) last.shift();
      if (crashLine === undefined && /Kernel panic|BUG:|Oops|general protection fault/.test(line)) crashLine = line.replace(/^\[\s*[\d.]+\]\s*/, '');
      // After the exit marker only the kernel's power-off messages follow.
      if (status !== undefined) continue;
      lines.push(line);
      onLine(line);
    }
  };
  child.stdout?.on('data', consume);
  child.stderr?.on('data', (c: Buffer) => {
    for (const l of c.toString('utf8').split('\n').filter(Boolean)) last.push(`qemu: ${l}`);
  });

  const kill = (): void => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    kill();
    rmSync(scratch, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  const signals: NodeJS.Signals[] = interactive ? ['SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, options.timeoutSeconds * 1000);

  try {
    const exit = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
      child.on('error', (error) => resolve({ code: null, error }));
      child.on('close', (code) => resolve({ code }));
    });
    if (pending) consume(Buffer.from('\n'));
    if (exit.error) throw new UserError(`Cannot start QEMU (${exit.error.message}); is qemu-system-x86 installed?`, { kind: 'missing-program', object: 'qemu' });
    if (interactive) return { status: exit.code ?? 1, elapsedMs: Date.now() - started, lines };
    if (timedOut) {
      throw new GuestFailure(`The guest (${options.kernel.release}) did not finish within ${options.timeoutSeconds} s and was killed.`, last);
    }
    if (status === undefined) {
      throw new GuestFailure(
        crashLine !== undefined
          ? `The guest kernel (${options.kernel.release}) crashed before the command finished: ${crashLine}`
          : `The guest (${options.kernel.release}) stopped before the command finished (QEMU exit status ${exit.code}).`,
        last,
      );
    }
    return { status, elapsedMs: Date.now() - started, lines };
  } finally {
    clearTimeout(timer);
    kill();
    for (const s of signals) process.off(s, onSignal);
    rmSync(scratch, { recursive: true, force: true });
  }
}
