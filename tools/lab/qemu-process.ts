/**
 * One QEMU process for the lab's guests (the initramfs guest, qemu.ts, and the Debian disk
 * guest, debian-guest.ts): the machine both boot, the console streamed back as lines, and the
 * guarantees that QEMU never outlives the run. It is started under `setpriv --pdeathsig KILL`,
 * so it dies with this process even when this process is killed outright; SIGINT and SIGTERM
 * kill it too, and a guest that outlives the timeout is killed and reported with its last
 * console lines.
 */
import { spawn } from 'node:child_process';
import { UserError } from '../../src/host/errors.js';
import { ensureHostPackages } from '../../src/debian/apt.js';

/** Host packages the lab adds to the build tools: QEMU, the guest's busybox, cpio. */
const LAB_PACKAGES = ['qemu-system-x86', 'busybox-static', 'cpio'];

/** Installs what the lab needs beyond the build tools (debian/fetch.ts has those), saying so. */
export async function ensureLabPackages(): Promise<void> {
  await ensureHostPackages(LAB_PACKAGES, (message) => process.stderr.write(`${message}\n`));
}

/** Terminal control sequences the guest's shell may print; they are not output. */
// eslint-disable-next-line no-control-regex
const TERMINAL_ESCAPE = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Console lines kept to explain a guest that died or hung. */
const LAST_LINES = 30;

/** A console line that says the guest kernel crashed. */
const CRASH_LINE = /Kernel panic|BUG:|Oops|general protection fault/;

/** The crash a console line reports, without the kernel's timestamp; undefined for other lines. */
export function crashReport(line: string): string | undefined {
  return CRASH_LINE.test(line) ? line.replace(/^\[\s*[\d.]+\]\s*/, '') : undefined;
}

export class GuestFailure extends UserError {
  constructor(
    message: string,
    readonly lastLines: string[],
  ) {
    super(`${message}\nLast console lines:\n${lastLines.map((l) => `  | ${l}`).join('\n')}`, { kind: 'command-failed', object: 'qemu', reason: message });
  }
}

export interface MachineOptions {
  memoryMiB?: number;
  cpus?: number;
  /** The console on this terminal (with QEMU's monitor on Ctrl-A), else streamed to the host. */
  interactive: boolean;
}

/** The machine every lab guest is: no defaults, no display, the console on the serial port. */
export function machineArguments(options: MachineOptions): string[] {
  const args = [
    'qemu-system-x86_64',
    '-no-user-config',
    '-nodefaults',
    '-accel',
    // One host thread for all vCPUs: multi-threaded TCG killed the guest's node now and then
    // (SIGSEGV, SIGILL, wasm traps: 1 to 9 in 80 corpus applies with the host busy), single was
    // clean and faster on the 2-core lab (docs/lab.md).
    process.env.TSPLICE_QEMU_ACCEL ?? 'tcg,thread=single',
    '-m',
    String(options.memoryMiB ?? 2048),
    '-smp',
    String(options.cpus ?? 2),
    '-display',
    'none',
  ];
  if (options.interactive) args.push('-serial', 'mon:stdio');
  else args.push('-serial', 'stdio', '-monitor', 'none');
  return args;
}

/** A virtio-9p share of a host folder (`-virtfs`). */
export function shareArguments(dir: string, tag: string, readonly = false): string[] {
  return ['-virtfs', `local,path=${dir},mount_tag=${tag},security_model=none,${readonly ? 'readonly=on,' : ''}id=${tag}`];
}

export interface QemuRunOptions {
  /** QEMU's argv (machineArguments and more), without setpriv. */
  argv: string[];
  interactive: boolean;
  timeoutSeconds: number;
  /** Each console line, without the carriage return and terminal escapes (not interactive). */
  onLine: (line: string) => void;
  /** Called when a signal ends this process, before it exits (remove scratch files). */
  onSignal?: () => void;
}

export interface QemuExit {
  /** QEMU's exit status, or null when it was killed. */
  code: number | null;
  timedOut: boolean;
  /** The last console lines and what QEMU said on stderr, to explain a failure. */
  lastLines: string[];
  /** The first line that said the kernel crashed; the trace after it can push it out of lastLines. */
  crashLine: string | undefined;
}

/** Runs QEMU to its end (power-off, crash or timeout); never leaves it running. */
export async function runQemu(options: QemuRunOptions): Promise<QemuExit> {
  const argv = ['setpriv', '--pdeathsig', 'KILL', '--', ...options.argv];
  const child = spawn(argv[0] ?? 'setpriv', argv.slice(1), {
    stdio: options.interactive ? 'inherit' : ['ignore', 'pipe', 'pipe'],
  });
  const lastLines: string[] = [];
  const remember = (line: string): void => {
    lastLines.push(line);
    if (lastLines.length > LAST_LINES) lastLines.shift();
  };
  let crashLine: string | undefined;
  let pending = '';
  const consume = (chunk: Buffer): void => {
    const parts = (pending + chunk.toString('utf8')).split('\n');
    pending = parts.pop() ?? '';
    for (const raw of parts) {
      const line = raw.replace(/\r$/, '').replace(TERMINAL_ESCAPE, '');
      remember(line);
      crashLine ??= crashReport(line);
      options.onLine(line);
    }
  };
  child.stdout?.on('data', consume);
  child.stderr?.on('data', (c: Buffer) => {
    for (const l of c.toString('utf8').split('\n').filter(Boolean)) remember(`qemu: ${l}`);
  });

  const kill = (): void => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    kill();
    options.onSignal?.();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  // In an interactive session Ctrl-C belongs to the guest's shell.
  const signals: NodeJS.Signals[] = options.interactive ? ['SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
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
    return { code: exit.code, timedOut, lastLines, crashLine };
  } finally {
    clearTimeout(timer);
    kill();
    for (const s of signals) process.off(s, onSignal);
  }
}
