/**
 * Running the host tools the lab depends on (apt, dpkg, make, tar). Every failure becomes a
 * UserError that names the command and quotes the last lines it printed, because a bare
 * "exit status 2" from make tells an operator nothing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { UserError } from './errors.js';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with each complete line the command prints (stdout and stderr). */
  onLine?: (line: string) => void;
  /** What the command is for, used in the error sentence ("unpacking linux-source-6.1"). */
  purpose?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Lines of output kept to explain a failure. */
const TAIL_LINES = 15;

export function describeCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
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
    const tail: string[] = [];
    const lineBuffers = { stdout: '', stderr: '' };
    const feed = (stream: 'stdout' | 'stderr', chunk: Buffer): void => {
      (stream === 'stdout' ? out : err).push(chunk);
      const text = lineBuffers[stream] + chunk.toString('utf8');
      const lines = text.split('\n');
      lineBuffers[stream] = lines.pop() ?? '';
      for (const line of lines) {
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
        options.onLine?.(line);
      }
    };
    child.stdout.on('data', (c: Buffer) => feed('stdout', c));
    child.stderr.on('data', (c: Buffer) => feed('stderr', c));
    child.on('error', (e: NodeJS.ErrnoException) => {
      const what = options.purpose ? ` for ${options.purpose}` : '';
      reject(
        new UserError(
          e.code === 'ENOENT'
            ? `The program '${program}' is needed${what} but is not installed.`
            : `Could not start '${describeCommand(argv)}'${what}: ${e.message}.`,
        ),
      );
    });
    child.on('close', (code, signal) => {
      for (const rest of [lineBuffers.stdout, lineBuffers.stderr]) if (rest) tail.push(rest);
      if (code === 0) {
        resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
        return;
      }
      const what = options.purpose ? ` (${options.purpose})` : '';
      const status = signal ? `was killed by ${signal}` : `failed with exit status ${code}`;
      reject(
        new UserError(
          `'${describeCommand(argv)}'${what} ${status}; its last output:\n${tail.slice(-TAIL_LINES).join('\n')}`,
        ),
      );
    });
  });
}

/** Whether a program is on PATH. */
export function haveProgram(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}
