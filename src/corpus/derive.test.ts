/**
 * The corpus's pure parts: reading `diff -rq`, which folders kbuild reaches, which headers a
 * compiler error points at, and the words for outcomes. No kernel tree or guest needed: the
 * folder tests build a tiny fake tree.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { folderStatus, identifiersInErrors, includingUnit, isBuildProduct, namedIn, parseDiffRq, patchNameFor, vmlinuxStatus } from './derive.js';
import { classifyApplyError, createClasses, dmesgProblems, parseGuestRecords, totals, type CorpusRow } from './outcome.js';

describe('parseDiffRq', () => {
  it('splits changed and one-sided files and drops build products', () => {
    const out = [
      'Files /t/a/linux/fs/proc/version.c and /t/b/linux/fs/proc/version.c differ',
      'Files /t/a/linux/fs/proc/version.o and /t/b/linux/fs/proc/version.o differ',
      'Files /t/a/linux/include/generated/autoconf.h and /t/b/linux/include/generated/autoconf.h differ',
      'Only in /t/b/linux/include/rdma: iter.h',
      'Only in /t/a/linux/fs/proc: .generic.o.d',
      'Only in /t/a/linux/tools: old.c',
    ].join('\n');
    assert.deepEqual(parseDiffRq(out, '/t/a/linux', '/t/b/linux'), {
      changed: ['fs/proc/version.c'],
      onlyOld: ['tools/old.c'],
      onlyNew: ['include/rdma/iter.h'],
    });
    assert.equal(isBuildProduct('kernel/.panic.o.cmd'), true);
    assert.equal(isBuildProduct('arch/x86/include/generated/asm/foo.h'), true);
    assert.equal(isBuildProduct('include/linux/device.h'), false);
  });
});

describe('header selection', () => {
  it('takes the names the compiler complained about', () => {
    const output = [
      "drivers/base/core.c:197:9: error: implicit declaration of function ‘fwnode_set_flag’; did you mean ‘of_node_set_flag’? [-Werror=implicit-function-declaration]",
      "fs/x.c:3:10: fatal error: rdma/iter.h: No such file or directory",
      "fs/x.c:9:5: error: ‘struct foo’ has no member named ‘bar’",
      'fs/x.c:12:1: warning: unused variable ‘quiet’',
    ].join('\n');
    const names = identifiersInErrors(output);
    for (const n of ['fwnode_set_flag', 'rdma/iter.h', 'foo', 'bar']) assert.ok(names.includes(n), n);
    assert.ok(!names.includes('quiet'));
    assert.ok(!names.includes('struct'));
  });
  it('finds a name pasted together by a macro through its tail', () => {
    const text = '+__create_dev_flag_accessors(ready_to_probe, DEV_FLAG_READY_TO_PROBE);';
    assert.equal(namedIn('dev_set_ready_to_probe', text), true);
    assert.equal(namedIn('dev_set_other_thing', text), false);
    assert.equal(namedIn('DEV_FLAG_READY_TO_PROBE', text), true);
  });
  it('names patches after the file', () => {
    assert.equal(patchNameFor('kernel/time/timer.c'), 'kernel-time-timer.patch');
  });
});

describe('folderStatus and vmlinuxStatus', () => {
  const tree = mkdtempSync(join(tmpdir(), 'tsplice-corpus-test-'));
  after(() => rmSync(tree, { recursive: true, force: true }));
  const file = (path: string, text: string): void => {
    mkdirSync(dirname(join(tree, path)), { recursive: true });
    writeFileSync(join(tree, path), text);
  };
  file('Kbuild', 'obj-y += kernel/\nobj-y += mm/\nobj-y += arch/$(SRCARCH)/\nobj-$(CONFIG_NET) += net/\n');
  file('Makefile', 'libs-y := lib/\n');
  file('kernel/Makefile', 'obj-y += a.o\nobj-$(CONFIG_OFF) += off.o\n');
  file('kernel/sched/Makefile', 'obj-y += build_policy.o\n');
  file('kernel/sched/build_policy.c', '#include "rt.c"\n');
  file('kernel/sched/rt.c', '');
  file('kernel/Kbuild.unused', '');
  file('lib/Makefile', 'obj-$(CONFIG_MPILIB) += mpi/\n');
  file('lib/mpi/Makefile', 'obj-$(CONFIG_MPILIB) = mpi.o\nmpi-y = mpicoder.o\n');
  file('mm/Makefile', 'mmu-y := nommu.o\nmmu-$(CONFIG_MMU) := memory.o\nobj-y := util.o $(mmu-y)\n');
  file('net/Makefile', 'obj-$(subst m,y,$(CONFIG_MOD)) += core/\n');
  file('net/core/Makefile', 'obj-y += sock.o\n');
  file('arch/x86/Kbuild', 'obj-$(CONFIG_KVM) += kvm/\n');
  file('arch/x86/kvm/Makefile', 'kvm-y += mmu/mmu.o\nobj-$(CONFIG_KVM) += kvm.o\n');
  file('arch/arm/Makefile', 'obj-y += arm.o\n');
  file('include/config/auto.conf', 'CONFIG_NET=y\nCONFIG_MPILIB=y\nCONFIG_MMU=y\nCONFIG_KVM=m\nCONFIG_MOD=m\n');
  const config = new Map([
    ['CONFIG_NET', 'y'],
    ['CONFIG_MPILIB', 'y'],
    ['CONFIG_MMU', 'y'],
    ['CONFIG_KVM', 'm'],
    ['CONFIG_MOD', 'm'],
  ]);

  it('follows the folders kbuild descends into', () => {
    assert.equal(folderStatus(tree, 'kernel', config), 'built-in');
    assert.equal(folderStatus(tree, 'lib/mpi', config), 'built-in');
    assert.equal(folderStatus(tree, 'arch/x86/kvm', config), 'module');
    assert.equal(folderStatus(tree, 'arch/arm', config), 'not built');
    assert.equal(folderStatus(tree, 'net/core', config), 'built-in');
  });
  it('combines the folder with the unit', () => {
    assert.equal(vmlinuxStatus(tree, 'kernel/a.c', config), 'built-in');
    assert.equal(vmlinuxStatus(tree, 'kernel/off.c', config), 'not built');
    assert.equal(vmlinuxStatus(tree, 'lib/mpi/mpicoder.c', config), 'built-in');
    assert.equal(vmlinuxStatus(tree, 'mm/memory.c', config), 'built-in');
    assert.equal(vmlinuxStatus(tree, 'arch/x86/kvm/mmu/mmu.c', config), 'module');
    assert.equal(vmlinuxStatus(tree, 'arch/arm/arm.c', config), 'not built');
    assert.equal(vmlinuxStatus(tree, 'kernel/sched/rt.c', config), 'unknown');
    assert.equal(includingUnit(tree, 'kernel/sched/rt.c'), 'kernel/sched/build_policy.c');
  });
});

describe('outcomes', () => {
  it('classes create refusals, layout change first', () => {
    assert.deepEqual(createClasses('The patch cannot be made into a safe update:\n  a.c: x (.data): data layout change: struct s grew\n  a.c: y (.data): changed initial value of existing data (z)'), [
      'layout change',
      'changed initializer',
    ]);
    assert.deepEqual(createClasses('include/linux/fwnode.h is included by 1500 units built into vmlinux, more than the 40 that create rebuilds for a changed header.'), [
      'header change: too many units include it',
    ]);
    assert.deepEqual(createClasses('something new'), ['create error']);
    assert.deepEqual(
      createClasses('The patch cannot be made into a safe update:\n  net/ipv4/udp.c: descriptor.10 (__dyndbg): changed initial value of existing data (bytes differ at +0x20); the running kernel\'s copy is live state: it needs a hook'),
      ['changed initializer: __dyndbg descriptor (line number)'],
    );
  });
  it('reads the guest driver\'s records: results in order, and the update it stopped in', () => {
    const result = (id: string): string => JSON.stringify({ type: 'result', id, file: `${id}.c`, outcome: 'applied', functions: [], dmesg: [] });
    const start = (id: string): string => JSON.stringify({ type: 'start', id });
    const done = parseGuestRecords([start('a'), result('a'), start('b'), result('b')]);
    assert.deepEqual(done.results.map((r) => r.id), ['a', 'b']);
    assert.equal(done.unfinished, undefined);
    assert.equal(parseGuestRecords([start('a'), result('a'), start('b')]).unfinished, 'b');
  });

  it('classes apply failures', () => {
    assert.equal(classifyApplyError('tsplice: The running kernel does not match the update: f at 0x1+0x4: reloc (expected 00, running 01).'), 'match failed');
    assert.equal(classifyApplyError('Cannot apply update u: task 1 (sh) is inside function f (f+0x10 is on its stack)'), 'busy');
    assert.equal(classifyApplyError('The new code refers to .LC0, which the running kernel does not have (not in /proc/kallsyms).'), 'unresolved reference');
    assert.equal(classifyApplyError('tsplice apply u.tsplice --json was killed by SIGSEGV'), 'apply crashed');
    assert.deepEqual(dmesgProblems(['tsplice: loading out-of-tree module taints kernel.', 'WARNING: CPU: 0 PID: 1 at x']), ['WARNING: CPU: 0 PID: 1 at x']);
  });
  it('counts the share among files whose diff changes code', () => {
    const row = (reason: string, changesCode = true): CorpusRow => ({ file: reason, unit: reason, outcome: reason, reason, changesCode, functions: 0, headers: 0 });
    const t = totals([row('applied'), row('refused at create: layout change'), row('refused at create: no code change', false), row('busy')], 1);
    assert.equal(t.changesCode, 3);
    assert.equal(t.applied, 1);
    assert.equal(t.share, 1 / 3);
    assert.equal(t.reboots, 0);
  });
});
