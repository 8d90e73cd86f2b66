/**
 * tsplice create with patches that change headers, on the prepared 6.1.170 tree of the lab
 * kernel (no VM): every built-in unit that includes the header is rebuilt, and the update
 * carries only the functions whose code changed.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { projectRoot } from '../lab/guest-image.js';
import { preparedTree } from '../lab/prepare.js';
import { createUpdate } from './create.js';

const tree = preparedTree('6.1.0-47-amd64', '6.1.170-3');
const patch = (name: string): string => join(projectRoot(), 'test', 'patches', `${name}.patch`);
const quiet = (): void => {};

describe('tsplice create with a changed header', { skip: tree ? false : 'the 6.1.0-47-amd64 tree is not prepared' }, () => {
  it('a changed static inline in a folder-local header: its callers in every including unit', async () => {
    const lines: string[] = [];
    const { update, headerUnits } = await createUpdate({ tree: tree!, patches: [patch('proc-fd-header-inline')], log: (l) => lines.push(l) });
    assert.deepEqual(update.functions.map((f) => `${f.name}:${f.status}`).sort(), ['proc_fd_link:changed', 'seq_show:changed', 'tid_fd_revalidate:changed']);
    assert.deepEqual(update.data, []);
    // base.c includes fd.h without calling proc_fd: rebuilt, unchanged, not carried.
    assert.deepEqual(headerUnits, [{ header: 'fs/proc/fd.h', units: ['fs/proc/base.c', 'fs/proc/fd.c'], skipped: [] }]);
    assert.deepEqual(update.units.map((u) => u.unit), ['fs/proc/fd.c']);
    assert.ok(lines.includes('fs/proc/fd.h: rebuilding 2 unit(s) built into vmlinux that include it (fs/proc/base.c, fs/proc/fd.c)'));
  });

  it('refuses a changed struct layout in an include/ header, naming the struct in each unit', async () => {
    await assert.rejects(createUpdate({ tree: tree!, patches: [patch('container-dev-layout')], log: quiet }), (error: Error) => {
      assert.match(error.message, /^The patch cannot be made into a safe update:/);
      assert.match(error.message, /drivers\/acpi\/container\.c: struct container_dev \(\.debug_info\): data layout change: struct container_dev: size 752 -> 760/);
      assert.match(error.message, /drivers\/base\/container\.c: struct container_dev \(\.debug_info\): data layout change: .*used by container_offline/);
      return true;
    });
  });

  it('a comment-only include/ header change: the units rebuilt against it compile to the same code', async () => {
    // The post compiles find include/linux through the work folder's mirror: any difference
    // that mirror made would show here as changed code.
    await assert.rejects(
      createUpdate({ tree: tree!, patches: [patch('container-header-comment')], log: quiet }),
      /^UserError: The patch changes no code built into the kernel\.$/,
    );
  });

  it('refuses a header included by more built-in units than the limit, before compiling', async () => {
    await assert.rejects(
      createUpdate({ tree: tree!, patches: [patch('proc-fd-header-inline')], headerUnitLimit: 1, log: quiet }),
      /^UserError: fs\/proc\/fd\.h is included by 2 units built into vmlinux, more than the 1 that create rebuilds for a changed header\.$/,
    );
  });
});
