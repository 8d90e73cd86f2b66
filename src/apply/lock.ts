/**
 * One tsplice at a time on a target: apply, undo, unload and recover change the kernel in
 * several steps (insmod, stage, switch, drop, rmmod), and two runs interleaving those steps
 * undo each other's work (the losing run's rollback unloaded the winner's module). Each takes
 * this lock first and fails at once, naming the holder, when another run has it. A run killed
 * with SIGKILL leaves the file behind; a holder that no longer exists is stale and its lock is
 * taken over. The core module is the arbiter where two runs race even so (it refuses to let a
 * process add to, apply or drop an update another live process is staging, and holds every
 * staged update's modules, so rmmod cannot take them away).
 */
import { linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from '../host/errors.js';

/** Where the lock lives: /run is a tmpfs, so a reboot clears a stale lock. */
export const LOCK_PATH = '/run/tsplice/lock';

export type LockVerb = 'apply' | 'undo' | 'unload' | 'recover' | 'upgrade' | 'withdraw';

interface Holder {
  pid: number;
  verb: string;
}

function readHolder(path: string): Holder | undefined {
  try {
    const [pid, verb] = readFileSync(path, 'utf8').trim().split(' ');
    const n = Number(pid);
    return Number.isSafeInteger(n) && n > 0 ? { pid: n, verb: verb ?? 'run' } : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process exists (EPERM: it does, owned by someone else). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Creates the lock file holding "PID VERB"; false when it exists already. The file is written
 * under a name of its own first and then linked into place, so the lock never exists without
 * its holder in it: a lock read empty (created, not yet written) was once taken for a stale
 * one, and two applies both went ahead.
 */
function create(path: string, verb: LockVerb): boolean {
  const mine = `${path}.${process.pid}`;
  writeFileSync(mine, `${process.pid} ${verb}\n`, { mode: 0o600 });
  try {
    linkSync(mine, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new UserError(`Cannot create the lock ${path}: ${(e as Error).message}.`, { kind: 'locked', object: path, reason: (e as Error).message });
  } finally {
    unlinkSync(mine);
  }
}

/**
 * Takes the lock for `verb`, or throws naming the run that holds it. A stale lock (its
 * process gone, or unreadable) is moved aside by rename, which only one taker can win.
 */
export function acquireLock(verb: LockVerb, path = LOCK_PATH): () => void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    if (create(path, verb)) {
      return () => {
        if (readHolder(path)?.pid === process.pid) unlinkSync(path);
      };
    }
    const holder = readHolder(path);
    if (holder && holder.pid !== process.pid && alive(holder.pid)) {
      throw new UserError(`another tsplice ${holder.verb} (pid ${holder.pid}) is running; wait for it to end and try again.`, { kind: 'locked', object: path });
    }
    try {
      renameSync(path, `${path}.stale.${process.pid}`);
      unlinkSync(`${path}.stale.${process.pid}`);
    } catch {
      // Another run moved it first: try to create ours again.
    }
  }
  throw new UserError(`Cannot take the lock ${path}: other tsplice runs keep taking it.`, { kind: 'locked', object: path });
}

/** Runs `work` holding the lock. */
export async function withLock<T>(verb: LockVerb, work: () => Promise<T>, path = LOCK_PATH): Promise<T> {
  const release = acquireLock(verb, path);
  try {
    return await work();
  } finally {
    release();
  }
}
