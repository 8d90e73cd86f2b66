/**
 * The Makefile reader on a small synthetic tree: a top Kbuild and Makefile, an arch Makefile,
 * folder Makefiles and an auto.conf, with each form kbuild decides a unit's status by.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildStatus, KbuildReader, readAutoConf } from './build-status.js';

describe('build status from the Makefiles', () => {
  const tree = mkdtempSync(join(tmpdir(), 'tsplice-build-status-'));
  after(() => rmSync(tree, { recursive: true, force: true }));
  const file = (path: string, text: string): void => {
    mkdirSync(dirname(join(tree, path)), { recursive: true });
    writeFileSync(join(tree, path), text);
  };
  file('Kbuild', 'obj-y += kernel/\nobj-y += mm/ fs/\nobj-y += arch/$(SRCARCH)/\nobj-$(CONFIG_NET) += net/\nobj-$(CONFIG_OF) += of/\nobj-y += virt/\n');
  file('Makefile', 'core-y :=\ndrivers-y :=\nlibs-y := lib/\ninclude $(srctree)/arch/$(SRCARCH)/Makefile\n');
  file('arch/x86/Makefile', 'drivers-$(CONFIG_PCI) += arch/x86/pci/\n');
  file('arch/x86/Kbuild', 'obj-$(CONFIG_KVM) += kvm/\nobj-y += kernel/\n');
  file('arch/x86/kernel/Makefile', 'obj-y += head_$(BITS).o\n');
  file('arch/x86/pci/Makefile', 'obj-y += common.o\n');
  file('arch/x86/kvm/Makefile', 'include $(srctree)/virt/kvm/Makefile.kvm\nkvm-y += x86.o mmu/mmu.o\nobj-$(CONFIG_KVM) += kvm.o\n');
  file('virt/Makefile', 'obj-y += lib/\n');
  file('virt/kvm/Makefile.kvm', 'KVM ?= ../../../virt/kvm\nkvm-y := $(KVM)/kvm_main.o\n');
  file('arch/arm/Makefile', 'core-y += arch/arm/kernel/\n');
  file('arch/arm/kernel/Makefile', 'obj-y += setup.o\n');
  file(
    'kernel/Makefile',
    [
      'obj-y += fork.o',
      'obj-m += loadable.o',
      'obj-$(CONFIG_ON) += on.o',
      'obj-$(CONFIG_MOD) += mod.o',
      'obj-$(CONFIG_OFF) += off.o',
      'obj-$(subst m,y,$(CONFIG_MOD)) += forced.o',
      'foo-y := a.o b.o',
      'foo-$(CONFIG_OFF) += c.o',
      'obj-y += foo.o',
      'bar-objs := d.o',
      'bar-$(CONFIG_MOD) += e.o',
      'obj-$(CONFIG_MOD) += bar.o',
      'ifeq ($(CONFIG_ON),y)',
      'obj-y += when-on.o',
      'else',
      'obj-y += when-off.o',
      'endif',
      'ifdef CONFIG_OFF',
      'obj-y += under-off.o',
      'endif',
      '# obj-y += commented.o',
      'hostprogs := gen',
      'obj-y += sched/',
      '',
    ].join('\n'),
  );
  file('kernel/sched/Makefile', 'obj-y += build_policy.o\n');
  file('mm/Makefile', 'mmu-y := nommu.o\nmmu-$(CONFIG_MMU) := memory.o\nobj-y := util.o $(mmu-y)\n');
  file('fs/Makefile', 'common := x.o y.o\nobj-$(CONFIG_ON) += $(common)\n');
  file('lib/Makefile', 'lib-y += string.o\nobj-$(CONFIG_MPILIB) += mpi/\n');
  file('lib/mpi/Makefile', 'obj-$(CONFIG_MPILIB) = mpi.o\nmpi-y = mpicoder.o\n');
  file('of/Makefile', 'obj-y += base.o\n');
  file('net/Makefile', 'obj-y += core/\n');
  file('net/core/Makefile', 'obj-y += sock.o\n');
  file(
    'include/config/auto.conf',
    ['CONFIG_ON=y', 'CONFIG_MOD=m', 'CONFIG_MMU=y', 'CONFIG_KVM=m', 'CONFIG_PCI=y', 'CONFIG_64BIT=y', 'CONFIG_MPILIB=y', 'CONFIG_NET=y', ''].join('\n'),
  );
  const reader = new KbuildReader(tree);

  it('reads obj-y, obj-m and lib-y', () => {
    assert.equal(reader.unit('kernel/fork.c'), 'built-in');
    assert.equal(reader.unit('kernel/loadable.c'), 'module');
    assert.equal(reader.unit('lib/string.c'), 'built-in');
    assert.equal(reader.unit('arch/x86/kernel/head_64.S'), 'built-in');
  });

  it('reads obj-$(CONFIG_X) with X=y, m or unset', () => {
    assert.equal(reader.unit('kernel/on.c'), 'built-in');
    assert.equal(reader.unit('kernel/mod.c'), 'module');
    assert.equal(reader.unit('kernel/off.c'), 'not built');
    assert.equal(reader.unit('kernel/forced.c'), 'built-in');
  });

  it('gives the parts of a composite object its status', () => {
    assert.equal(reader.unit('kernel/a.c'), 'built-in');
    assert.equal(reader.unit('kernel/b.c'), 'built-in');
    assert.equal(reader.unit('kernel/c.c'), 'not built');
    assert.equal(reader.unit('kernel/d.c'), 'module');
    assert.equal(reader.unit('kernel/e.c'), 'module');
    assert.equal(reader.unit('lib/mpi/mpicoder.c'), 'built-in');
  });

  it('evaluates conditionals on the configuration, and list variables in order', () => {
    assert.equal(reader.unit('kernel/when-on.c'), 'built-in');
    assert.equal(reader.unit('kernel/when-off.c'), 'not built');
    assert.equal(reader.unit('kernel/under-off.c'), 'not built');
    assert.equal(reader.unit('mm/memory.c'), 'built-in');
    assert.equal(reader.unit('mm/nommu.c'), 'not built');
    assert.equal(reader.unit('fs/x.c'), 'built-in');
    assert.equal(reader.unit('kernel/gen.c'), 'not built');
    assert.equal(reader.unit('kernel/commented.c'), 'unknown');
  });

  it('descends only into the folders a Makefile above lists for this configuration', () => {
    assert.equal(reader.folder('kernel'), 'built-in');
    assert.equal(reader.folder('kernel/sched'), 'built-in');
    assert.equal(reader.folder('lib/mpi'), 'built-in');
    assert.equal(reader.folder('arch/x86/pci'), 'built-in');
    assert.equal(reader.folder('arch/x86/kvm'), 'module');
    assert.equal(reader.folder('of'), 'not built');
    assert.equal(reader.unit('of/base.c'), 'not built');
    assert.equal(reader.unit('net/core/sock.c'), 'built-in');
    assert.equal(reader.unit('arch/x86/pci/common.c'), 'built-in');
  });

  it('leaves out other architectures, even where their own Makefile lists the unit', () => {
    assert.equal(reader.folder('arch/arm'), 'not built');
    assert.equal(reader.unit('arch/arm/kernel/setup.c'), 'not built');
  });

  it('finds units a Makefile above or elsewhere names by path', () => {
    assert.equal(reader.unit('arch/x86/kvm/x86.c'), 'module');
    assert.equal(reader.unit('arch/x86/kvm/mmu/mmu.c'), 'module');
    assert.equal(reader.unit('virt/kvm/kvm_main.c'), 'module');
  });

  it('names the folder that alone builds a unit it names by a ../ path, and no other', () => {
    assert.deepEqual(reader.namedOnlyFrom('virt/kvm/kvm_main.c'), { folder: 'arch/x86/kvm', word: '../../../virt/kvm/kvm_main.o' });
    // Named by its own folder's Makefile, or by one above: kbuild builds it alone.
    assert.equal(reader.namedOnlyFrom('arch/x86/kvm/mmu/mmu.c'), undefined);
    assert.equal(reader.namedOnlyFrom('kernel/fork.c'), undefined);
    assert.equal(reader.namedOnlyFrom('kernel/off.c'), undefined);
  });

  it('says unknown for a unit no Makefile names in a folder kbuild enters, and not built outside the kernel', () => {
    file('kernel/sched/rt.c', '');
    assert.equal(reader.unit('kernel/sched/rt.c'), 'unknown');
    assert.equal(reader.unit('tools/perf/util/expr.c'), 'not built');
  });

  it('buildStatus reads the tree once for one unit', () => {
    assert.equal(buildStatus(tree, 'kernel/fork.c'), 'built-in');
    assert.equal(readAutoConf(tree).get('CONFIG_MOD'), 'm');
  });
});
