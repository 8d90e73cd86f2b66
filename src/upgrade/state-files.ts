/**
 * The files `tsplice upgrade` keeps under /var/lib/tsplice (TSPLICE_STATE_DIR in tests): which
 * updates it applied, the crash guard's marker, the last boot-time run. Each is written whole
 * and made durable before the step it guards (write a temporary file, fsync it, rename it over
 * the old one, fsync the folder): the crash guard is worthless if the marker written just
 * before a switch that kills the kernel is still in the page cache when it dies.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../host/errors.js';

export const DEFAULT_STATE_DIR = '/var/lib/tsplice';

/** The state folder: TSPLICE_STATE_DIR when set (tests, a throwaway root), else /var/lib/tsplice. */
export function stateDir(): string {
  return process.env['TSPLICE_STATE_DIR'] || DEFAULT_STATE_DIR;
}

/** This boot's id: the kernel makes a new random one at every boot. */
export function currentBootId(path = '/proc/sys/kernel/random/boot_id'): string {
  return readFileSync(path, 'utf8').trim();
}

function fsyncPath(path: string, flags: string): void {
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `value` as JSON to `dir/name`, durably (on disk when this returns). */
export function writeDurably(dir: string, name: string, value: unknown): void {
  const path = join(dir, name);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const temporary = `${path}.tmp`;
    const fd = openSync(temporary, 'w', 0o644);
    try {
      writeSync(fd, `${JSON.stringify(value, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
    fsyncPath(dir, 'r');
  } catch (e) {
    throw new UserError(`Cannot write ${path}: ${(e as Error).message}.`, { kind: 'cannot-read', object: path, reason: `cannot write: ${(e as Error).message}` });
  }
}

/** Removes `dir/name` durably; absent already is fine. */
export function removeDurably(dir: string, name: string): void {
  rmSync(join(dir, name), { force: true });
  try {
    fsyncPath(dir, 'r');
  } catch {
    // No folder: nothing was there to remove.
  }
}

/**
 * The JSON in `dir/name`, or undefined when there is none. A file that is not JSON (a disk
 * that lost it half-written despite the rename) is reported by `check` through its own rule.
 */
export function readJsonFile(dir: string, name: string): unknown {
  const path = join(dir, name);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`Cannot read ${path}: ${(e as Error).message}.`, { kind: 'cannot-read', object: path, reason: (e as Error).message });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new UserError(`${path} is not valid JSON (${(e as Error).message}); remove it to start afresh.`, { kind: 'bad-state', object: path, reason: `not valid JSON (${(e as Error).message})` });
  }
}
