/**
 * The module of a unit, from the command kbuild recorded: the forms kbuild 6.1 writes
 * (`-DMODULE`, `-DKBUILD_MODNAME='"name"'`, names joined with `:`), in a tree of `.cmd` files only.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { UserError } from '../host/errors.js';
import type { PreparedTree } from './tree.js';
import { moduleOf, modulesOfCommand } from './module-of.js';

const GCC = 'gcc-12 -Wp,-MMD,net/netfilter/.x.o.d -nostdinc -O2';
const builtIn = `${GCC} -DKBUILD_MODFILE='"kernel/sys"' -DKBUILD_BASENAME='"sys"' -DKBUILD_MODNAME='"sys"' -D__KBUILD_MODNAME=kmod_sys -c -o kernel/sys.o kernel/sys.c`;
const single = `${GCC} -DMODULE -DKBUILD_BASENAME='"xt_cpu"' -DKBUILD_MODNAME='"xt_cpu"' -D__KBUILD_MODNAME=kmod_xt_cpu -c -o net/netfilter/xt_cpu.o net/netfilter/xt_cpu.c`;
const composite = `${GCC} -DMODULE -DKBUILD_BASENAME='"nft_exthdr"' -DKBUILD_MODNAME='"nf_tables"' -D__KBUILD_MODNAME=kmod_nf_tables -c -o net/netfilter/nft_exthdr.o net/netfilter/nft_exthdr.c`;
const shared = `${GCC} -DMODULE -DKBUILD_BASENAME='"common"' -DKBUILD_MODNAME='"drv_a:drv_b"' -D__KBUILD_MODNAME=kmod_drv_a:drv_b -c -o drivers/x/common.o drivers/x/common.c`;

/** A tree holding only the recorded command of `unit`. */
function treeWith(unit: string, command: string): PreparedTree {
  const dir = mkdtempSync(join(tmpdir(), 'tsplice-module-of-'));
  const object = unit.replace(/\.c$/, '.o');
  const folder = join(dir, object.slice(0, object.lastIndexOf('/')));
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, `.${object.slice(object.lastIndexOf('/') + 1)}.cmd`), `cmd_${object} := ${command}\n`);
  return { release: 'test', sourceVersion: 'test', dir, makeVariables: [] };
}

function kindOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof UserError ? error.kind : 'not a UserError';
  }
  return undefined;
}

describe('the module of a unit, from kbuild', () => {
  it('reads the module names from a recorded command', () => {
    assert.deepEqual(modulesOfCommand(builtIn), []);
    assert.deepEqual(modulesOfCommand(single), ['xt_cpu']);
    assert.deepEqual(modulesOfCommand(composite), ['nf_tables']);
    assert.deepEqual(modulesOfCommand(shared), ['drv_a', 'drv_b']);
  });

  it('gives the module of a module unit, the composite module of a part of one, nothing for vmlinux', () => {
    assert.equal(moduleOf(treeWith('kernel/sys.c', builtIn), 'kernel/sys.c', 'built-in'), undefined);
    assert.equal(moduleOf(treeWith('net/netfilter/xt_cpu.c', single), 'net/netfilter/xt_cpu.c', 'module'), 'xt_cpu');
    assert.equal(moduleOf(treeWith('net/netfilter/nft_exthdr.c', composite), 'net/netfilter/nft_exthdr.c', 'module'), 'nf_tables');
  });

  it('refuses a unit of several modules, and one of vmlinux and a module, by name', () => {
    const tree = treeWith('drivers/x/common.c', shared);
    assert.equal(kindOf(() => moduleOf(tree, 'drivers/x/common.c', 'module')), 'several-modules');
    assert.throws(() => moduleOf(tree, 'drivers/x/common.c', 'module'), {
      message: 'drivers/x/common.c is linked into several modules (drv_a, drv_b); tsplice updates a unit of one module or of vmlinux.',
    });
    const both = treeWith('net/netfilter/xt_cpu.c', single);
    assert.equal(kindOf(() => moduleOf(both, 'net/netfilter/xt_cpu.c', 'built-in')), 'built-in-and-module');
  });
});
