/**
 * The target's lock: one tsplice run at a time, the holder named to the other, a lock left by
 * a killed run taken over. Host-only: the lock is a file, and the holders are real processes.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { UserError } from '../host/errors.js';
import { acquireLock, withLock } from './lock.js';

const lockPath = (): string => join(mkdtempSync(join(tmpdir(), 'tsplice-lock-')), 'run', 'lock');

describe('the target lock', () => {
  it('is taken, names its holder, and is released', () => {
    const path = lockPath();
    const release = acquireLock('apply', path);
    assert.equal(readFileSync(path, 'utf8'), `${process.pid} apply\n`);
    release();
    assert.equal(existsSync(path), false);
  });

  it('refuses a second run while the holder lives, naming the holder and its verb', async () => {
    const path = lockPath();
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      assert.ok(holder.pid);
      const dir = join(path, '..');
      spawnSync('mkdir', ['-p', dir]);
      writeFileSync(path, `${holder.pid} undo\n`);
      assert.throws(
        () => acquireLock('apply', path),
        (e: unknown) => e instanceof UserError && e.message === `another tsplice undo (pid ${holder.pid}) is running; wait for it to end and try again.`,
      );
      assert.equal(readFileSync(path, 'utf8'), `${holder.pid} undo\n`, 'the live holder keeps its lock');
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('takes over a lock whose holder was killed', () => {
    const path = lockPath();
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(gone.stdout);
    spawnSync('mkdir', ['-p', join(path, '..')]);
    writeFileSync(path, `${deadPid} apply\n`);
    const release = acquireLock('recover', path);
    assert.equal(readFileSync(path, 'utf8'), `${process.pid} recover\n`);
    release();
  });

  it('is released when the work throws', async () => {
    const path = lockPath();
    await assert.rejects(withLock('unload', () => Promise.reject(new Error('failed half-way')), path), /failed half-way/);
    assert.equal(existsSync(path), false);
  });
});
