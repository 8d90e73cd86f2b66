/**
 * The core module on a booted kernel. On the host: build tsplice_core and the two test
 * modules (kmod/tests: tsplice_target holds the functions to replace, tsplice_replacement the
 * new code), and read the test functions' sizes from the .ko files. One guest boot runs a
 * script that drives the core module through src/switch/core-module.ts and writes a JSON
 * report; the checks below assert on it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { run } from '../host/exec.js';
import { labKernel } from '../debian/fetch.js';
import { chooseRelease } from '../debian/kernel-choice.js';
import { buildTestModules } from './test-modules.js';
import { runGuestScript } from '../../tools/lab/guest-script.js';
import type { GuestRunResult } from '../../tools/lab/qemu.js';
import type { CoreDiagnostic, CoreMeasurement, CoreUpdate } from './core-status.js';

const quiet = (): void => {};

/**
 * A value of core-status.ts as the guest script's report holds it: JSON, with bigints as hex
 * strings (its replacer) and dates as ISO strings. The report's types are the product's types
 * seen through JSON, not copies that could drift from them.
 */
type AsJson<T> = T extends bigint
  ? string
  : T extends Date
    ? string
    : T extends readonly (infer E)[]
      ? AsJson<E>[]
      : T extends object
        ? { [K in keyof T]: AsJson<T[K]> }
        : T;

type UpdateReport = AsJson<CoreUpdate>;
type MeasureReport = AsJson<CoreMeasurement>;

/** A CoreCommandError (CoreBusyError) as errorOf in the script records it. */
interface ErrorReport {
  name: string;
  message: string;
  code?: string;
  kind?: string;
  functionName?: string;
  pid?: number;
  comm?: string;
  diagnostic?: CoreDiagnostic;
}

interface CommandRun {
  ok: boolean;
  out: string;
}

/** What the guest saw, written by GUEST_SCRIPT. */
interface GuestReport {
  done: boolean;
  modes: { dir: number; control: number; status: number };
  address: Record<string, string>;
  valueBefore: string;
  bytesBefore: string;
  peekCli: CommandRun;
  wrongBytes?: ErrorReport;
  wrongBytesLeftUpdate: boolean;
  tooShort?: ErrorReport;
  measureEmpty: MeasureReport[];
  measureScan: MeasureReport[];
  staged: UpdateReport;
  applied: UpdateReport;
  applyResult: string;
  valueApplied: string;
  bytesApplied: string;
  rmmodWhileApplied: CommandRun;
  tracerOn: CommandRun;
  bytesTraced: string;
  valueTraced: string;
  traceLines: string[];
  tracerOff: CommandRun;
  bytesUntraced: string;
  undone: UpdateReport;
  valueUndone: string;
  bytesUndone: string;
  rmmodAfterUndo: CommandRun;
  reapplied?: UpdateReport;
  valueReapplied?: string;
  rmmodAfterDrop?: CommandRun;
  sleeper: { pid: number; stack: string; waiters: string };
  busy?: ErrorReport;
  busyElapsedMs: number;
  busyStatus: UpdateReport;
  measureWhileBusy: MeasureReport;
  valueWhileBusy: string;
  bytesWhileBusy: string;
  waitBytesBefore: string;
  waitBytesWhileBusy: string;
  sleeperExit: number | null;
  appliedAfterRelease: UpdateReport;
  valueAfterRelease: string;
  waitAfterApply: CommandRun & { ms: number };
  undoneU2: UpdateReport;
  valueAfterUndoU2: string;
  statusText: string;
  dmesg: string[];
  dmesgProblems: string[];
  lockdown: CommandRun;
  lockedRefusal?: ErrorReport;
  lockedStatus: boolean;
}

const GUEST_SCRIPT = `
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync, statSync } from 'node:fs';
import { CoreModule, CoreBusyError } from '/opt/tsplice/dist/src/switch/core-module.js';
import { readKallsyms } from '/opt/tsplice/dist/src/match/kallsyms.js';
import { Kcore } from '/opt/tsplice/dist/src/match/kcore.js';

const sizes = JSON.parse(readFileSync('sizes.json', 'utf8'));
const report = { done: false };
const save = () => writeFileSync('report.json', JSON.stringify(report, (k, v) => (typeof v === 'bigint' ? '0x' + v.toString(16) : v), 1));
const sh = (cmd, timeout = 60000) => execFileSync('sh', ['-c', cmd], { encoding: 'utf8', timeout });
const tryRun = (cmd, timeout) => {
  try { return { ok: true, out: sh(cmd + ' 2>&1', timeout) }; } catch (e) { return { ok: false, out: String(e.stdout ?? '') + String(e.stderr ?? '') + String(e.message) }; }
};
const value = () => readFileSync('/proc/tsplice_target/value', 'utf8').trim();
const textAddress = (name) => {
  const found = readKallsyms().lookup(name).filter((s) => s.type === 't' || s.type === 'T');
  if (found.length !== 1) throw new Error(name + ': ' + found.length + ' text symbols');
  return found[0].runningAddress;
};
const peek = (address, n) => {
  const k = Kcore.open();
  try { return Buffer.from(k.read(address, n)).toString('hex'); } finally { k.close(); }
};
const errorOf = async (promise) => {
  try { await promise; return undefined; } catch (e) {
    return { name: e.constructor.name, message: e.message, code: e.code, diagnostic: e.kernelRecord, kind: e.kind,
      ...(e instanceof CoreBusyError ? { functionName: e.functionName, pid: e.pid, comm: e.comm } : {}) };
  }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const request = (name, newName, newSize, expected) => {
  const oldAddress = textAddress(name);
  return { name, oldAddress, oldSize: sizes[name], newAddress: textAddress(newName), newSize,
    expected: expected ?? Buffer.from(peek(oldAddress, Math.min(16, sizes[name])), 'hex') };
};

try {
  sh('insmod ./modules/tsplice_target.ko && insmod ./modules/tsplice_replacement.ko');
  const core = await CoreModule.load('./modules/tsplice_core.ko');
  const mode = (p) => statSync(p).mode & 0o777;
  report.modes = { dir: mode('/proc/tsplice'), control: mode('/proc/tsplice/control'), status: mode('/proc/tsplice/status') };
  report.address = {};
  for (const n of ['target_show_value', 'replacement_show_value', 'target_wait', 'replacement_wait', 'target_short']) {
    report.address[n] = '0x' + textAddress(n).toString(16);
  }
  report.valueBefore = value();
  const old = textAddress('target_show_value');
  report.bytesBefore = peek(old, 16);
  report.peekCli = tryRun('tsplice peek target_show_value --length 16 --json');

  // Refusals at stage time.
  const wrong = Buffer.from(report.bytesBefore, 'hex');
  wrong[7] ^= 0xff;
  report.wrongBytes = await errorOf(core.stage('bad', request('target_show_value', 'replacement_show_value', sizes.replacement_show_value, wrong)));
  report.wrongBytesLeftUpdate = (await core.update('bad')) !== undefined;
  report.tooShort = await errorOf(core.stage('short', request('target_short', 'replacement_show_value', sizes.replacement_show_value)));

  // Stage u1; measure an empty stop_machine and the task check alone.
  report.staged = await core.stageUpdate('u1', [request('target_show_value', 'replacement_show_value', sizes.replacement_show_value)]);
  report.measureEmpty = [];
  report.measureScan = [];
  for (let i = 0; i < 5; i++) report.measureEmpty.push(await core.measure());
  for (let i = 0; i < 5; i++) report.measureScan.push(await core.measure('u1'));

  // Apply, look, trace, undo.
  report.applyResult = await core.command('apply u1');
  report.applied = await core.update('u1');
  report.valueApplied = value();
  report.bytesApplied = peek(old, 16);
  report.rmmodWhileApplied = tryRun('rmmod tsplice_replacement');
  const T = '/sys/kernel/tracing';
  report.tracerOn = tryRun('echo target_show_value > ' + T + '/set_ftrace_filter && echo function > ' + T + '/current_tracer && echo > ' + T + '/trace');
  report.valueTraced = value();
  report.bytesTraced = peek(old, 16);
  report.traceLines = readFileSync(T + '/trace', 'utf8').split('\\n').filter((l) => l.includes('target_show_value'));
  report.tracerOff = tryRun('echo nop > ' + T + '/current_tracer && echo > ' + T + '/set_ftrace_filter');
  report.bytesUntraced = peek(old, 16);
  report.undone = await core.undo('u1');
  report.valueUndone = value();
  report.bytesUndone = peek(old, 16);
  report.rmmodAfterUndo = tryRun('rmmod tsplice_replacement');
  save();

  // Undo keeps the new code's module held: u1 applies again, and only drop lets it go.
  report.reapplied = await core.apply('u1', { tries: 1 });
  report.valueReapplied = value();
  await core.undo('u1');
  await core.drop('u1');
  report.rmmodAfterDrop = tryRun('rmmod tsplice_replacement');
  save();
  sh('insmod ./modules/tsplice_replacement.ko');

  // u2 also replaces target_wait, where a task is about to sleep.
  const waitAddress = textAddress('target_wait');
  report.waitBytesBefore = peek(waitAddress, 16);
  await core.stageUpdate('u2', [
    request('target_show_value', 'replacement_show_value', sizes.replacement_show_value),
    request('target_wait', 'replacement_wait', sizes.replacement_wait),
  ]);
  const sleeper = spawn('dd', ['of=/proc/tsplice_target/sleep'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = new Promise((resolve) => sleeper.on('exit', (code) => resolve(code)));
  sleeper.stdin.write('wait\\n');
  let waiters = '';
  for (let i = 0; i < 100 && waiters !== 'waiters 1'; i++) {
    await sleep(100);
    waiters = readFileSync('/proc/tsplice_target/sleep', 'utf8').trim();
  }
  report.sleeper = { pid: sleeper.pid, waiters, stack: tryRun('cat /proc/' + sleeper.pid + '/stack').out };
  const started = Date.now();
  report.busy = await errorOf(core.apply('u2', { tries: 3, retryMs: 200 }));
  report.busyElapsedMs = Date.now() - started;
  report.busyStatus = await core.update('u2');
  report.measureWhileBusy = await core.measure('u2');
  report.valueWhileBusy = value();
  report.bytesWhileBusy = peek(old, 16);
  report.waitBytesWhileBusy = peek(waitAddress, 16);
  save();

  writeFileSync('/proc/tsplice_target/sleep', 'release');
  sleeper.stdin.end();
  report.sleeperExit = await exited;
  await core.apply('u2', { tries: 3, retryMs: 200 });
  report.appliedAfterRelease = await core.update('u2');
  report.valueAfterRelease = value();
  const t0 = Date.now();
  report.waitAfterApply = { ...tryRun('echo wait > /proc/tsplice_target/sleep', 10000), ms: Date.now() - t0 };
  report.undoneU2 = await core.undo('u2');
  report.valueAfterUndoU2 = value();
  report.statusText = readFileSync('/proc/tsplice/status', 'utf8');
  const dmesg = sh('dmesg').split('\\n');
  report.dmesg = dmesg.filter((l) => /tsplice/.test(l));
  report.dmesgProblems = dmesg.filter((l) => /WARNING|ftrace bug|ftrace faulted|BUG:|Oops|Call Trace|RIP:/.test(l));
  save();

  // Last: lock the kernel down (one way); every command is then refused.
  report.lockdown = tryRun('mount -t securityfs securityfs /sys/kernel/security; echo integrity > /sys/kernel/security/lockdown');
  report.lockedRefusal = await errorOf(core.measure());
  report.lockedStatus = (await core.status()).lockedDown;
  report.done = true;
} catch (e) {
  report.failure = String(e && e.stack || e);
  console.log('guest script failed: ' + report.failure);
}
save();
console.log('core module checks done');
`;

/** Sizes (ELF st_size) of the test modules' functions, read on the host with nm. */
async function functionSizes(kos: string[]): Promise<Record<string, number>> {
  const sizes: Record<string, number> = {};
  for (const ko of kos) {
    const { stdout } = await run(['nm', '-S', '--defined-only', ko], { purpose: `reading the symbols of ${ko}` });
    for (const line of stdout.split('\n')) {
      const m = /^[0-9a-f]+ ([0-9a-f]+) [tT] (\w+)$/.exec(line);
      if (m?.[1] && m[2]) sizes[m[2]] = parseInt(m[1], 16);
    }
  }
  return sizes;
}

function rel32Target(site: bigint, bytes: string): bigint {
  const rel = Buffer.from(bytes, 'hex').readInt32LE(0);
  return site + 5n + BigInt(rel);
}

describe('the core module in a guest', () => {
  let share: string;
  let run0: GuestRunResult;
  let r: GuestReport;

  before(async () => {
    const kernel = await labKernel(await chooseRelease(undefined, quiet), quiet);
    share = mkdtempSync(join(tmpdir(), 'tsplice-core-test-'));
    const { target, replacement } = await buildTestModules(kernel, share);
    writeFileSync(join(share, 'sizes.json'), JSON.stringify(await functionSizes([target, replacement])));
    const guest = await runGuestScript<GuestReport>({ kernel, share, script: GUEST_SCRIPT, timeoutSeconds: 900 });
    run0 = guest.run;
    assert.ok(guest.report, run0.lines.slice(-30).join('\n'));
    r = guest.report;
  });

  it('ran the whole guest script', () => {
    assert.equal(run0.status, 0);
    assert.ok(run0.lines.includes('core module checks done'), run0.lines.slice(-30).join('\n'));
    assert.equal(r.done, true, JSON.stringify(r).slice(0, 3000));
  });

  it('offers root-only files under /proc/tsplice', () => {
    assert.equal(r.modes.control, 0o600);
    assert.equal(r.modes.status, 0o600);
    assert.equal(r.modes.dir, 0o700);
  });

  it('refuses to stage a function whose running bytes differ from the expected ones', () => {
    assert.equal(r.wrongBytes?.name, 'CoreCommandError');
    assert.equal(r.wrongBytes?.code, 'EILSEQ');
    assert.match(r.wrongBytes?.message ?? '', /target_show_value: running bytes differ from the expected ones at \+7/);
    assert.equal(r.wrongBytesLeftUpdate, false);
    // The kernel's status names the refusal with fields, though no update was left.
    assert.equal(r.wrongBytes?.diagnostic?.reason, 'bytes-changed');
    assert.equal(r.wrongBytes?.diagnostic?.fields.function, 'target_show_value');
    assert.equal(r.wrongBytes?.diagnostic?.fields.offset, '7');
    assert.equal(r.wrongBytes?.diagnostic?.fields.running, r.bytesBefore);
  });

  it('refuses a function too short for the jmp, by name', () => {
    assert.equal(r.tooShort?.name, 'CoreCommandError');
    assert.match(r.tooShort?.message ?? '', /target_short is too short to patch: 7 bytes, needs 10/);
    assert.deepEqual(r.tooShort?.diagnostic, { reason: 'too-short', fields: { function: 'target_short', size: '7', needs: '10' } });
  });

  it('stages an update the status lists with the kernel\'s addresses', () => {
    assert.equal(r.staged.state, 'staged');
    assert.deepEqual(
      r.staged.functions.map((f) => [f.name, f.oldAddress, f.newAddress]),
      [['target_show_value', r.address.target_show_value, r.address.replacement_show_value]],
    );
  });

  it('applies: the new value shows, and the status says applied with a pause', () => {
    assert.equal(r.valueBefore, 'value 1111');
    assert.equal(r.valueApplied, 'value 2222');
    assert.match(r.applyResult, /^ok: applied u1: 1 function\(s\) after 1 attempt\(s\); pause \d+ ns/);
    assert.equal(r.applied.state, 'applied');
    assert.equal(r.applied.attempts, 1);
    assert.ok(r.applied.pauseNs > 0 && r.applied.callNs >= r.applied.pauseNs, JSON.stringify(r.applied));
    assert.ok(r.applied.tasks > 10, `${r.applied.tasks} tasks checked`);
    // The pre-scan ran before the stop; inside it, only tasks that ran since were read again.
    assert.ok(r.applied.prescanNs !== undefined && r.applied.prescanNs > 0, JSON.stringify(r.applied));
    assert.ok(r.applied.scanned !== undefined && r.applied.scanned >= 1 && r.applied.scanned < r.applied.tasks, JSON.stringify(r.applied));
    assert.ok(r.applied.appliedAt !== undefined);
    assert.equal(r.applied.error, undefined);
    assert.equal(r.applied.diagnostic, undefined);
  });

  it('keeps the __fentry__ nop and writes the jmp after it', () => {
    assert.equal(r.bytesBefore.slice(0, 10), '0f1f440000');
    assert.equal(r.bytesApplied.slice(0, 10), '0f1f440000');
    assert.equal(r.bytesApplied.slice(10, 12), 'e9');
    const site = BigInt(r.address.target_show_value ?? '0') + 5n;
    assert.equal(rel32Target(site, r.bytesApplied.slice(12, 20)), BigInt(r.address.replacement_show_value ?? '0'));
    assert.equal(r.bytesApplied.slice(20), r.bytesBefore.slice(20));
  });

  it('keeps the new code\'s module loaded while applied, and after undo until drop', () => {
    assert.equal(r.rmmodWhileApplied.ok, false, r.rmmodWhileApplied.out);
    assert.equal(r.rmmodAfterUndo.ok, false, r.rmmodAfterUndo.out);
    assert.equal(r.rmmodAfterDrop?.ok, true, r.rmmodAfterDrop?.out);
  });

  it('lets ftrace trace the replaced function, without an ftrace bug', () => {
    assert.equal(r.tracerOn.ok, true, r.tracerOn.out);
    assert.equal(r.valueTraced, 'value 2222');
    // Traced: ftrace's call at the entry, tsplice's jmp after it.
    assert.equal(r.bytesTraced.slice(0, 2), 'e8');
    assert.equal(r.bytesTraced.slice(10, 20), r.bytesApplied.slice(10, 20));
    assert.ok(r.traceLines.length > 0, 'the trace shows no call of target_show_value');
    assert.equal(r.tracerOff.ok, true, r.tracerOff.out);
    assert.equal(r.bytesUntraced, r.bytesApplied);
    assert.deepEqual(r.dmesgProblems, []);
  });

  it('undoes: the old value and the original bytes come back', () => {
    assert.equal(r.undone.state, 'reverted');
    assert.equal(r.valueUndone, 'value 1111');
    assert.equal(r.bytesUndone, r.bytesBefore);
  });

  it('applies a reverted update again, its module still held', () => {
    assert.equal(r.reapplied?.state, 'applied');
    assert.equal(r.valueReapplied, 'value 2222');
  });

  it('aborts as busy, naming the function, pid and comm, while a task sleeps in a replaced function', () => {
    assert.equal(r.sleeper.waiters, 'waiters 1');
    assert.match(r.sleeper.stack, /target_wait/);
    assert.equal(r.busy?.name, 'CoreBusyError');
    assert.equal(r.busy?.code, 'EBUSY');
    assert.equal(r.busy?.functionName, 'target_wait');
    assert.equal(r.busy?.pid, r.sleeper.pid);
    assert.equal(r.busy?.comm, 'dd');
    assert.match(r.busy?.message ?? '', new RegExp(`task ${r.sleeper.pid} \\(dd\\) is inside function target_wait \\(target_wait\\+0x[0-9a-f]+/0x[0-9a-f]+ \\[tsplice_target\\]`));
    assert.match(r.busy?.message ?? '', /gave up after 3 attempt\(s\) 200 ms apart/);
    assert.ok(r.busyElapsedMs >= 400, `${r.busyElapsedMs} ms`);
    assert.equal(r.busyStatus.state, 'staged');
    assert.equal(r.busyStatus.attempts, 3);
    assert.match(r.busyStatus.error ?? '', /^apply u2 aborted: busy: function target_wait, task \d+ \(dd\)/);
    assert.equal(r.measureWhileBusy.result, 'busy');
    // The same abort as fields: in the error, in the update's status record, in the measurement.
    const busy = r.busy?.diagnostic;
    assert.equal(busy?.reason, 'busy');
    assert.deepEqual({ ...busy?.fields, symbol: undefined }, {
      function: 'target_wait', task: String(r.sleeper.pid), comm: 'dd', source: 'stack', code: 'old',
      symbol: undefined, module: 'tsplice_target', attempts: '3', retry_ms: '200',
    });
    assert.match(busy?.fields.symbol ?? '', /^target_wait\+0x[0-9a-f]+\/0x[0-9a-f]+$/);
    assert.deepEqual(r.busyStatus.diagnostic, busy);
    assert.equal(r.measureWhileBusy.diagnostic?.reason, 'busy');
    assert.equal(r.measureWhileBusy.diagnostic?.fields.task, String(r.sleeper.pid));
    assert.equal(r.measureWhileBusy.diagnostic?.fields.function, 'target_wait');
  });

  it('leaves the kernel unchanged after a busy abort', () => {
    assert.equal(r.valueWhileBusy, 'value 1111');
    assert.equal(r.bytesWhileBusy, r.bytesBefore);
    assert.equal(r.waitBytesWhileBusy, r.waitBytesBefore);
  });

  it('applies once the task has left, and undoes again', () => {
    assert.equal(r.sleeperExit, 0);
    assert.equal(r.appliedAfterRelease.state, 'applied');
    assert.equal(r.valueAfterRelease, 'value 2222');
    // target_wait now jumps to replacement_wait, which does not wait.
    assert.equal(r.waitAfterApply.ok, true, r.waitAfterApply.out);
    assert.equal(r.undoneU2.state, 'reverted');
    assert.equal(r.valueAfterUndoU2, 'value 1111');
  });

  it('prints a line for every apply, undo and abort', () => {
    const lines = r.dmesg.join('\n');
    assert.match(lines, /tsplice_core: ok: applied u1/);
    assert.match(lines, /tsplice_core: ok: undid u1/);
    assert.match(lines, /tsplice_core: apply u2 aborted: busy: function target_wait, task \d+ \(dd\)/);
    assert.match(lines, /tsplice_core: stage bad refused: target_show_value: running bytes differ/);
    assert.match(lines, /tsplice_core: stage short refused: target_short is too short/);
    assert.match(lines, /tsplice_core: ok: applied u2/);
  });

  it('refuses every command once the kernel is locked down', () => {
    assert.equal(r.lockdown.ok, true, r.lockdown.out);
    assert.equal(r.lockedRefusal?.code, 'EPERM');
    assert.match(r.lockedRefusal?.message ?? '', /locked down/);
    assert.equal(r.lockedRefusal?.diagnostic?.reason, 'locked-down');
    assert.equal(r.lockedStatus, true);
  });

  it('reports the pause figures (printed, not asserted)', () => {
    const line = (m: MeasureReport | UpdateReport): string =>
      `pause ${m.pauseNs} ns, stop_machine ${m.callNs} ns, CPU arrival skew ${m.waitNs} ns, ${m.tasks} tasks` +
      (m.scanned !== undefined ? ` (${m.scanned} stacks read inside, pre-scan ${m.prescanNs ?? 0} ns before)` : '');
    const out = [
      'core module pauses measured in the guest (TCG, 2 vCPUs):',
      ...r.measureEmpty.map((m, i) => `  empty stop_machine #${i + 1}: ${line(m)}`),
      ...r.measureScan.map((m, i) => `  task check alone  #${i + 1}: ${line(m)}`),
      `  apply u1: ${line(r.applied)}`,
      `  undo u1: ${line(r.undone)}`,
      `  apply u2: ${line(r.appliedAfterRelease)}`,
      `  undo u2: ${line(r.undoneU2)}`,
      `  busy abort of u2 (3 tries, 200 ms apart): ${r.busyElapsedMs} ms`,
      `  tsplice peek on a module function: ${r.peekCli.ok ? 'works' : `refused: ${r.peekCli.out.trim().split('\n')[0]}`}`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  });
});
