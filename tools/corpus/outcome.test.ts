/** The corpus totals: built-in and module fixes have shares of their own, and one combined. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { APPLIED_WITH_NEW_CODE, APPLY_CLASSES, CREATE_CLASSES, NOT_LIVE, classifyApplyError, createClasses, dmesgProblems, formatMarkdown, formatTotals, parseGuestRecords, totals, type CorpusPart, type CorpusRow } from './outcome.js';
import type { Diagnostic, DiagnosticKind } from '../../src/host/errors.js';

const row = (file: string, reason: string, part: CorpusPart | undefined, changesCode = true): CorpusRow => ({
  file,
  unit: file,
  outcome: reason,
  reason,
  changesCode,
  functions: 0,
  headers: 0,
  ...(part ? { part } : {}),
});

describe('corpus totals by part', () => {
  const rows = [
    row('kernel/a.c', 'applied', 'built-in'),
    row('kernel/b.c', 'refused at create: layout change', undefined),
    row('net/netfilter/nft_ct.c', 'applied', 'module'),
    row('fs/binfmt_misc.c', 'applied', 'module'),
    row('drivers/gpu/x.c', 'module does not load', 'module'),
    row('drivers/net/y.c', 'refused at create: no code change', 'module', false),
  ];
  const t = totals(rows, 1);

  it('counts a module that does not load against its part, not as applied', () => {
    assert.deepEqual(t.parts, [
      { part: 'built-in', files: 2, changesCode: 2, applied: 1, share: 0.5, withNewCode: 0, notLive: 0, liveShare: 0.5 },
      { part: 'module', files: 4, changesCode: 3, applied: 2, share: 2 / 3, withNewCode: 0, notLive: 0, liveShare: 2 / 3 },
    ]);
    assert.equal(t.applied, 3);
    assert.equal(t.changesCode, 5);
    assert.equal(t.share, 3 / 5);
    assert.equal(classifyApplyError({ error: { kind: 'module-not-loaded' } }), 'module does not load');
  });

  it('prints each part and the combined share', () => {
    const text = formatTotals(t);
    assert.match(text, /^files: 6; whose diff changes code: 5; applied without new code .*: 3 = 60\.0%$/m);
    assert.match(text, /^built-in: 2 files; 1 of 2 whose diff changes code applied without new code \(50\.0%\)$/m);
    assert.match(text, /^module: 4 files; 2 of 3 whose diff changes code applied without new code \(66\.7%\)$/m);
    assert.match(formatMarkdown(rows, t), /^- module: 4 files; 2 of 3 /m);
  });

  it('counts fixes applied with new code and those not applicable live apart, with the new lines', () => {
    const adapted = (file: string, newLines: number): CorpusRow => ({ ...row(file, APPLIED_WITH_NEW_CODE, 'built-in'), adapted: { patch: `adapted/${file}.patch`, newLines } });
    const withNew = totals(
      [row('kernel/a.c', 'applied', 'built-in'), adapted('kernel/exit.c', 12), adapted('kernel/fork.c', 4), adapted('fs/dcache.c', 30), { ...row('kernel/x.c', NOT_LIVE, 'built-in'), adapted: { notLive: 'sized at boot' } }],
      1,
    );
    const builtIn = withNew.parts[0];
    assert.equal(builtIn?.applied, 1);
    assert.equal(builtIn?.withNewCode, 3);
    assert.equal(builtIn?.notLive, 1);
    assert.equal(builtIn?.liveShare, 4 / 5);
    assert.deepEqual(builtIn?.newLines, { n: 3, median: 12, min: 4, max: 30 });
    assert.match(
      formatTotals(withNew),
      /^built-in: 5 files; 1 of 5 whose diff changes code applied without new code \(20\.0%\); 3 applied with new code \(60\.0%; new lines median 12, largest 30\); 1 not applicable live \(20\.0%\); live with or without new code: 4 = 80\.0%$/m,
    );
  });

  it('prints only the parts a run had', () => {
    assert.deepEqual(totals([row('kernel/a.c', 'applied', undefined)], 1).parts.map((p) => p.part), ['built-in']);
  });
});

describe('corpus timings', () => {
  it('prints the median and spread of each step over the updates that reached it', () => {
    const timed = (file: string, createSeconds: number, applyMs?: number, pauseUs?: number, undoMs?: number): CorpusRow => ({
      ...row(file, applyMs === undefined ? 'refused at create: layout change' : 'applied', 'module'),
      createSeconds,
      ...(applyMs !== undefined ? { applyMs } : {}),
      ...(pauseUs !== undefined ? { pauseUs } : {}),
      ...(undoMs !== undefined ? { undoMs } : {}),
    });
    const t = totals([timed('a.c', 8, 5000, 60, 100), timed('b.c', 2), timed('c.c', 10, 3000, 100, 300), timed('d.c', 6, 4000, 80, 200)], 1);
    assert.deepEqual(t.timings.apply, { n: 3, median: 4000, min: 3000, max: 5000 });
    assert.deepEqual(t.timings.create, { n: 4, median: 7, min: 2, max: 10 });
    const line = 'median (min–max, n) per update: create 7.0 (2.0–10.0, n=4) s; apply 4.0 (3.0–5.0, n=3) s; undo 0.20 (0.10–0.30, n=3) s; pause 80 (60–100, n=3) µs';
    assert.ok(formatTotals(t).split('\n').includes(line), formatTotals(t));
    assert.ok(formatMarkdown([], t).split('\n').includes(`- ${line}`));
    assert.deepEqual(totals([row('a.c', 'applied', undefined)], 1).timings, {});
  });
});

it('counts the first boot of each guest run side by side as no reboot', () => {
  assert.equal(totals([], 3, 2).reboots, 1);
  assert.equal(totals([], 2, 2).reboots, 0);
  assert.equal(totals([], 1).reboots, 0);
});

describe('outcomes', () => {
  it('classes create refusals, layout change first', () => {
    // What create reports for 'The patch cannot be made into a safe update:\n  a.c: x (.data): data layout change: …\n  a.c: y (.data): changed initial value …'.
    assert.deepEqual(
      createClasses([
        { kind: 'changed-initializer', unit: 'a.c', section: '.data', reason: 'y: changed initial value of existing data (z)' },
        { kind: 'layout-change', unit: 'a.c', function: 'x', section: '.debug_info', reason: 'struct s: data layout change: struct s grew' },
      ]),
      ['layout change', 'changed initializer'],
    );
    assert.deepEqual(createClasses([{ kind: 'too-many-units', unit: 'include/linux/fwnode.h', reason: 'include/linux/fwnode.h is included by 1500 units built into vmlinux, more than the 40 that create rebuilds for a changed header.' }]), [
      'header change: too many units include it',
    ]);
    assert.deepEqual(createClasses([{ kind: 'unclassified', reason: 'something new' }]), ['create error']);
    assert.deepEqual(createClasses([]), ['create error']);
    assert.deepEqual(
      createClasses([{ kind: 'changed-initializer', unit: 'net/ipv4/udp.c', section: '__dyndbg', offset: 0x20, reason: 'descriptor.10: changed initial value of existing data (bytes differ at +0x20); the running kernel\'s copy is live state: it needs a hook' }]),
      ['changed initializer: __dyndbg descriptor (line number)'],
    );
  });

  it('gives every create class from the kind it stands for', () => {
    const byKind: [string, Diagnostic][] = [
      ['layout change', { kind: 'layout-change', reason: '' }],
      ['header change: too many units include it', { kind: 'too-many-units', reason: '' }],
      ['header change: another unit must change too', { kind: 'unit-must-change', reason: '' }],
      ['only adds functions nothing calls', { kind: 'only-new-functions', reason: '' }],
      ['header change', { kind: 'stacked-header-change', reason: '' }],
      ['__init code or data', { kind: 'init-change', reason: '' }],
      ['changed initializer: __dyndbg descriptor (line number)', { kind: 'changed-initializer', section: '__dyndbg', reason: '' }],
      ['changed initializer: renumbered __BTF_ID__ name', { kind: 'changed-btf-id', reason: '' }],
      ['changed initializer', { kind: 'changed-initializer', section: '.data.x', reason: '' }],
      ['changed table', { kind: 'changed-table', reason: '' }],
      ['unknown special section', { kind: 'unknown-special-section', reason: '' }],
      ['no DWARF', { kind: 'no-dwarf', reason: '' }],
      ['no code change', { kind: 'no-code-change', reason: '' }],
      ['#included file (not a unit)', { kind: 'not-a-unit', reason: '' }],
      ['compiled only with its whole folder', { kind: 'built-by-another-folder', reason: '' }],
      ['module or not built', { kind: 'not-built-in', reason: '' }],
      ['unit of several modules', { kind: 'several-modules', reason: '' }],
      ['unit of vmlinux and a module', { kind: 'built-in-and-module', reason: '' }],
      ['patch does not apply', { kind: 'patch-does-not-apply', reason: '' }],
      ['unnamed data reference', { kind: 'unnamed-data-reference', reason: '' }],
      ['compile error', { kind: 'does-not-compile', reason: '' }],
    ];
    assert.deepEqual(byKind.map(([name]) => name), CREATE_CLASSES.map(([name]) => name));
    for (const [name, d] of byKind) assert.deepEqual(createClasses([d]), [name]);
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
    // From the {"error": …} of `tsplice apply --json`: 'The running kernel does not match the update: f at 0x1+0x4: …'.
    assert.equal(classifyApplyError({ error: { kind: 'match-failed' } }), 'match failed');
    // 'Cannot apply update u: task 1 (sh) is inside function f (f+0x10 is on its stack)'.
    assert.equal(classifyApplyError({ error: { kind: 'busy' } }), 'busy');
    // 'The new code refers to .LC0, which the running kernel does not have (not in /proc/kallsyms).'
    assert.equal(classifyApplyError({ error: { kind: 'unresolved-reference' } }), 'unresolved reference');
    // 'tsplice apply u.tsplice --json threw TypeError: …'.
    assert.equal(classifyApplyError({}), 'apply crashed');
    assert.equal(classifyApplyError({ error: { kind: 'wrong-kernel' } }), 'apply error');
    const kinds: [DiagnosticKind, string][] = [
      ['ambiguous', 'ambiguous static'],
      ['nothing-to-stage', 'nothing to stage'],
      ['insmod-failed', 'insmod failed'],
    ];
    for (const [kind, outcome] of kinds) assert.equal(classifyApplyError({ error: { kind } }), outcome);
    assert.ok(APPLY_CLASSES.size >= 7);
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
