/**
 * The one way tsplice runs other programs (apt, dpkg, make, gcc, patch, insmod, rmmod, tar).
 * A failure becomes one sentence naming the program and the first line of its output that
 * says what went wrong, because a bare "exit status 2" from make tells an operator nothing;
 * the whole command and everything it printed go with the error as its details, which the
 * CLI shows only when asked to be verbose.
 */
import { spawn, spawnSync } from 'node:child_process';
import { UserError, type DiagnosticFields } from './errors.js';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with each complete line the command prints (stdout and stderr); `run` only. */
  onLine?: (line: string) => void;
  /** What the command is for, used in the error sentence ("unpacking linux-source-6.1"). */
  purpose?: string;
  /** Kind and fields for the error when the command fails (default: 'command-failed'). */
  failure?: DiagnosticFields;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** A command that ran to completion, whatever its exit status. */
export interface ProbeResult extends RunResult {
  status: number;
}

/** Output kept with a failure, for the verbose report: its start and its end. */
const KEPT_OUTPUT = 256 * 1024;

/** The start and the end of a long output, the part between cut out. */
class KeptOutput {
  private head = '';
  private tail = '';
  private cut = false;

  add(text: string): void {
    if (this.head.length < KEPT_OUTPUT) {
      const room = KEPT_OUTPUT - this.head.length;
      this.head += text.slice(0, room);
      text = text.slice(room);
    }
    if (!text) return;
    this.tail += text;
    if (this.tail.length > KEPT_OUTPUT) {
      this.tail = this.tail.slice(-KEPT_OUTPUT);
      this.cut = true;
    }
  }

  toString(): string {
    return this.cut ? `${this.head}\n[...]\n${this.tail}` : this.head + this.tail;
  }
}
/** Output a synchronous command may print. */
const MAX_BUFFER = 1 << 30;

export function describeCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** A line of a program's output that reports an error (gcc, make, apt, dpkg, insmod, tar). */
const ERROR_LINE = /\berror\b|\bfatal\b|^E: |\*\*\*/i;

/** The first line of `output` that reports an error, else its last line, trimmed; undefined for no output. */
export function firstErrorLine(output: string): string | undefined {
  const lines = output.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  return lines.find((l) => ERROR_LINE.test(l)) ?? lines[lines.length - 1];
}

/** A program that ran and failed: the sentence names it and its first error line. */
export class CommandError extends UserError {
  override readonly name: string = 'CommandError';

  constructor(
    readonly argv: readonly string[],
    /** Exit status, or undefined when a signal ended it. */
    readonly status: number | undefined,
    readonly signal: string | undefined,
    /** stdout and stderr as the program printed them (the start of each, when very long). */
    readonly output: string,
    options: Pick<RunOptions, 'purpose' | 'failure'>,
  ) {
    const program = argv[0] ?? '';
    const what = options.purpose ? ` (${options.purpose})` : '';
    const how = signal ? `was killed by ${signal}` : `failed with exit status ${status}`;
    const first = firstErrorLine(output);
    super(`${program}${what} ${how}${first ? `: ${first.replace(/\.$/, '')}` : ''}.`, { kind: 'command-failed', reason: first ?? how, ...options.failure }, {
      details: `$ ${describeCommand(argv)}\n${output.trimEnd()}`,
    });
  }
}

function cannotStart(argv: readonly string[], error: NodeJS.ErrnoException, purpose: string | undefined): UserError {
  const program = argv[0] ?? '';
  if (error.code === 'ENOENT') {
    return new UserError(`The program '${program}' is needed${purpose ? ` for ${purpose}` : ''} but is not installed.`, { kind: 'missing-program', object: program });
  }
  return new UserError(`Could not start ${program}${purpose ? ` for ${purpose}` : ''}: ${error.message}.`, { kind: 'command-failed', object: program }, {
    details: `$ ${describeCommand(argv)}`,
  });
}

/** Runs argv to completion; rejects with a UserError on a non-zero exit or a missing program. */
export function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [program, ...args] = argv;
  if (program === undefined) throw new Error('run: empty argv');
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    /** Both streams in the order they came, for the failure. */
    const both = new KeptOutput();
    const lineBuffers = { stdout: '', stderr: '' };
    const feed = (stream: 'stdout' | 'stderr', chunk: Buffer): void => {
      (stream === 'stdout' ? out : err).push(chunk);
      const text = chunk.toString('utf8');
      both.add(text);
      if (!options.onLine) return;
      const lines = (lineBuffers[stream] + text).split('\n');
      lineBuffers[stream] = lines.pop() ?? '';
      for (const line of lines) options.onLine(line);
    };
    child.stdout.on('data', (c: Buffer) => feed('stdout', c));
    child.stderr.on('data', (c: Buffer) => feed('stderr', c));
    child.on('error', (e: NodeJS.ErrnoException) => reject(cannotStart(argv, e, options.purpose)));
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
        return;
      }
      reject(new CommandError(argv, code ?? undefined, signal ?? undefined, both.toString(), options));
    });
  });
}

/**
 * Runs argv to completion and returns its exit status with its output, for programs whose
 * status is an answer (`dpkg --compare-versions`, `patch` reporting failed hunks); throws
 * only when the program cannot be started.
 */
export function probe(argv: readonly string[], options: Omit<RunOptions, 'onLine' | 'failure'> = {}): ProbeResult {
  const [program, ...args] = argv;
  if (program === undefined) throw new Error('probe: empty argv');
  const r = spawnSync(program, args, { cwd: options.cwd, env: options.env ?? process.env, encoding: 'utf8', maxBuffer: MAX_BUFFER, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw cannotStart(argv, r.error as NodeJS.ErrnoException, options.purpose);
  return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

function kept(text: string): string {
  const output = new KeptOutput();
  output.add(text);
  return output.toString();
}

/** `run`, synchronously: throws a UserError on a non-zero exit or a missing program. */
export function runSync(argv: readonly string[], options: Omit<RunOptions, 'onLine'> = {}): RunResult {
  const [program, ...args] = argv;
  if (program === undefined) throw new Error('runSync: empty argv');
  const r = spawnSync(program, args, { cwd: options.cwd, env: options.env ?? process.env, encoding: 'utf8', maxBuffer: MAX_BUFFER, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw cannotStart(argv, r.error as NodeJS.ErrnoException, options.purpose);
  if (r.status !== 0) throw new CommandError(argv, r.status ?? undefined, r.signal ?? undefined, kept(`${r.stdout}${r.stderr}`), options);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** Whether a program is on PATH. */
export function haveProgram(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}
