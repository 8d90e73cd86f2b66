/**
 * Updates made by `tsplice create` from our kernel patches, applied to the booted 6.1.170
 * lab kernel and undone, with the effect seen from user space. One guest boot runs a checking
 * script that writes what it saw to a report; the checks below assert on the report.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { createUpdate } from '../create/create.js';
import { prepareTree } from '../kbuild/tree.js';
import { runGuestScript } from '../../tools/lab/guest-script.js';
import { labUpdates, testPatch as patch } from './lab-updates.js';
import { writeUpdate } from '../update/format.js';
import { moduleNameFor } from '../update/module.js';

const quiet = (): void => {};

/** The updates the guest applies, by file name in the share. */
const UPDATES = ['proc-version-string', 'proc-uptime-new-helper', 'proc-loadavg-new-global', 'proc-cmdline-static-local', 'timer-sched-function', 'sys-newuname-machine', 'pipe-read-null', 'proc-version-pr-debug', 'pipe-read-tail-call'];

const UNAME_PROBE = `#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
int main(void)
{
	struct utsname u;
	long r = syscall(SYS_uname, &u);
	printf("{\\"machine\\":\\"%s\\",\\"rc\\":%ld,", r == 0 ? u.machine : "?", r);
	errno = 0;
	r = syscall(SYS_uname, (void *)1);
	printf("\\"badPointerRc\\":%ld,\\"badPointerErrno\\":%d}\\n", r, errno);
	return 0;
}
`;

/** Runs in the guest (node): applies, observes, undoes, and writes report.json. */
const GUEST_SCRIPT = `
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
const sh = (cmd) => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
const tryRun = (cmd) => { try { return { ok: true, out: sh(cmd + ' 2>&1') }; } catch (e) { return { ok: false, out: String(e.stdout) + String(e.stderr) + ' (status ' + e.status + ', signal ' + e.signal + ')' }; } };
const tsplice = (args) => tryRun('tsplice ' + args);
const peek = (name) => JSON.parse(sh('tsplice peek ' + name + ' --length 16 --json')).bytes;
const ids = JSON.parse(readFileSync('ids.json', 'utf8'));
const report = { updates: {}, dmesgBefore: sh('dmesg').split('\\n').length };
const observe = () => ({
  version: readFileSync('/proc/version', 'utf8'),
  cmdline: readFileSync('/proc/cmdline', 'utf8'),
  cmdline2: readFileSync('/proc/cmdline', 'utf8'),
  uptime: readFileSync('/proc/uptime', 'utf8'),
  loadavg: readFileSync('/proc/loadavg', 'utf8'),
  uname: JSON.parse(sh('./uname_probe')),
});
for (const [name, id] of Object.entries(ids)) {
  if (name.startsWith('pipe-read') || name === 'proc-version-pr-debug' || name.startsWith('mismatch') || name.endsWith('-second')) continue;
  const entry = { before: observe() };
  const fn = JSON.parse(sh('tsplice inspect ' + name + '.tsplice --json')).functions.find((f) => f.status === 'changed').name;
  entry.function = fn;
  entry.bytesBefore = peek(fn);
  entry.apply = tsplice('apply ' + name + '.tsplice --json');
  entry.list = JSON.parse(sh('tsplice list --json'));
  entry.after = observe();
  entry.bytesAfter = peek(fn);
  entry.undo = tsplice('undo ' + id);
  entry.undone = observe();
  entry.bytesUndone = peek(fn);
  entry.modulesAfterUndo = readFileSync('/proc/modules', 'utf8');
  entry.listAfterUndo = JSON.parse(sh('tsplice list --json'));
  entry.unload = tsplice('unload ' + id);
  entry.modulesAfterUnload = readFileSync('/proc/modules', 'utf8');
  report.updates[name] = entry;
}
// ftrace on a replaced function
tsplice('apply proc-version-string.tsplice');
sh('echo version_proc_show > /sys/kernel/tracing/set_ftrace_filter; echo function > /sys/kernel/tracing/current_tracer');
report.tracedVersion = readFileSync('/proc/version', 'utf8');
report.trace = sh('cat /sys/kernel/tracing/trace');
report.tracedBytes = peek('version_proc_show');
sh('echo nop > /sys/kernel/tracing/current_tracer; echo > /sys/kernel/tracing/set_ftrace_filter');
report.undoTraced = tsplice('undo ' + ids['proc-version-string']);
// two stacked updates to one function: apply in order, undo in reverse order only
report.stack = {};
report.stack.first = tsplice('apply proc-version-string.tsplice');
report.stack.second = tsplice('apply proc-version-string-second.tsplice');
report.stack.both = readFileSync('/proc/version', 'utf8');
report.stack.undoFirstTooEarly = tsplice('undo ' + ids['proc-version-string']);
report.stack.undoSecond = tsplice('undo ' + ids['proc-version-string-second']);
report.stack.afterUndoSecond = readFileSync('/proc/version', 'utf8');
report.stack.undoFirst = tsplice('undo ' + ids['proc-version-string']);
report.stack.afterUndoFirst = readFileSync('/proc/version', 'utf8');
// busy: a task blocked reading an empty pipe sleeps in pipe_read
const writer = spawn('sh', ['-c', 'sleep 600 | cat'], { detached: true, stdio: 'ignore' });
sh('sleep 1');
report.catPid = sh("ps -o pid,comm | awk '$2==\\"cat\\" {print $1}'").trim();
report.busy = tsplice('apply pipe-read-null.tsplice --tries 2 --retry-ms 100');
report.busyList = sh('tsplice list --json');
report.busyModules = readFileSync('/proc/modules', 'utf8');
report.busyBytes = peek('pipe_read');
process.kill(-writer.pid, 'SIGKILL');
sh('sleep 1');
report.afterBusy = tsplice('apply pipe-read-null.tsplice --tries 2 --retry-ms 100');
report.afterBusyPipe = sh('echo through-the-pipe | cat');
report.undoAfterBusy = tsplice('undo ' + ids['pipe-read-null']);
// undo while a task sleeps in new code that the replaced function reached by a tail call:
// no word of the replaced function's new code is on its stack, only the module's other code
report.tail = { apply: tsplice('apply pipe-read-tail-call.tsplice') };
const reader = spawn('sh', ['-c', 'sleep 600 | cat'], { detached: true, stdio: 'ignore' });
sh('sleep 1');
report.tail.busyUndo = tsplice('undo ' + ids['pipe-read-tail-call'] + ' --tries 2 --retry-ms 100');
report.tail.modules = readFileSync('/proc/modules', 'utf8');
report.tail.list = sh('tsplice list --json');
process.kill(-reader.pid, 'SIGKILL');
sh('sleep 1');
report.tail.undo = tsplice('undo ' + ids['pipe-read-tail-call'] + ' --tries 2 --retry-ms 100');
report.tail.pipe = sh('echo after-undo | cat');
// a new pr_debug: dynamic debug knows its descriptor (under the update module) and turns it on
report.dyndbg = { apply: tsplice('apply proc-version-pr-debug.tsplice') };
tryRun('mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug');
report.dyndbg.control = tryRun("grep 'tsplice: /proc/version read by' /sys/kernel/debug/dynamic_debug/control");
report.dyndbg.enable = tryRun("echo 'format \\"tsplice: /proc/version read by\\" +p' > /sys/kernel/debug/dynamic_debug/control");
readFileSync('/proc/version', 'utf8');
report.dyndbg.dmesg = sh('dmesg | tail -20');
report.dyndbg.undo = tsplice('undo ' + ids['proc-version-pr-debug']);
// an update built from another source version
report.mismatch = tsplice('apply mismatch-176.tsplice');
report.mismatchModules = readFileSync('/proc/modules', 'utf8');
report.dmesg = sh('dmesg').split('\\n').slice(report.dmesgBefore).join('\\n');
writeFileSync('report.json', JSON.stringify(report));
`;

interface Observed {
  version: string;
  cmdline: string;
  cmdline2: string;
  uptime: string;
  loadavg: string;
  uname: { machine: string; rc: number; badPointerRc: number; badPointerErrno: number };
}
interface Outcome {
  ok: boolean;
  out: string;
}
interface UpdateEntry {
  function: string;
  before: Observed;
  after: Observed;
  undone: Observed;
  bytesBefore: string;
  bytesAfter: string;
  bytesUndone: string;
  apply: Outcome;
  undo: Outcome;
  list: { id: string; state: string }[];
  modulesAfterUndo: string;
  listAfterUndo: { id: string; state: string }[];
  unload: Outcome;
  modulesAfterUnload: string;
}
interface Report {
  updates: Record<string, UpdateEntry>;
  tracedVersion: string;
  trace: string;
  tracedBytes: string;
  undoTraced: Outcome;
  catPid: string;
  busy: Outcome;
  busyList: string;
  busyModules: string;
  busyBytes: string;
  afterBusy: Outcome;
  afterBusyPipe: string;
  undoAfterBusy: Outcome;
  mismatch: Outcome;
  mismatchModules: string;
  dyndbg: { apply: Outcome; control: Outcome; enable: Outcome; dmesg: string; undo: Outcome };
  tail: { apply: Outcome; busyUndo: Outcome; modules: string; list: string; undo: Outcome; pipe: string };
  stack: {
    first: Outcome;
    second: Outcome;
    both: string;
    undoFirstTooEarly: Outcome;
    undoSecond: Outcome;
    afterUndoSecond: string;
    undoFirst: Outcome;
    afterUndoFirst: string;
  };
  dmesg: string;
}

describe('apply and undo on the booted lab kernel', () => {
  let report: Report;
  const ids: Record<string, string> = {};

  before(async () => {
    const { release, kernel, tree, share, create } = await labUpdates('apply');
    for (const name of UPDATES) ids[name] = (await create(name)).id;
    // A second update made on top of the first: the two stack on version_proc_show.
    const first = await createUpdate({ tree, patches: [patch('proc-version-string')], headersDir: kernel.headersDir, distributionVersion: kernel.version, log: quiet });
    const { update: second } = await createUpdate({
      tree,
      patches: [patch('proc-version-string-second')],
      onTopOf: first.update,
      headersDir: kernel.headersDir,
      distributionVersion: kernel.version,
      log: quiet,
    });
    writeUpdate(join(share, 'proc-version-string-second.tsplice'), second);
    ids['proc-version-string-second'] = second.id;
    // The same fix made against 6.1.176's source: its pre code is not what runs.
    const newer = await prepareTree(release, quiet, '6.1.176-1');
    const { update: mismatch } = await createUpdate({ tree: newer, patches: [patch('rdma-charge-errno')], headersDir: kernel.headersDir, log: quiet });
    writeUpdate(join(share, 'mismatch-176.tsplice'), mismatch);
    ids['mismatch-176'] = mismatch.id;
    writeFileSync(join(share, 'ids.json'), JSON.stringify(ids));
    writeFileSync(join(share, 'uname_probe.c'), UNAME_PROBE);
    execFileSync('gcc', ['-static', '-O2', '-o', join(share, 'uname_probe'), join(share, 'uname_probe.c')]);
    const guest = await runGuestScript<Report>({ kernel, share, script: GUEST_SCRIPT, timeoutSeconds: 900 });
    assert.equal(guest.run.status, 0, guest.run.lines.slice(-30).join('\n'));
    assert.ok(guest.report, guest.run.lines.slice(-30).join('\n'));
    report = guest.report;
  });

  const entry = (name: string): UpdateEntry => {
    const e = report.updates[name];
    assert.ok(e, `no report for ${name}`);
    return e;
  };

  it('applies every update, and the kernel lists it as applied', () => {
    for (const name of Object.keys(report.updates)) {
      const e = entry(name);
      assert.ok(e.apply.ok, `${name}: ${e.apply.out}`);
      assert.ok(e.list.some((u) => u.id === ids[name] && u.state === 'applied'), `${name}: ${JSON.stringify(e.list)}`);
      assert.ok(e.undo.ok, `${name}: ${e.undo.out}`);
    }
    // pipe-read-null, pipe-read-tail-call and proc-version-pr-debug have checks of their own below.
    assert.equal(Object.keys(report.updates).length, UPDATES.length - 3);
  });

  it('writes a jump right after the __fentry__ site and restores the bytes on undo', () => {
    for (const name of Object.keys(report.updates)) {
      const e = entry(name);
      const site = e.bytesBefore.startsWith('0f1f440000') ? 10 : 0; // hex chars
      assert.equal(e.bytesAfter.slice(site, site + 2), 'e9', `${name} (${e.function}): ${e.bytesAfter}`);
      assert.equal(e.bytesAfter.slice(0, site), e.bytesBefore.slice(0, site), `${name}: the __fentry__ site must stay intact`);
      assert.equal(e.bytesUndone, e.bytesBefore, name);
    }
    // __do_sys_newuname is notrace: no __fentry__ site, so the jump is at its entry.
    assert.equal(entry('sys-newuname-machine').bytesAfter.slice(0, 2), 'e9');
  });

  it('shows a changed /proc output while applied, and the old one after undo', () => {
    const e = entry('proc-version-string');
    assert.ok(!e.before.version.includes('tsplice: patched'));
    assert.ok(e.after.version.endsWith('tsplice: patched version_proc_show\n'), e.after.version);
    assert.equal(e.undone.version, e.before.version);
  });

  it('keeps a new static local live across calls of the new code', () => {
    const e = entry('proc-cmdline-static-local');
    assert.match(e.after.cmdline, / tsplice_reads=1\n$/);
    assert.match(e.after.cmdline2, / tsplice_reads=2\n$/);
    assert.equal(e.undone.cmdline, e.before.cmdline);
  });

  it('changes a syscall\'s result, and a bad user pointer faulting in the new code returns -EFAULT', () => {
    const e = entry('sys-newuname-machine');
    assert.equal(e.before.uname.machine, 'x86_64');
    assert.equal(e.after.uname.machine, 'tsplice');
    assert.equal(e.after.uname.badPointerRc, -1);
    assert.equal(e.after.uname.badPointerErrno, 14); // EFAULT
    assert.equal(e.undone.uname.machine, 'x86_64');
  });

  it('keeps /proc readers working through updates that add a function and a global', () => {
    for (const name of ['proc-uptime-new-helper', 'proc-loadavg-new-global']) {
      const e = entry(name);
      assert.match(e.after.uptime, /^\d+\.\d\d \d+\.\d\d\n$/);
      assert.match(e.after.loadavg, /^\d+\.\d\d \d+\.\d\d \d+\.\d\d \d+\/\d+ \d+\n$/);
    }
  });

  it('keeps each update module after undo, reverted in the kernel, until unload removes it', () => {
    for (const name of Object.keys(report.updates)) {
      const e = entry(name);
      const moduleName = moduleNameFor(ids[name] ?? '');
      const loaded = (modules: string): boolean => modules.split('\n').some((l) => l.startsWith(`${moduleName} `));
      assert.ok(loaded(e.modulesAfterUndo), `${name}: undo unloaded ${moduleName}`);
      assert.ok(e.listAfterUndo.some((u) => u.id === ids[name] && u.state === 'reverted'), `${name}: ${JSON.stringify(e.listAfterUndo)}`);
      assert.ok(e.unload.ok, `${name}: ${e.unload.out}`);
      assert.ok(!loaded(e.modulesAfterUnload), `${name}: unload left ${moduleName} loaded`);
    }
  });

  it('keeps ftrace working on a replaced function', () => {
    assert.ok(report.tracedVersion.includes('tsplice: patched'));
    assert.match(report.trace, /version_proc_show/);
    assert.equal(report.tracedBytes.slice(0, 2), 'e8', 'tracing turns the __fentry__ nop into a call');
    assert.equal(report.tracedBytes.slice(10, 12), 'e9', 'and our jump after it stays');
    assert.ok(report.undoTraced.ok, report.undoTraced.out);
    assert.doesNotMatch(report.dmesg, /ftrace (failed|bug)|WARNING:|BUG:|Oops/);
  });

  it('stacks two updates on one function, and undoes them only in reverse order', () => {
    const st = report.stack;
    assert.ok(st.first.ok, st.first.out);
    assert.ok(st.second.ok, st.second.out);
    assert.ok(st.both.endsWith('tsplice: patched version_proc_show\ntsplice: stacked on top\n'), st.both);
    assert.equal(st.undoFirstTooEarly.ok, false);
    assert.match(st.undoFirstTooEarly.out, new RegExp(`Update ${ids['proc-version-string-second']} replaced code of ${ids['proc-version-string']}: undo it first`));
    assert.ok(st.undoSecond.ok, st.undoSecond.out);
    assert.ok(st.afterUndoSecond.endsWith('tsplice: patched version_proc_show\n'), st.afterUndoSecond);
    assert.ok(st.undoFirst.ok, st.undoFirst.out);
    assert.ok(!st.afterUndoFirst.includes('tsplice'), st.afterUndoFirst);
  });

  it('aborts as busy while a task sleeps in the function, naming it, and applies once it is gone', () => {
    assert.equal(report.busy.ok, false);
    assert.match(report.busy.out, new RegExp(`task ${report.catPid} \\(cat\\) is inside function pipe_read`));
    assert.match(report.busy.out, /The kernel is unchanged\./);
    assert.ok(!report.busyList.includes(ids['pipe-read-null'] ?? '?'));
    assert.ok(!report.busyModules.includes('tsplice_pipe_read_null'));
    assert.ok(report.afterBusy.ok, report.afterBusy.out);
    assert.equal(report.afterBusyPipe, 'through-the-pipe\n');
    assert.ok(report.undoAfterBusy.ok, report.undoAfterBusy.out);
  });

  it('refuses an update built from another source version, naming the function and offset, loading nothing', () => {
    assert.equal(report.mismatch.ok, false);
    assert.match(report.mismatch.out, /does not match the update: rdmacg_try_charge at 0x[0-9a-f]+\+0x[0-9a-f]+: the bytes differ \(expected [0-9a-f ]+, running [0-9a-f ]+\)/);
    assert.ok(!report.mismatchModules.includes('tsplice_rdma'));
  });

  it('refuses undo while a task sleeps in new code reached by a tail call, and undoes once it is gone', () => {
    const t = report.tail;
    assert.ok(t.apply.ok, t.apply.out);
    assert.equal(t.busyUndo.ok, false, t.busyUndo.out);
    // The busy message names the task and the symbol its stack word points into: the new
    // pipe_read_body in the update module, which no replaced function's new code calls back.
    assert.match(t.busyUndo.out, /task \d+ \(cat\) is inside .*pipe_read_body[.\w]*\+0x[0-9a-f]+\/0x[0-9a-f]+ \[tsplice_pipe_read_tail_call/);
    const moduleName = moduleNameFor(ids['pipe-read-tail-call'] ?? '');
    assert.ok(t.modules.split('\n').some((l) => l.startsWith(`${moduleName} `)), 'the update module must stay loaded while a task is in it');
    assert.ok((JSON.parse(t.list) as { id: string; state: string }[]).some((u) => u.id === ids['pipe-read-tail-call'] && u.state === 'applied'), t.list);
    assert.ok(t.undo.ok, t.undo.out);
    assert.equal(t.pipe.trim(), 'after-undo');
  });

  it('registers a new pr_debug with dynamic debug, so it can be turned on and prints', () => {
    const d = report.dyndbg;
    assert.ok(d.apply.ok, d.apply.out);
    assert.ok(d.control.ok, `the descriptor is not in dynamic_debug/control: ${d.control.out}`);
    assert.match(d.control.out, /version_proc_show/);
    // dynamic_debug/control names the module a descriptor belongs to: `[tsplice_proc_version_pr_debug_…]`.
    assert.ok(d.control.out.includes(`[${moduleNameFor(ids['proc-version-pr-debug'] ?? '')}]`), d.control.out);
    assert.ok(d.enable.ok, d.enable.out);
    assert.match(d.dmesg, /tsplice: \/proc\/version read by node/);
    assert.ok(d.undo.ok, d.undo.out);
  });

  it('leaves no oops, BUG or WARNING in the kernel log', () => {
    assert.doesNotMatch(report.dmesg, /Oops|BUG:|WARNING:|general protection/);
  });
});
