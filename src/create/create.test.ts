/**
 * tsplice create on the prepared 6.1.170 tree of the lab kernel: real kernel files, patches of
 * our own (test/patches), each with the exact list of functions and data the update must
 * carry, or the refusal it must give. Each unit's pre object is compiled once, by kbuild,
 * and shared by every case that touches it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { chooseRelease } from '../debian/kernel-choice.js';
import { projectRoot } from '../host/project.js';
import { prepareTree, type PreparedTree } from '../kbuild/tree.js';
import { readUpdate } from '../update/format.js';
import { createUpdate } from './create.js';

const patchDir = join(projectRoot(), 'test', 'patches');
const patch = (name: string): string => join(patchDir, `${name}.patch`);
const quiet = (): void => {};

async function carried(tree: PreparedTree, name: string): Promise<{ functions: string[]; data: string[] }> {
  const { update } = await createUpdate({ tree, patches: [patch(name)], log: quiet });
  return {
    functions: update.functions.map((f) => `${f.name}:${f.status}`).sort(),
    data: update.data.map((d) => d.name).sort(),
  };
}

async function refusal(tree: PreparedTree, name: string): Promise<string> {
  try {
    await createUpdate({ tree, patches: [patch(name)], log: quiet });
  } catch (error) {
    return (error as Error).message;
  }
  assert.fail(`${name} was not refused`);
}

describe('tsplice create on the lab kernel tree', () => {
  let tree: PreparedTree;
  before(async () => {
    tree = await prepareTree(await chooseRelease(undefined, quiet), quiet);
  });

  it('a changed /proc output string: one function and the new string', async () => {
    assert.deepEqual(await carried(tree, 'proc-version-string'), {
      functions: ['version_proc_show:changed'],
      data: ['"tsplice: patched version_proc_show\\n"'],
    });
  });

  it('a new helper function and its changed caller', async () => {
    assert.deepEqual(await carried(tree, 'proc-uptime-new-helper'), {
      functions: ['uptime_hundredths:new', 'uptime_proc_show:changed'],
      data: [],
    });
  });

  it('a new global variable', async () => {
    assert.deepEqual(await carried(tree, 'proc-loadavg-new-global'), {
      functions: ['loadavg_proc_show:changed'],
      data: ['tsplice_loadavg_reads'],
    });
  });

  it('a new static local variable and a new format string', async () => {
    const result = await carried(tree, 'proc-cmdline-static-local');
    assert.deepEqual(result.functions, ['cmdline_proc_show:changed']);
    assert.deepEqual(result.data.map((d) => d.replace(/\.\d+$/, '.N')), ['" tsplice_reads=%u\\n"', 'reads.N']);
  });

  it('a changed __sched function inside .sched.text', async () => {
    assert.deepEqual(await carried(tree, 'timer-sched-function'), {
      functions: ['schedule_timeout_idle:changed'],
      data: [],
    });
  });

  it('refuses a patch whose only effect is moved WARN line numbers, naming them', async () => {
    const message = await refusal(tree, 'proc-generic-line-shift');
    assert.match(message, /^The patch changes no code: 6 function\(s\) differ only in line numbers \(/);
    assert.match(message, /proc_register/);
  });

  it('refuses a changed initial value of existing data, naming the symbol and the declaration that would answer it', async () => {
    assert.match(
      await refusal(tree, 'panic-timeout-initializer'),
      /kernel\/panic\.c: panic_timeout \(\.data\.panic_timeout\): changed initial value of existing data.*declare tsplice_data_change_handled\(panic_timeout\) and write the new value in a tsplice_apply hook/,
    );
  });

  it('refuses a changed __init function, naming it', async () => {
    assert.match(await refusal(tree, 'proc-version-init'), /proc_version_init \(\.init\.text\): changed __init function/);
  });

  it('refuses a comment-only patch as no code change', async () => {
    assert.equal(await refusal(tree, 'proc-cmdline-comment'), 'The patch changes no code built into the kernel or its modules.');
  });

  it('refuses a patch that only adds a function nothing calls, naming it', async () => {
    assert.match(await refusal(tree, 'proc-cmdline-unused-function'), /changes no running code: it only adds tsplice_cmdline_length, which no changed function calls/);
  });

  it('a real fix to a module unit: its one function, recorded against the module kbuild names', async () => {
    // 6.1.176's nft_ct fix (nft_ct_expect_obj_eval drops its reference on the expectation).
    const { update } = await createUpdate({ tree, patches: [patch('nft-ct-module')], log: quiet });
    assert.deepEqual(
      update.functions.map((f) => `${f.name}:${f.status}:${f.module ?? 'vmlinux'}`),
      ['nft_ct_expect_obj_eval:changed:nft_ct'],
    );
    assert.deepEqual(update.units.map((u) => `${u.unit}:${u.module ?? 'vmlinux'}`), ['net/netfilter/nft_ct.c:nft_ct']);
  });

  it('a part of a composite module is recorded against the composite (nft_exthdr.c is nf_tables)', async () => {
    const { update } = await createUpdate({ tree, patches: [patch('nft-exthdr-module')], log: quiet });
    assert.deepEqual(
      update.functions.map((f) => `${f.name}:${f.module ?? 'vmlinux'}`),
      ['nft_exthdr_init:nf_tables'],
    );
  });

  it('one update carries functions of vmlinux and of a module', async () => {
    const { update } = await createUpdate({ tree, patches: [patch('nft-ct-module'), patch('proc-version-string')], log: quiet });
    assert.deepEqual(
      update.functions.map((f) => `${f.name}:${f.module ?? 'vmlinux'}`).sort(),
      ['nft_ct_expect_obj_eval:nft_ct', 'version_proc_show:vmlinux'],
    );
  });

  it('names the file and hunk of a patch that does not apply', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsplice-badpatch-'));
    const bad = join(dir, 'stale.patch');
    writeFileSync(
      bad,
      '--- a/fs/proc/cmdline.c\n+++ b/fs/proc/cmdline.c\n@@ -7,3 +7,3 @@\n {\n-\tseq_puts(m, no_such_line);\n+\tseq_puts(m, other);\n \tseq_putc(m, \'\\n\');\n',
    );
    await assert.rejects(createUpdate({ tree, patches: [bad], log: quiet }), /stale\.patch does not apply to this tree: fs\/proc\/cmdline\.c hunk #1 \(at line 7\) failed\./);
  });

  it('refuses a file that does not compile with gcc\'s first error, as fields with --json, the command only with --verbose', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsplice-nocompile-'));
    const bad = join(dir, 'missing-header.patch');
    writeFileSync(bad, '--- a/kernel/sys.c\n+++ b/kernel/sys.c\n@@ -6,6 +6,7 @@\n  */\n \n #include <linux/export.h>\n+#include <linux/no-such-header.h>\n #include <linux/mm.h>\n #include <linux/mm_inline.h>\n #include <linux/utsname.h>\n');
    const cli = join(projectRoot(), 'bin', 'tsplice.js');
    const first = 'kernel/sys.c:9:10: fatal error: linux/no-such-header.h: No such file or directory';
    const sentence = `kernel/sys.c does not compile with the patch: ${first}.`;
    const r = spawnSync(process.execPath, [cli, 'create', '--patch', bad, '-o', join(dir, 'x.tsplice'), '--json'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.equal(r.stderr.trim().split('\n').pop(), `tsplice: ${sentence}`);
    assert.doesNotMatch(r.stderr, /objtool|gcc-12 /);
    assert.deepEqual(JSON.parse(r.stdout), { error: { kind: 'does-not-compile', unit: 'kernel/sys.c', reason: first, message: sentence } });
    const verbose = spawnSync(process.execPath, [cli, 'create', '--patch', bad, '-o', join(dir, 'x.tsplice'), '--verbose'], { encoding: 'utf8' });
    assert.notEqual(verbose.status, 0);
    assert.match(verbose.stderr, new RegExp(`tsplice: ${sentence.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n\\$ sh -e -c '\\S*gcc`));
    assert.match(verbose.stderr, /compilation terminated/);
    assert.doesNotMatch(verbose.stderr, /Can't open/);
  });

  it('writes an update that inspect reads back, with exit status 0, and refuses with non-zero', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsplice-create-cli-'));
    const output = join(dir, 'u.tsplice');
    const cli = join(projectRoot(), 'bin', 'tsplice.js');
    const ok = spawnSync(process.execPath, [cli, 'create', '--patch', patch('proc-version-string'), '-o', output], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    const update = readUpdate(output);
    assert.equal(update.target.release, tree.release);
    assert.equal(update.target.sourceVersion, tree.sourceVersion);
    assert.equal(update.functions[0]?.name, 'version_proc_show');
    assert.ok(update.functions[0]?.pre && update.functions[0].pre.size > 0);
    // The carried post code holds the ftrace site the running kernel will have rewritten.
    assert.equal(Buffer.from(update.functions[0]?.post.bytes ?? '', 'base64')[0], 0xe8);
    const inspect = spawnSync(process.execPath, [cli, 'inspect', output, '--json'], { encoding: 'utf8' });
    assert.equal(inspect.status, 0, inspect.stderr);
    assert.equal((JSON.parse(inspect.stdout) as { functions: { name: string }[] }).functions[0]?.name, 'version_proc_show');
    const refused = spawnSync(process.execPath, [cli, 'create', '--patch', patch('panic-timeout-initializer'), '-o', join(dir, 'r.tsplice')], { encoding: 'utf8' });
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /panic_timeout/);
  });
});
