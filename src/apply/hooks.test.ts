/**
 * A patch author's hooks and shadow data on the booted lab kernel (<linux/tsplice.h>,
 * docs/hooks.md), in one guest boot:
 * - every hook kind runs once per operation, in order, in its context: pre, post and fail in the
 *   tool's process after sleeping; check, apply and reverse inside stop_machine with interrupts
 *   off; a check_reverse hook that refuses aborts the undo, runs the fail hook, and the next undo
 *   goes through (proc-version-hooks);
 * - shadow data attached to each task that reads /proc/version, counted per task, and freed by
 *   the reverse hook (the core module's count goes back to 0);
 * - a check hook that refuses aborts the apply naming the hook and its value, runs the fail hook
 *   and leaves the kernel as it was (proc-version-check-refuses);
 * - a changed initial value declared handled: the apply hook moves the running value, the
 *   reverse hook restores it, in an update of hooks alone (panic-timeout-hooks);
 * - an __init change declared handled: held as applied with nothing written and no module
 *   (proc-version-init-declared).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { runGuestScript } from '../../tools/lab/guest-script.js';
import { labUpdates } from './lab-updates.js';
import { moduleNameFor } from '../update/module.js';
import { writeUpdate } from '../update/format.js';
import { createUpdate } from '../create/create.js';
import { ADAPTED_DIR } from '../../tools/corpus/adapted-corpus.js';

const GUEST_SCRIPT = `
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
const sh = (cmd) => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
const tryRun = (cmd) => { try { return { ok: true, out: sh(cmd + ' 2>&1') }; } catch (e) { return { ok: false, out: String(e.stdout) + String(e.stderr) }; } };
const tsplice = (args) => tryRun('tsplice ' + args);
const ids = JSON.parse(readFileSync('ids.json', 'utf8'));
const status = () => readFileSync('/proc/tsplice/status', 'utf8');
const version = () => readFileSync('/proc/version', 'utf8');
const dmesgAt = () => sh('dmesg').split('\\n').length;
const dmesgSince = (from) => sh('dmesg').split('\\n').slice(from - 1).join('\\n');
const report = { hooks: {}, refuses: {}, panic: {}, declared: {}, traceProbe: {} };

let from = dmesgAt();
const h = report.hooks;
h.before = version();
h.apply = tsplice('apply proc-version-hooks.tsplice');
h.first = version();
h.second = version();
h.otherTask = sh('cat /proc/version');
h.statusApplied = status();
h.refusedUndo = tsplice('undo ' + ids.hooks);
h.afterRefusedUndo = version();
h.undo = tsplice('undo ' + ids.hooks);
h.after = version();
h.statusUndone = status();
h.unload = tsplice('unload ' + ids.hooks);
h.dmesg = dmesgSince(from);

from = dmesgAt();
const r = report.refuses;
r.before = version();
r.apply = tsplice('apply proc-version-check-refuses.tsplice --json');
r.after = version();
r.list = sh('tsplice list --json');
r.modules = readFileSync('/proc/modules', 'utf8');
r.status = status();
r.dmesg = dmesgSince(from);

const p = report.panic;
// The lab boots with panic=-1: give panic_timeout its built-in initial value (0) first, as on a
// machine whose administrator left it alone; the hook moves only that value.
p.lab = readFileSync('/proc/sys/kernel/panic', 'utf8');
writeFileSync('/proc/sys/kernel/panic', '0');
p.before = readFileSync('/proc/sys/kernel/panic', 'utf8');
p.apply = tsplice('apply panic-timeout-hooks.tsplice');
p.applied = readFileSync('/proc/sys/kernel/panic', 'utf8');
p.status = status();
p.undo = tsplice('undo ' + ids.panic);
p.undone = readFileSync('/proc/sys/kernel/panic', 'utf8');
p.unload = tsplice('unload ' + ids.panic);
p.modules = readFileSync('/proc/modules', 'utf8');
// An administrator's value is left alone by the hooks.
writeFileSync('/proc/sys/kernel/panic', '7');
p.adminApply = tsplice('apply panic-timeout-hooks.tsplice');
p.adminApplied = readFileSync('/proc/sys/kernel/panic', 'utf8');
p.adminUndo = tsplice('undo ' + ids.panic);
tsplice('unload ' + ids.panic);
writeFileSync('/proc/sys/kernel/panic', p.lab.trim());

// An adapted corpus fix whose effect user space sees (kernel/trace/trace_probe.c): a kprobe
// event whose immediate string is only the opening quote is refused once it is applied.
const t = report.traceProbe;
const probe = (line) => { try { writeFileSync('/sys/kernel/tracing/kprobe_events', line + '\\n', { flag: 'a' }); return 'accepted'; } catch (e) { return 'refused: ' + e.code; } };
const emptyString = () => { const r = probe('p:tsplice_probe vfs_read s=\\\\":string'); if (r === 'accepted') probe('-:tsplice_probe'); return r; };
t.before = emptyString();
t.apply = tsplice('apply trace-probe-adapted.tsplice');
t.applied = emptyString();
t.wellFormed = probe('p:tsplice_probe vfs_read s=\\\\"tsplice\\":string');
probe('-:tsplice_probe');
t.undo = tsplice('undo ' + ids.traceProbe);
t.undone = emptyString();

const d = report.declared;
d.apply = tsplice('apply proc-version-init-declared.tsplice');
d.status = status();
d.version = version();
d.undo = tsplice('undo ' + ids.declared);
d.unload = tsplice('unload ' + ids.declared);
d.list = sh('tsplice list --json');
writeFileSync('report.json', JSON.stringify(report));
`;

interface Outcome {
  ok: boolean;
  out: string;
}
interface Report {
  hooks: {
    before: string;
    apply: Outcome;
    first: string;
    second: string;
    otherTask: string;
    statusApplied: string;
    refusedUndo: Outcome;
    afterRefusedUndo: string;
    undo: Outcome;
    after: string;
    statusUndone: string;
    unload: Outcome;
    dmesg: string;
  };
  refuses: { before: string; apply: Outcome; after: string; list: string; modules: string; status: string; dmesg: string };
  panic: {
    before: string;
    apply: Outcome;
    applied: string;
    status: string;
    undo: Outcome;
    undone: string;
    unload: Outcome;
    modules: string;
    adminApply: Outcome;
    adminApplied: string;
    adminUndo: Outcome;
  };
  declared: { apply: Outcome; status: string; version: string; undo: Outcome; unload: Outcome; list: string };
  traceProbe: { before: string; apply: Outcome; applied: string; wellFormed: string; undo: Outcome; undone: string };
}

/** The `tsplice-hook` lines of a kernel log, as their fields. */
function hookLines(dmesg: string): Record<string, string>[] {
  return dmesg
    .split('\n')
    .filter((l) => l.includes('tsplice-hook kind='))
    .map((l) => Object.fromEntries([...l.slice(l.indexOf('tsplice-hook ') + 13).matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1] as string, m[2] as string])));
}

describe('hooks and shadow data on the booted lab kernel', () => {
  let report: Report;
  const ids: Record<string, string> = {};

  before(async () => {
    const { kernel, tree, share, create } = await labUpdates('hooks');
    ids['hooks'] = (await create('proc-version-hooks')).id;
    ids['refuses'] = (await create('proc-version-check-refuses')).id;
    ids['panic'] = (await create('panic-timeout-hooks')).id;
    ids['declared'] = (await create('proc-version-init-declared')).id;
    const adapted = await createUpdate({ tree, patches: [join(ADAPTED_DIR, 'kernel-trace-trace_probe.patch')], headersDir: kernel.headersDir, distributionVersion: kernel.version, log: () => {} });
    writeUpdate(join(share, 'trace-probe-adapted.tsplice'), adapted.update);
    ids['traceProbe'] = adapted.update.id;
    writeFileSync(join(share, 'ids.json'), JSON.stringify(ids));
    const guest = await runGuestScript<Report>({ kernel, share, script: GUEST_SCRIPT, timeoutSeconds: 600 });
    assert.equal(guest.run.status, 0, guest.run.lines.slice(-30).join('\n'));
    assert.ok(guest.report, guest.run.lines.slice(-30).join('\n'));
    report = guest.report;
  });

  it('runs each hook kind in order, in its context, and a refused undo runs the fail hook', () => {
    const h = report.hooks;
    assert.ok(h.apply.ok, h.apply.out);
    assert.ok(!h.refusedUndo.ok, h.refusedUndo.out);
    assert.match(h.refusedUndo.out, /version_check_reverse/);
    assert.ok(h.undo.ok, h.undo.out);
    const lines = hookLines(h.dmesg);
    assert.deepEqual(
      lines.map((l) => l['kind']),
      ['pre_apply', 'check_apply', 'apply', 'post_apply', 'pre_reverse', 'check_reverse', 'fail_reverse', 'pre_reverse', 'check_reverse', 'reverse', 'post_reverse'],
      h.dmesg,
    );
    assert.deepEqual(
      lines.map((l) => l['value']),
      ['0', '0', '0', '0', '0', '-11', '0', '0', '0', '0', '0'],
    );
    for (const l of lines) {
      const inStop = l['kind'] === 'check_apply' || l['kind'] === 'apply' || l['kind'] === 'check_reverse' || l['kind'] === 'reverse';
      // Inside stop_machine: interrupts off, on a CPU's stopper thread. Outside: the tool's own
      // process, after msleep() (a sleep where sleeping is not allowed would have oopsed).
      assert.equal(l['irqs_disabled'], inStop ? '1' : '0', JSON.stringify(l));
      if (inStop) assert.match(l['comm'] ?? '', /^migration\/\d+$/, JSON.stringify(l));
      else {
        assert.equal(l['preempt_count'], '0', JSON.stringify(l));
        assert.doesNotMatch(l['comm'] ?? '', /^migration\//, JSON.stringify(l));
      }
    }
    assert.doesNotMatch(h.dmesg, /BUG|Oops|sleeping function called from invalid context/);
  });

  it('keeps shadow data per task while applied, and the reverse hook frees it', () => {
    const h = report.hooks;
    assert.ok(!h.before.includes('tsplice: read'));
    assert.match(h.first, /tsplice: read 1 time\(s\) by this task\n$/);
    assert.match(h.second, /tsplice: read 2 time\(s\) by this task\n$/);
    assert.match(h.otherTask, /tsplice: read 1 time\(s\) by this task\n$/);
    assert.match(h.afterRefusedUndo, /tsplice: read 3 time\(s\) by this task\n$/, 'the refused undo left the update applied');
    assert.match(h.statusApplied, /^shadow entries=[1-9]\d*$/m);
    assert.match(h.statusApplied, new RegExp(`^hook ${ids['hooks']} version_check_apply kind=check_apply addr=0x[0-9a-f]+ runs=1$`, 'm'));
    assert.equal(h.after, h.before);
    assert.match(h.statusUndone, /^shadow entries=0$/m);
    assert.ok(h.unload.ok, h.unload.out);
  });

  it('aborts an apply whose check hook refuses, naming hook and value, and changes nothing', () => {
    const r = report.refuses;
    assert.ok(!r.apply.ok);
    const error = JSON.parse(r.apply.out.slice(r.apply.out.indexOf('{'))) as { error?: { kind?: string; reason?: string } };
    assert.match(JSON.stringify(error), /version_check_apply/);
    assert.match(JSON.stringify(error), /-16/);
    assert.match(r.status, /^refusal .*reason=hook-refused hook=version_check_apply kind=check_apply value=-16 /m);
    assert.equal(r.after, r.before);
    assert.deepEqual(JSON.parse(r.list), []);
    assert.ok(!r.modules.includes(moduleNameFor(ids['refuses'] ?? '')), r.modules);
    assert.deepEqual(
      hookLines(r.dmesg).map((l) => l['kind']),
      ['pre_apply', 'check_apply', 'fail_apply'],
    );
  });

  it('moves a changed initial value with the apply hook and restores it with the reverse hook', () => {
    const p = report.panic;
    assert.ok(p.apply.ok, p.apply.out);
    assert.equal(p.before.trim(), '0');
    assert.equal(p.applied.trim(), '5');
    assert.match(p.status, new RegExp(`^update ${ids['panic']} state=applied owner=\\d+ functions=0 `, 'm'));
    assert.ok(p.undo.ok, p.undo.out);
    assert.equal(p.undone.trim(), '0');
    assert.ok(p.unload.ok, p.unload.out);
    assert.ok(!p.modules.includes(moduleNameFor(ids['panic'] ?? '')), p.modules);
    assert.ok(p.adminApply.ok, p.adminApply.out);
    assert.equal(p.adminApplied.trim(), '7', 'a value an administrator set is not the initial value: the hook leaves it');
    assert.ok(p.adminUndo.ok, p.adminUndo.out);
  });

  it('holds a fix of declarations alone as applied, with nothing written and no module', () => {
    const d = report.declared;
    assert.ok(d.apply.ok, d.apply.out);
    assert.match(d.status, new RegExp(`^update ${ids['declared']} state=applied owner=\\d+ functions=0 `, 'm'));
    assert.ok(!d.status.includes(`function ${ids['declared']} `));
    assert.ok(d.undo.ok, d.undo.out);
    assert.ok(d.unload.ok, d.unload.out);
    assert.deepEqual((JSON.parse(d.list) as { id: string }[]).filter((u) => u.id === ids['declared']), []);
  });

  it('applies an adapted corpus fix whose effect user space sees, and undoes it', () => {
    const t = report.traceProbe;
    // kernel/trace/trace_probe.c: an immediate string of only its opening quote read the byte
    // before it; the fix refuses it. A well-formed one stays accepted.
    assert.equal(t.before, 'accepted');
    assert.ok(t.apply.ok, t.apply.out);
    assert.match(t.applied, /^refused: EINVAL$/);
    assert.equal(t.wellFormed, 'accepted');
    assert.ok(t.undo.ok, t.undo.out);
    assert.equal(t.undone, 'accepted');
  });
});
