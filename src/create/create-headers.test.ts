/**
 * tsplice create with patches that change headers, on the prepared 6.1.170 tree of the lab
 * kernel (no VM): the built-in units whose code the header change can reach are rebuilt, and
 * the update carries only the functions whose code changed. Real fixes from the corpus
 * (test/corpus) too: widely included headers whose change reaches few units, a layout
 * change refused for its own reason, a .c file kbuild compiles only inside another unit.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { projectRoot } from '../host/project.js';
import { preparedTree } from '../kbuild/tree.js';
import { createUpdate } from './create.js';

const tree = preparedTree('6.1.0-47-amd64', '6.1.170-3');
const patch = (name: string): string => join(projectRoot(), 'test', 'patches', `${name}.patch`);
const corpusPatch = (name: string): string => join(projectRoot(), 'test', 'corpus', 'patches', `${name}.patch`);
const quiet = (): void => {};
const scratch = mkdtempSync(join(tmpdir(), 'tsplice-create-headers-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('tsplice create with a changed header', { skip: tree ? false : 'the 6.1.0-47-amd64 tree is not prepared' }, () => {
  it('a changed static inline in a folder-local header: only the unit that calls it is rebuilt', async () => {
    const lines: string[] = [];
    const { update, headerUnits } = await createUpdate({ tree: tree!, patches: [patch('proc-fd-header-inline')], log: (l) => lines.push(l) });
    assert.deepEqual(update.functions.map((f) => `${f.name}:${f.status}`).sort(), ['proc_fd_link:changed', 'seq_show:changed', 'tid_fd_revalidate:changed']);
    assert.deepEqual(update.data, []);
    // base.c includes fd.h without calling proc_fd: not rebuilt.
    assert.deepEqual(headerUnits, [
      { header: 'fs/proc/fd.h', units: ['fs/proc/fd.c'], skipped: [], changed: ['proc_fd'], reasons: { 'fs/proc/fd.c': ['proc_fd'] }, notReached: 1 },
    ]);
    assert.deepEqual(update.units.map((u) => u.unit), ['fs/proc/fd.c']);
    assert.ok(
      lines.includes(
        'fs/proc/fd.h: changes proc_fd; rebuilding 1 unit(s) built into vmlinux that use it (fs/proc/fd.c: proc_fd); 1 other unit(s) include it but use nothing that changed',
      ),
      lines.join('\n'),
    );
  });

  it('refuses a changed struct layout in an include/ header, naming the struct in each unit', async () => {
    await assert.rejects(createUpdate({ tree: tree!, patches: [patch('container-dev-layout')], log: quiet }), (error: Error) => {
      assert.match(error.message, /^The patch cannot be made into a safe update:/);
      assert.match(error.message, /drivers\/acpi\/container\.c: struct container_dev \(\.debug_info\): data layout change: struct container_dev: size 752 -> 760/);
      assert.match(error.message, /drivers\/base\/container\.c: struct container_dev \(\.debug_info\): data layout change: .*used by container_offline/);
      return true;
    });
  });

  it('a comment-only header change reaches no unit', async () => {
    const lines: string[] = [];
    await assert.rejects(
      createUpdate({ tree: tree!, patches: [patch('container-header-comment')], log: (l) => lines.push(l) }),
      /^UserError: The patch changes no code built into the kernel or its modules\.$/,
    );
    assert.ok(lines.some((l) => l.startsWith('include/linux/container.h: changes no name (comments, whitespace or line positions only); rebuilding 0 unit(s)')), lines.join('\n'));
  });

  it('an include/ header change that keeps the code: the units rebuilt against it compile to the same code', async () => {
    // The post compiles find include/linux through the work folder's mirror: any difference
    // that mirror made would show here as changed code.
    const path = join(scratch, 'container-cast.patch');
    writeFileSync(
      path,
      [
        '--- a/include/linux/container.h',
        '+++ b/include/linux/container.h',
        '@@ -21,7 +21,7 @@',
        ' ',
        ' static inline struct container_dev *to_container_dev(struct device *dev)',
        ' {',
        '-	return container_of(dev, struct container_dev, dev);',
        '+	return (struct container_dev *)container_of(dev, struct container_dev, dev);',
        ' }',
        ' ',
        ' #endif /* _LINUX_CONTAINER_H */',
        '',
      ].join('\n'),
    );
    const lines: string[] = [];
    await assert.rejects(createUpdate({ tree: tree!, patches: [path], log: (l) => lines.push(l) }), /^UserError: The patch changes no code built into the kernel or its modules\.$/);
    assert.ok(lines.includes('Compiling drivers/acpi/container.c (pre and post)...'), lines.join('\n'));
    assert.ok(lines.includes('Compiling drivers/base/container.c (pre and post)...'), lines.join('\n'));
  });

  it('refuses a header whose change reaches more built-in units than the limit, naming the names that reach them', async () => {
    await assert.rejects(
      createUpdate({ tree: tree!, patches: [patch('proc-fd-header-inline')], headerUnitLimit: 0, log: quiet }),
      /^UserError: fs\/proc\/fd\.h: the names it changes reach 1 unit built into vmlinux, more than the 0 that create rebuilds for a changed header \(proc_fd reaches 1 unit\)\.$/,
    );
  });
});

describe('tsplice create on corpus fixes that change widely included headers', { skip: tree ? false : 'the 6.1.0-47-amd64 tree is not prepared' }, () => {
  it('arch/x86/kernel/cpu/amd.c: cpufeatures.h and msr-index.h gain macros only amd.c uses', async () => {
    const lines: string[] = [];
    const { update, headerUnits } = await createUpdate({ tree: tree!, patches: [corpusPatch('arch-x86-kernel-cpu-amd')], log: (l) => lines.push(l) });
    assert.deepEqual(update.units.map((u) => u.unit), ['arch/x86/kernel/cpu/amd.c']);
    assert.ok(update.functions.some((f) => f.name === 'init_amd' && f.status === 'changed'));
    // X86_FEATURE_ZEN changes only whitespace: not a changed name.
    assert.deepEqual(headerUnits.map((h) => [h.header, h.changed, h.units]), [
      ['arch/x86/include/asm/cpufeatures.h', ['X86_FEATURE_ZEN1', 'X86_FEATURE_ZEN2', 'X86_FEATURE_ZEN3', 'X86_FEATURE_ZEN4'], ['arch/x86/kernel/cpu/amd.c']],
      ['arch/x86/include/asm/msr-index.h', ['MSR_ZEN2_BP_CFG_BUG_FIX_BIT'], ['arch/x86/kernel/cpu/amd.c']],
    ]);
    assert.ok((headerUnits[0]?.notReached ?? 0) > 1000);
    assert.deepEqual(lines.filter((l) => l.startsWith('Compiling ')), ['Compiling arch/x86/kernel/cpu/amd.c (pre and post)...']);
  });

  it('kernel/fork.c: task_struct gains a member, refused for that layout change, not for the count of units', async () => {
    await assert.rejects(createUpdate({ tree: tree!, patches: [corpusPatch('kernel-fork')], log: quiet }), (error: Error) => {
      assert.match(error.message, /^The patch cannot be made into a safe update:/);
      // The patch carries the sched.h hunk fork.c needs: kstack_offset, a new member before
      // mce_vaddr, so the members after it move.
      assert.match(error.message, /kernel\/fork\.c: struct task_struct \(\.debug_info\): data layout change: struct task_struct: member 'mce_vaddr' offset 0x1478 -> 0x1480;.*used by copy_process/);
      assert.doesNotMatch(error.message, /units built into vmlinux/);
      return true;
    });
  });

  it('kernel/locking/rtmutex.c: compiled as part of the units that #include it', async () => {
    const lines: string[] = [];
    const { update, headerUnits } = await createUpdate({ tree: tree!, patches: [corpusPatch('kernel-locking-rtmutex')], log: (l) => lines.push(l) });
    assert.deepEqual(headerUnits.map((h) => [h.header, h.units]), [['kernel/locking/rtmutex.c', ['kernel/locking/rtmutex_api.c', 'kernel/locking/rwsem.c']]]);
    assert.deepEqual(update.units.map((u) => u.unit), ['kernel/locking/rtmutex_api.c']);
    assert.ok(update.functions.some((f) => f.name === 'remove_waiter' && f.status === 'changed'));
    assert.ok(!lines.includes('Compiling kernel/locking/rtmutex.c (pre and post)...'));
  });
});
