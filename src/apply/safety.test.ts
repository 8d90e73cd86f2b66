/**
 * The switch beside the kernel's other users, on the booted 6.1.170 lab kernel (issue 10):
 * return addresses that the function-graph tracer and kretprobes (rethook) hide from the stack,
 * new code that outlives undo (a timer), the core module unloaded during an apply, and two
 * tsplice processes at once. One guest boot runs every scenario; the guest writes its report
 * after each one, so a scenario that crashes the kernel leaves the earlier ones readable and
 * is itself reported as the crash.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { runGuestScript } from '../../tools/lab/guest-script.js';
import { labUpdates } from './lab-updates.js';
import { readUpdate, writeUpdate } from '../update/format.js';
import { newKeyPair, readPrivateKey } from '../update/signature.js';
import { moduleNameFor } from '../update/module.js';


/** The updates the guest applies, by file name in the share. */
const UPDATES = ['nanosleep-count', 'proc-version-late-timer', 'proc-version-string'];

/** Runs in the guest (node): each scenario, then report.json (written after each scenario). */
const GUEST_SCRIPT = `
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
const T = '/sys/kernel/tracing';
const ids = JSON.parse(readFileSync('ids.json', 'utf8'));
const NS = ids['nanosleep-count'];
const sh = (cmd) => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
const outcome = (status, out) => ({ ok: status === 0, out });
const tryRun = (cmd) => { try { return outcome(0, sh(cmd + ' 2>&1')); } catch (e) { return outcome(e.status ?? -1, String(e.stdout) + String(e.stderr)); } };
const tsplice = (args) => tryRun('tsplice ' + args);
const pause = (ms) => new Promise((r) => setTimeout(r, ms));
const modules = () => readFileSync('/proc/modules', 'utf8');
const peek = (name) => tryRun('tsplice peek ' + name + ' --length 16 --json');
/** A command in the background: its outcome when it ends. */
const background = (cmd) => {
  const child = spawn('sh', ['-c', cmd + ' 2>&1'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  return { child, done: new Promise((r) => child.on('exit', (code) => r(outcome(code, out)))) };
};
/** A task asleep in do_nanosleep, started after the tracer or probe is in place. */
const sleeper = async () => { const s = background('exec sleep 600'); await pause(1500); return s; };
const stop = async (s) => { s.child.kill('SIGKILL'); await s.done; };
const graphOn = () => sh('echo schedule > ' + T + '/set_ftrace_filter; echo function_graph > ' + T + '/current_tracer');
const graphOff = () => sh('echo nop > ' + T + '/current_tracer; echo > ' + T + '/set_ftrace_filter');
const kretOn = () => sh("echo 'r:tsplice_sched schedule' >> " + T + '/kprobe_events; echo 1 > ' + T + '/events/kprobes/tsplice_sched/enable');
const kretOff = () => sh('echo 0 > ' + T + '/events/kprobes/tsplice_sched/enable; echo -:tsplice_sched >> ' + T + '/kprobe_events');
const report = { dmesgBefore: sh('dmesg').split('\\n').length };
const save = () => writeFileSync('report.json', JSON.stringify(report));
const hooks = { graph: [graphOn, graphOff], kretprobe: [kretOn, kretOff] };

// Apply while a task sleeps in the old do_nanosleep and its return address into it is hidden.
for (const [kind, [on, off]] of Object.entries(hooks)) {
  on();
  const s = await sleeper();
  const r = { pid: s.child.pid, apply: tsplice('apply nanosleep-count.tsplice --tries 2 --retry-ms 100'), list: tsplice('list --json') };
  off();
  await stop(s);
  if (r.apply.ok) r.cleanup = tsplice('undo ' + NS);
  report['apply-' + kind] = r;
  save();
}

// Undo while a task sleeps in the new do_nanosleep, hidden the same way.
for (const [kind, [on, off]] of Object.entries(hooks)) {
  const r = { apply: tsplice('apply nanosleep-count.tsplice') };
  on();
  const s = await sleeper();
  r.pid = s.child.pid;
  r.undo = tsplice('undo ' + NS + ' --tries 2 --retry-ms 100');
  r.modules = modules();
  report['undo-' + kind] = r;
  save();
  await stop(s);
  off();
  await pause(500);
  r.undoAfter = tsplice('undo ' + NS);
  r.unload = tsplice('unload ' + NS);
  save();
}

// A kprobe where the jmp would go: refused by name before anything is loaded.
{
  sh("echo 'p:tsplice_probe do_nanosleep+5' >> " + T + '/kprobe_events; echo 1 > ' + T + '/events/kprobes/tsplice_probe/enable');
  const r = { apply: tsplice('apply nanosleep-count.tsplice'), modules: modules(), list: tsplice('list --json') };
  sh('echo 0 > ' + T + '/events/kprobes/tsplice_probe/enable; echo -:tsplice_probe >> ' + T + '/kprobe_events');
  report.kprobe = r;
  save();
}

// A user who is not root: one sentence, nothing changed.
{
  const asNobody = (args) => {
    const r = spawnSync('tsplice', args, { uid: 65534, gid: 65534, encoding: 'utf8' });
    return outcome(r.status, (r.stdout ?? '') + (r.stderr ?? '') + (r.error ? String(r.error) : ''));
  };
  report.nonRoot = { list: asNobody(['list']), undo: asNobody(['undo', NS]), apply: asNobody(['apply', 'nanosleep-count.tsplice']), modules: modules() };
  save();
}

// The core module unloaded while an apply waits for a busy task.
{
  const r = { before: tsplice('list --json') };
  const s = await sleeper();
  const applying = background('tsplice apply nanosleep-count.tsplice --tries 40 --retry-ms 250');
  const moduleName = ids.modules['nanosleep-count'];
  for (let i = 0; i < 200 && !modules().split('\\n').some((l) => l.startsWith(moduleName + ' ')); i++) await pause(100);
  // Staging follows the module load after a read of kallsyms; the apply then retries for 10 s.
  await pause(4000);
  const rmmod = background('rmmod tsplice_core');
  await pause(1500);
  await stop(s);
  r.apply = await applying.done;
  r.rmmod = await Promise.race([rmmod.done, pause(30000).then(() => outcome(-1, 'rmmod still running after 30 s'))]);
  r.coreLoaded = existsSync('/proc/tsplice/status');
  r.list = tsplice('list --json');
  r.bytes = peek('do_nanosleep');
  r.undo = tsplice('undo ' + NS);
  r.unload = tsplice('unload ' + NS);
  report.coreUnload = r;
  save();
}

// Two applies at the same moment: one wins, the other says why, the kernel stays consistent.
report.concurrent = [];
for (let trial = 0; trial < 3; trial++) {
  const r = { rmmodCore: tryRun('rmmod tsplice_core') };
  const a = background('tsplice apply proc-version-string.tsplice');
  const b = background('tsplice apply proc-version-string.tsplice');
  r.outcomes = [await a.done, await b.done];
  r.list = tsplice('list --json');
  r.modules = modules();
  r.version = readFileSync('/proc/version', 'utf8');
  r.undo = tsplice('undo ' + ids['proc-version-string']);
  r.unload = tsplice('unload ' + ids['proc-version-string']);
  report.concurrent.push(r);
  save();
}

// New code that arms a timer, undone before the timer fires.
{
  const id = ids['proc-version-late-timer'];
  const r = { apply: tsplice('apply proc-version-late-timer.tsplice') };
  readFileSync('/proc/version', 'utf8');
  r.undo = tsplice('undo ' + id);
  r.modules = modules();
  r.list = tsplice('list --json');
  report.timer = r;
  save();
  await pause(6000);
  r.fired = sh('dmesg').includes('tsplice: late timer fired');
  r.unload = tsplice('unload ' + id);
  r.modulesAfterUnload = modules();
  save();
}

// Signatures: with no trusted key an unsigned update applies with a warning; with a key in
// /etc/tsplice/keys, only what that key signed applies.
{
  const id = ids['proc-version-string'];
  const clear = () => { tsplice('undo ' + id); tsplice('unload ' + id); };
  const r = { open: tsplice('apply proc-version-string.tsplice') };
  clear();
  sh('mkdir -p /etc/tsplice/keys && cp maintainer.pub /etc/tsplice/keys/maintainer.pub');
  r.unsigned = tsplice('apply proc-version-string.tsplice');
  r.stranger = tsplice('apply stranger-signed.tsplice');
  r.modulesRefused = modules();
  r.signed = tsplice('apply maintainer-signed.tsplice --json');
  r.version = readFileSync('/proc/version', 'utf8');
  clear();
  sh('rm -r /etc/tsplice/keys');
  report.signatures = r;
  save();
}

// Last (it cannot be undone until reboot): module loading turned off. Apply is refused by
// name before anything is loaded; undo, which loads nothing, still works.
{
  const r = { first: tsplice('apply proc-version-string.tsplice') };
  sh('echo 1 > /proc/sys/kernel/modules_disabled');
  r.apply = tsplice('apply nanosleep-count.tsplice');
  r.undo = tsplice('undo ' + ids['proc-version-string']);
  r.version = readFileSync('/proc/version', 'utf8');
  report.modulesDisabled = r;
  save();
}
report.dmesg = sh('dmesg').split('\\n').slice(report.dmesgBefore).join('\\n');
report.finished = true;
save();
`;

interface Outcome {
  ok: boolean;
  out: string;
}
interface HiddenApply {
  pid: number;
  apply: Outcome;
  list: Outcome;
}
interface HiddenUndo {
  pid: number;
  apply: Outcome;
  undo: Outcome;
  modules: string;
  undoAfter?: Outcome;
  unload?: Outcome;
}
interface Report {
  'apply-graph'?: HiddenApply;
  'apply-kretprobe'?: HiddenApply;
  'undo-graph'?: HiddenUndo;
  'undo-kretprobe'?: HiddenUndo;
  coreUnload?: { apply: Outcome; rmmod: Outcome; coreLoaded: boolean; list: Outcome; bytes: Outcome; undo: Outcome; unload: Outcome };
  concurrent?: { outcomes: Outcome[]; list: Outcome; modules: string; version: string; undo: Outcome; unload: Outcome }[];
  kprobe?: { apply: Outcome; modules: string; list: Outcome };
  nonRoot?: { list: Outcome; undo: Outcome; apply: Outcome; modules: string };
  signatures?: { open: Outcome; unsigned: Outcome; stranger: Outcome; modulesRefused: string; signed: Outcome; version: string };
  modulesDisabled?: { first: Outcome; apply: Outcome; undo: Outcome; version: string };
  timer?: { apply: Outcome; undo: Outcome; modules: string; list: Outcome; fired?: boolean; unload?: Outcome; modulesAfterUnload?: string };
  dmesg?: string;
  finished?: boolean;
}

const loaded = (modules: string, name: string): boolean => modules.split('\n').some((l) => l.startsWith(`${name} `));

describe('the switch beside tracers, kretprobes, timers and other tsplice runs, on the booted lab kernel', () => {
  let report: Report = {};
  let consoleLines: string[] = [];
  let guestError = '';
  const ids: Record<string, string> = {};
  const moduleOf: Record<string, string> = {};

  before(async () => {
    const { kernel, share, create } = await labUpdates('safety');
    for (const name of UPDATES) {
      const update = await create(name);
      ids[name] = update.id;
      moduleOf[name] = moduleNameFor(update.id);
    }
    // A maintainer's key the guest trusts, and a stranger's it does not.
    const keys = mkdtempSync(join(tmpdir(), 'tsplice-safety-keys-'));
    newKeyPair(join(keys, 'maintainer'));
    newKeyPair(join(keys, 'stranger'));
    copyFileSync(join(keys, 'maintainer.pub'), join(share, 'maintainer.pub'));
    const versionUpdate = readUpdate(join(share, 'proc-version-string.tsplice'));
    writeUpdate(join(share, 'maintainer-signed.tsplice'), versionUpdate, readPrivateKey(join(keys, 'maintainer')));
    writeUpdate(join(share, 'stranger-signed.tsplice'), versionUpdate, readPrivateKey(join(keys, 'stranger')));
    writeFileSync(join(share, 'ids.json'), JSON.stringify({ ...ids, modules: moduleOf }));
    try {
      const guest = await runGuestScript<Report>({ kernel, share, script: GUEST_SCRIPT, timeoutSeconds: 900 });
      consoleLines = guest.run.lines;
      report = guest.report ?? {};
      if (guest.run.status !== 0) guestError = `the guest script exited with ${guest.run.status}`;
    } catch (e) {
      guestError = (e as Error).message;
    }
  });

  const need = <T>(value: T | undefined, what: string): T => {
    assert.ok(value !== undefined, `no report of ${what}: ${guestError || 'the guest stopped before it'}\n${consoleLines.slice(-30).join('\n')}`);
    return value;
  };

  for (const kind of ['graph', 'kretprobe'] as const) {
    const hider = kind === 'graph' ? 'the function-graph tracer' : 'a kretprobe';
    it(`refuses apply while ${hider} on schedule hides a sleeping task's return into the old function`, () => {
      const r = need(report[`apply-${kind}`], `apply under ${hider}`);
      assert.equal(r.apply.ok, false, `apply succeeded while task ${r.pid} slept in do_nanosleep: ${r.apply.out}`);
      assert.match(r.apply.out, new RegExp(`task ${r.pid} \\(sleep\\) is inside function do_nanosleep`));
      assert.match(r.apply.out, kind === 'graph' ? /function-graph tracer/ : /kretprobe/);
      assert.match(r.apply.out, /The kernel is unchanged\./);
    });

    it(`refuses undo while ${hider} hides a sleeping task's return into the new code, and undoes once it is gone`, () => {
      const r = need(report[`undo-${kind}`], `undo under ${hider}`);
      assert.ok(r.apply.ok, r.apply.out);
      assert.equal(r.undo.ok, false, `undo succeeded while task ${r.pid} slept in the new do_nanosleep: ${r.undo.out}`);
      assert.match(r.undo.out, new RegExp(`task ${r.pid} \\(sleep\\) is inside function do_nanosleep`));
      assert.match(r.undo.out, new RegExp(`\\[${moduleOf['nanosleep-count']}`));
      assert.ok(loaded(r.modules, moduleOf['nanosleep-count'] ?? '?'), 'the update module must stay loaded');
      assert.ok(r.undoAfter?.ok, r.undoAfter?.out);
      assert.ok(r.unload?.ok, r.unload?.out);
    });
  }

  it('refuses a function under a kprobe by name, loading nothing', () => {
    const r = need(report.kprobe, 'the kprobe');
    assert.equal(r.apply.ok, false, r.apply.out);
    assert.match(r.apply.out, /do_nanosleep cannot be replaced while a kprobe is registered at do_nanosleep\+0x5; remove it first\. The kernel is unchanged\./);
    assert.ok(!loaded(r.modules, moduleOf['nanosleep-count'] ?? '?'));
    assert.equal(r.list.out.trim(), '[]');
  });

  it('tells a user who is not root that root is needed, in one sentence, and changes nothing', () => {
    const r = need(report.nonRoot, 'a user who is not root');
    for (const [verb, o] of [['list', r.list], ['undo', r.undo], ['apply', r.apply]] as const) {
      assert.equal(o.ok, false, `${verb}: ${o.out}`);
      assert.match(o.out, new RegExp(`^tsplice: tsplice ${verb} needs root: .*\\.\\n$`), `${verb}: ${o.out}`);
    }
    assert.ok(!loaded(r.modules, moduleOf['nanosleep-count'] ?? '?'));
  });

  it('applies unsigned updates with a warning while no key is trusted, and then only what a trusted key signed', () => {
    const r = need(report.signatures, 'signatures');
    assert.ok(r.open.ok, r.open.out);
    assert.match(r.open.out, /^warning: update \S+ is not signed, and \/etc\/tsplice\/keys holds no trusted key/m);
    assert.equal(r.unsigned.ok, false);
    assert.match(r.unsigned.out, /^tsplice: proc-version-string\.tsplice: update \S+ is not signed, and \/etc\/tsplice\/keys trusts 1 key\(s\): refused, nothing was loaded\.\n$/);
    assert.equal(r.stranger.ok, false);
    assert.match(r.stranger.out, /signed by key [0-9a-f]{16}, which \/etc\/tsplice\/keys does not trust/);
    assert.ok(!loaded(r.modulesRefused, moduleOf['proc-version-string'] ?? '?'), 'a refused update loaded its module');
    assert.ok(r.signed.ok, r.signed.out);
    assert.match(r.signed.out, /"signedBy": "[0-9a-f]{16}"/);
    assert.ok(r.version.endsWith('tsplice: patched version_proc_show\n'), r.version);
  });

  it('refuses apply by name once module loading is disabled, and still undoes', () => {
    const r = need(report.modulesDisabled, 'modules_disabled');
    assert.ok(r.first.ok, r.first.out);
    assert.equal(r.apply.ok, false, r.apply.out);
    assert.match(r.apply.out, /module loading is disabled \(kernel\.modules_disabled=1\)/);
    assert.ok(r.undo.ok, r.undo.out);
    assert.ok(!r.version.includes('tsplice'), r.version);
  });

  it('keeps the core module loaded while an apply is in progress, and records the update', () => {
    const r = need(report.coreUnload, 'the core module unloaded during an apply');
    assert.equal(r.rmmod.ok, false, `rmmod tsplice_core succeeded during an apply: ${r.rmmod.out}`);
    assert.ok(r.apply.ok, r.apply.out);
    assert.ok(r.coreLoaded, 'the core module is gone');
    assert.ok((JSON.parse(r.list.out) as { id: string; state: string }[]).some((u) => u.id === ids['nanosleep-count'] && u.state === 'applied'), r.list.out);
    assert.ok(r.undo.ok, r.undo.out);
    assert.ok(r.unload.ok, r.unload.out);
  });

  it('lets one of two simultaneous applies win, and tells the other why', () => {
    const trials = need(report.concurrent, 'two applies at once');
    assert.equal(trials.length, 3);
    for (const t of trials) {
      const won = t.outcomes.filter((o) => o.ok);
      assert.equal(won.length, 1, t.outcomes.map((o) => o.out).join('\n---\n'));
      const lost = t.outcomes.find((o) => !o.ok);
      assert.match(lost?.out ?? '', /another tsplice (apply|undo|unload|recover) \(pid \d+\) is running|already applied/);
      assert.doesNotMatch(lost?.out ?? '', /File exists|at .*\.js:\d+/);
      const list = JSON.parse(t.list.out) as { id: string; state: string }[];
      assert.deepEqual(list.filter((u) => u.id === ids['proc-version-string']).map((u) => u.state), ['applied']);
      assert.ok(t.version.endsWith('tsplice: patched version_proc_show\n'), t.version);
      assert.ok(t.undo.ok, t.undo.out);
      assert.ok(t.unload.ok, t.unload.out);
    }
  });

  it('keeps the update module after undo, so a timer its code armed fires safely; unload removes it', () => {
    const r = need(report.timer, 'the timer that outlives undo');
    assert.ok(r.apply.ok, r.apply.out);
    assert.ok(r.undo.ok, r.undo.out);
    const name = moduleOf['proc-version-late-timer'] ?? '?';
    assert.ok(loaded(r.modules, name), `${name} was unloaded by undo`);
    assert.ok((JSON.parse(r.list.out) as { id: string; state: string }[]).some((u) => u.id === ids['proc-version-late-timer'] && u.state === 'reverted'), r.list.out);
    assert.equal(r.fired, true, `the timer did not fire: ${guestError}\n${consoleLines.slice(-30).join('\n')}`);
    assert.ok(r.unload?.ok, r.unload?.out);
    assert.ok(!loaded(r.modulesAfterUnload ?? '', name), 'unload left the module loaded');
  });

  it('finishes with no oops, BUG or WARNING in the kernel log', () => {
    assert.equal(report.finished, true, `${guestError}\n${consoleLines.slice(-30).join('\n')}`);
    assert.doesNotMatch(report.dmesg ?? '', /Oops|BUG:|WARNING:|general protection|Fatal exception/);
  });
});
