/**
 * Driving the core module (kmod/) from user space: load it if needed, stage an
 * update's functions, apply and undo it, and read the kernel's state back. The kernel is the
 * source of truth: nothing here keeps state, so a tool that was killed half-way can read
 * /proc/tsplice/status and carry on.
 *
 * Every command is one write(2) to /proc/tsplice/control; on the same open file a read(2)
 * then returns the kernel's result line ("ok: ..." or the reason for a refusal), which this
 * module turns into a return value or an Error naming what went wrong.
 */
import { existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError, classified, type DiagnosticFields } from '../host/errors.js';
import { run } from '../host/exec.js';
import {
  type BusyReason,
  type CoreDiagnostic,
  type CoreMeasurement,
  type CoreRefusal,
  type CoreStatus,
  type CoreUpdate,
  type RetryOptions,
  type StageRequest,
  type PartRequest,
  type LateRequest,
  type HookRequest,
  hookCommand,
  busyReason,
  lateCommand,
  partCommand,
  checkUpdateId,
  parseStatus,
  stageCommand,
  switchCommand,
} from './core-status.js';

export const CORE_MODULE_NAME = 'tsplice_core';
export const CORE_PROC_DIR = '/proc/tsplice';

/**
 * The kernel refused a command (kind kernel-refused); `reason` is its own sentence, `code` the
 * errno name, and `kernelRecord` the refusal as its status names it (reason and fields), when it
 * could be read.
 */
export class CoreCommandError extends UserError {
  constructor(
    message: string,
    readonly command: string,
    readonly code: string,
    readonly reason: string,
    readonly kernelRecord?: CoreDiagnostic,
    fields: DiagnosticFields = { kind: 'kernel-refused', reason, ...(kernelRecord?.fields['function'] ? { function: kernelRecord.fields['function'] } : {}) },
  ) {
    super(message, fields);
  }
}

/** apply, undo or drop gave up because a task was inside code it would change. */
export class CoreBusyError extends CoreCommandError {
  readonly functionName: string;
  readonly pid: number;
  readonly comm: string;

  constructor(message: string, command: string, code: string, reason: string, diagnostic: CoreDiagnostic, busy: BusyReason) {
    super(message, command, code, reason, diagnostic, { kind: 'busy', function: busy.functionName, reason: `task ${busy.pid} (${busy.comm}) is inside it (${busy.detail})` });
    this.functionName = busy.functionName;
    this.pid = busy.pid;
    this.comm = busy.comm;
  }
}

/**
 * Runs insmod, rmmod and the like (host/exec.ts); a failure is one sentence with the
 * program's first error line, kind insmod-failed or rmmod-failed for those two.
 */
export function runProgram(program: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const kind = program === 'insmod' ? 'insmod-failed' : program === 'rmmod' ? 'rmmod-failed' : 'command-failed';
  const object = program === 'insmod' ? args[0] : program === 'rmmod' ? args[0] : undefined;
  return run([program, ...args], { failure: { kind, ...(object !== undefined ? { object } : {}) } });
}

export class CoreModule {
  readonly control: string;
  readonly statusPath: string;

  constructor(readonly procDir = CORE_PROC_DIR) {
    this.control = join(procDir, 'control');
    this.statusPath = join(procDir, 'status');
  }

  /** Whether the module is loaded (its /proc directory exists). */
  static isLoaded(procDir = CORE_PROC_DIR): boolean {
    return existsSync(join(procDir, 'status'));
  }

  /** The core module, loaded from `koPath` with insmod if it is not loaded yet. */
  static async load(koPath: string, procDir = CORE_PROC_DIR): Promise<CoreModule> {
    if (!CoreModule.isLoaded(procDir)) {
      if (!existsSync(koPath)) throw new UserError(`The core module ${koPath} does not exist; build it first (kmod/).`, { kind: 'missing-file', object: koPath });
      try {
        await runProgram('insmod', [koPath]);
      } catch (e) {
        // Another run loaded it meanwhile (insmod's "File exists"): that one serves.
        if (CoreModule.isLoaded(procDir)) return new CoreModule(procDir);
        throw new UserError(
          `Cannot load the core module ${koPath}: ${withoutFullStop((e as Error).message)}. ` +
            'It needs root, a kernel it was built for, and a kernel not locked down (dmesg says which).',
          { kind: 'insmod-failed', object: koPath, ...(e instanceof UserError ? { reason: e.diagnostic.reason } : {}) },
        );
      }
      if (!CoreModule.isLoaded(procDir)) throw new UserError(`insmod ${koPath} succeeded but ${procDir} did not appear.`, { kind: 'insmod-failed', object: koPath });
    }
    return new CoreModule(procDir);
  }

  /**
   * Writes one command; returns the kernel's result line. A refusal becomes a
   * CoreCommandError (CoreBusyError for a busy abort) whose message is the kernel's reason,
   * with the kernel's record of the refusal from its status.
   */
  async command(line: string): Promise<string> {
    if (line.includes('\n')) throw new UserError('A core module command is one line.', { kind: 'internal' });
    let handle;
    try {
      handle = await open(this.control, 'r+');
    } catch (e) {
      throw procFileError(this.control, e, 'CAP_SYS_ADMIN and CAP_SYS_MODULE');
    }
    let code = '';
    let result: string;
    try {
      try {
        await handle.write(Buffer.from(`${line}\n`));
      } catch (e) {
        code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      }
      const buffer = Buffer.alloc(4096);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      result = buffer.subarray(0, bytesRead).toString('utf8').trim();
    } finally {
      await handle.close();
    }
    if (!code) return result;
    throw commandError(line, code, result || `the kernel refused it (${code}), giving no reason`, await this.refusalOf(line));
  }

  /**
   * The kernel's record of the refusal of `line` by this process: the status keeps the last
   * refused command only, so undefined when another refusal came since or the status cannot
   * be read.
   */
  private async refusalOf(line: string): Promise<CoreRefusal | undefined> {
    const [command, id] = line.split(' ');
    try {
      const refusal = (await this.status()).refusal;
      return refusal?.pid === process.pid && refusal.command === command && refusal.id === id ? refusal : undefined;
    } catch {
      return undefined;
    }
  }

  async status(): Promise<CoreStatus> {
    let text: string;
    try {
      text = await readFile(this.statusPath, 'utf8');
    } catch (e) {
      throw procFileError(this.statusPath, e, 'CAP_SYS_ADMIN');
    }
    try {
      return parseStatus(text, this.statusPath);
    } catch (error) {
      throw classified(error, { kind: 'bad-kernel-record', object: this.statusPath });
    }
  }

  async update(id: string): Promise<CoreUpdate | undefined> {
    return (await this.status()).updates.find((u) => u.id === id);
  }

  private async requireUpdate(id: string): Promise<CoreUpdate> {
    const update = await this.update(id);
    if (!update) throw new UserError(`The kernel has no update ${id}.`, { kind: 'no-such-update' });
    return update;
  }

  /** Stages one function into update `id` (creating it); the kernel checks everything it can. */
  async stage(id: string, fn: StageRequest): Promise<void> {
    await this.command(argument(() => stageCommand(id, fn)));
  }

  /** Stages every function of an update; on a refusal the partial update is dropped. */
  async stageUpdate(id: string, functions: readonly StageRequest[]): Promise<CoreUpdate> {
    argument(() => checkUpdateId(id));
    if (functions.length === 0) throw new UserError(`Update ${id} has no function to stage.`, { kind: 'nothing-to-stage' });
    if (await this.update(id)) throw new UserError(`The kernel already has an update ${id}; drop it or choose another id.`, { kind: 'bad-state' });
    try {
      for (const fn of functions) await this.stage(id, fn);
    } catch (e) {
      if (await this.update(id)) await this.drop(id);
      throw e;
    }
    return this.requireUpdate(id);
  }

  /**
   * Stages an update: the functions of vmlinux (`stage`), the functions of loadable modules
   * (`part`), the relocations of the new code into modules (`late`) and the author's hooks
   * (`hook`, in the order they run), in that order; on a refusal the partial update is dropped.
   */
  async stageAll(
    id: string,
    functions: readonly StageRequest[],
    parts: readonly PartRequest[],
    lates: readonly LateRequest[],
    hooks: readonly HookRequest[] = [],
    /** Stage it even with nothing to switch: its author declared that it needs nothing at run time (`empty`). */
    declaredOnly = false,
  ): Promise<CoreUpdate> {
    argument(() => checkUpdateId(id));
    const nothing = functions.length === 0 && parts.length === 0 && hooks.length === 0;
    if (nothing && !declaredOnly) throw new UserError(`Update ${id} has no function or hook to stage.`, { kind: 'nothing-to-stage' });
    if (await this.update(id)) throw new UserError(`The kernel already has an update ${id}; drop it or choose another id.`, { kind: 'bad-state' });
    if (nothing) {
      await this.command(`empty ${id}`);
      return this.requireUpdate(id);
    }
    try {
      for (const fn of functions) await this.stage(id, fn);
      for (const part of parts) await this.command(argument(() => partCommand(id, part)));
      for (const late of lates) await this.command(argument(() => lateCommand(id, late)));
      for (const hook of hooks) await this.command(argument(() => hookCommand(id, hook)));
    } catch (e) {
      if (await this.update(id)) await this.drop(id);
      throw e;
    }
    return this.requireUpdate(id);
  }

  /** Applies a staged (or reverted) update; a busy machine is retried as `options` say. */
  async apply(id: string, options: RetryOptions = {}): Promise<CoreUpdate> {
    await this.command(argument(() => switchCommand('apply', id, options)));
    return this.requireUpdate(id);
  }

  async undo(id: string, options: RetryOptions = {}): Promise<CoreUpdate> {
    await this.command(argument(() => switchCommand('undo', id, options)));
    return this.requireUpdate(id);
  }

  /**
   * Forgets a staged or reverted update and releases its modules; for one that was applied,
   * after checking that no task is in its module's code (retried as `options` say).
   */
  async drop(id: string, options: RetryOptions = {}): Promise<void> {
    await this.command(argument(() => switchCommand('drop', id, options)));
  }

  /**
   * Stops the machine once with nothing to do inside (no id), or with the task check for
   * update `id` but no write, and returns the pauses measured.
   */
  async measure(id?: string): Promise<CoreMeasurement> {
    if (id !== undefined) argument(() => checkUpdateId(id));
    await this.command(id === undefined ? 'measure' : `measure ${id}`);
    const measurement = (await this.status()).measurement;
    if (!measurement) throw new UserError('The kernel measured nothing.', { kind: 'kernel-refused' });
    return measurement;
  }
}

/** A command line made from arguments (core-status.ts); a bad one is kind bad-argument. */
function argument<T>(make: () => T): T {
  try {
    return make();
  } catch (error) {
    throw classified(error, { kind: 'bad-argument' });
  }
}

function withoutFullStop(sentence: string): string {
  return sentence.endsWith('.') ? sentence.slice(0, -1) : sentence;
}

/** A /proc/tsplice file that cannot be opened: the module is not loaded (any more), or no root. */
function procFileError(path: string, e: unknown, needs: string): UserError {
  return (e as NodeJS.ErrnoException).code === 'ENOENT'
    ? new UserError(`${path} does not exist: the core module is not loaded (or was unloaded meanwhile).`, { kind: 'core-not-loaded', object: path })
    : new UserError(`Cannot open ${path}: ${(e as Error).message} (it needs root: ${needs}).`, { kind: 'not-root', object: path });
}

/** The error for a refused command: its structure comes from the kernel's fields, never its sentence. */
function commandError(line: string, code: string, reason: string, refusal: CoreRefusal | undefined): CoreCommandError {
  const [verb = line, id = ''] = line.split(' ');
  const diagnostic = refusal?.diagnostic;
  const busy = busyReason(diagnostic);
  if (diagnostic && busy && (verb === 'apply' || verb === 'undo' || verb === 'drop')) {
    const tail = busy.attempts !== undefined && busy.retryMs !== undefined ? `; gave up after ${busy.attempts} attempt(s) ${busy.retryMs} ms apart` : '';
    return new CoreBusyError(
      `Cannot ${verb} update ${id}: task ${busy.pid} (${busy.comm}) is inside function ${busy.functionName} ` +
        `(${busy.detail})${tail}. The kernel is unchanged.`,
      line,
      code,
      reason,
      diagnostic,
      busy,
    );
  }
  return new CoreCommandError(`The core module refused '${verb}': ${reason}`, line, code, reason, diagnostic);
}
