/**
 * Updates to loadable modules on the booted lab kernel: a fix to binfmt_misc seen from user
 * space, applied while the module is not loaded (patched as it loads, again after rmmod and
 * modprobe, original code after undo) and while it is; the real 6.1.176 fixes to nft_ct and
 * nf_tables in one update with a vmlinux fix (one pause for all three); a module whose file,
 * or whose running code, is not the update's pre code refused naming function and offset.
 * One guest boot runs the script; the checks assert on its report.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { createUpdate } from '../create/create.js';
import { runGuestScript } from '../../tools/lab/guest-script.js';
import { rewriteSites } from '../match/sites.js';
import { labUpdates, testPatch } from './lab-updates.js';
import { writeUpdate, type UpdatePackage } from '../update/format.js';

const quiet = (): void => {};

/** Runs in the guest (node): loads modules, applies, observes, undoes; writes report.json. */
const GUEST_SCRIPT = `
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
const sh = (cmd) => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
const tryRun = (cmd) => { try { return { ok: true, out: sh(cmd + ' 2>&1') }; } catch (e) { return { ok: false, out: String(e.stdout) + String(e.stderr) + ' (status ' + e.status + ')' }; } };
const tsplice = (args) => tryRun('tsplice ' + args);
const peek = (name, module) => JSON.parse(sh('tsplice peek ' + name + ' --module ' + module + ' --length 16 --json'));
const modules = () => readFileSync('/proc/modules', 'utf8').split('\\n').map((l) => l.split(' ')[0]).filter(Boolean).sort();
const ids = JSON.parse(readFileSync('ids.json', 'utf8'));
const status = () => readFileSync('/proc/sys/fs/binfmt_misc/status', 'utf8');
const load = () => sh('modprobe binfmt_misc && mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc');
const unloadModule = () => tryRun('umount /proc/sys/fs/binfmt_misc; rmmod binfmt_misc');
const listed = () => JSON.parse(sh('tsplice list --json'));
const report = {};

// Not loaded, and its file differs from the pre code: refused at apply, nothing loaded.
report.onDisk = { modulesBefore: modules(), apply: tsplice('apply binfmt-misc-mismatch.tsplice --json') };
report.onDisk.modulesAfter = modules();

// The late path: applied while not loaded, patched as it loads, again after rmmod and modprobe.
const late = report.late = {};
late.apply = tsplice('apply binfmt-misc-status.tsplice --json');
late.listWaiting = listed();
late.listWaitingText = sh('tsplice list');
load();
late.first = status();
late.bytes = peek('bm_status_read', 'binfmt_misc');
late.listBound = listed();
late.rmmod = unloadModule();
late.modulesAfterRmmod = modules();
late.listAfterRmmod = listed();
load();
late.second = status();
late.undo = tsplice('undo ' + ids['binfmt-misc-status']);
late.undone = status();
late.bytesUndone = peek('bm_status_read', 'binfmt_misc');
unloadModule();
load();
late.afterUndoReload = status();
late.unload = tsplice('unload ' + ids['binfmt-misc-status']);
late.modulesAtEnd = modules();

// Loaded at apply: proven against the running copy, switched under stop_machine.
report.binfmt = { before: status(), bytesBefore: peek('bm_status_read', 'binfmt_misc') };
report.binfmt.mismatch = tsplice('apply binfmt-misc-mismatch.tsplice --json');
report.binfmt.modulesAfterMismatch = modules();
report.binfmt.apply = tsplice('apply binfmt-misc-status.tsplice --json');
report.binfmt.after = status();
sh('echo 0 > /proc/sys/fs/binfmt_misc/status');
report.binfmt.afterDisable = status();
sh('echo 1 > /proc/sys/fs/binfmt_misc/status');
report.binfmt.bytesAfter = peek('bm_status_read', 'binfmt_misc');
report.binfmt.list = listed();
report.binfmt.listText = sh('tsplice list');
report.binfmt.undo = tsplice('undo ' + ids['binfmt-misc-status']);
report.binfmt.undone = status();
report.binfmt.bytesUndone = peek('bm_status_read', 'binfmt_misc');
report.binfmt.unload = tsplice('unload ' + ids['binfmt-misc-status']);
report.binfmt.rmmodUnloaded = unloadModule();
report.binfmt.modulesAtEnd = modules();

// One update across vmlinux, nft_ct and nf_tables.
sh('modprobe nft_ct');
const spans = [['nft_ct_expect_obj_eval', 'nft_ct'], ['nft_exthdr_init', 'nf_tables'], ['version_proc_show', 'vmlinux']];
report.span = { modulesLoaded: modules(), bytesBefore: spans.map(([f, m]) => peek(f, m).bytes) };
report.span.apply = tsplice('apply netfilter-span.tsplice --json');
report.span.list = listed();
report.span.version = readFileSync('/proc/version', 'utf8');
report.span.bytesAfter = spans.map(([f, m]) => peek(f, m).bytes);
report.span.undo = tsplice('undo ' + ids['netfilter-span']);
report.span.bytesUndone = spans.map(([f, m]) => peek(f, m).bytes);
report.span.unload = tsplice('unload ' + ids['netfilter-span']);
report.span.rmmod = tryRun('rmmod nft_ct nf_tables');
report.span.modulesAtEnd = modules();
report.dmesg = sh('dmesg');
writeFileSync('report.json', JSON.stringify(report));
`;

interface Outcome {
  ok: boolean;
  out: string;
}
interface Peeked {
  name: string;
  module: string;
  runningAddress: string;
  bytes: string;
}
interface Listed {
  id: string;
  state: string;
  functions: { name: string; owner?: string; site: number; oldAddress: string }[];
  parts: { name: string; module: string; state: string; loads: number; oldAddress?: string }[];
}
interface Report {
  onDisk: { modulesBefore: string[]; apply: Outcome; modulesAfter: string[] };
  late: {
    apply: Outcome;
    listWaiting: Listed[];
    listWaitingText: string;
    first: string;
    bytes: Peeked;
    listBound: Listed[];
    rmmod: Outcome;
    modulesAfterRmmod: string[];
    listAfterRmmod: Listed[];
    second: string;
    undo: Outcome;
    undone: string;
    bytesUndone: Peeked;
    afterUndoReload: string;
    unload: Outcome;
    modulesAtEnd: string[];
  };
  binfmt: {
    before: string;
    bytesBefore: Peeked;
    mismatch: Outcome;
    modulesAfterMismatch: string[];
    apply: Outcome;
    after: string;
    afterDisable: string;
    bytesAfter: Peeked;
    list: Listed[];
    listText: string;
    undo: Outcome;
    undone: string;
    bytesUndone: Peeked;
    unload: Outcome;
    rmmodUnloaded: Outcome;
    modulesAtEnd: string[];
  };
  span: {
    modulesLoaded: string[];
    bytesBefore: string[];
    apply: Outcome;
    list: Listed[];
    version: string;
    bytesAfter: string[];
    undo: Outcome;
    bytesUndone: string[];
    unload: Outcome;
    rmmod: Outcome;
    modulesAtEnd: string[];
  };
  dmesg: string;
}

/**
 * The update with one byte of `name`'s pre code flipped, where neither a relocation nor a
 * boot-time rewrite site is: run-pre matching must find that byte different, at that offset.
 */
function withFlippedPreByte(update: UpdatePackage, name: string): { update: UpdatePackage; offset: number } {
  const copy = structuredClone(update);
  const fn = copy.functions.find((f) => f.name === name && f.pre);
  assert.ok(fn?.pre, `no pre code of ${name}`);
  const covered = new Set<number>();
  for (const r of fn.pre.relocations) for (let i = 0; i < 8; i++) covered.add(r.offset + i);
  for (const s of rewriteSites(fn, copy.specialEntries)) for (let i = 0; i < s.length; i++) covered.add(s.offset + i);
  const pre = Buffer.from(fn.pre.bytes, 'base64');
  let offset = 16;
  while (covered.has(offset)) offset++;
  assert.ok(offset < pre.length);
  pre[offset] = (pre[offset] ?? 0) ^ 0xff;
  fn.pre.bytes = pre.toString('base64');
  return { update: copy, offset };
}

/** The `{"error": …}` that `tsplice … --json` printed on stdout, amid stderr's lines. */
const jsonError = (o: Outcome): Record<string, string> => (JSON.parse(o.out.slice(o.out.indexOf('{\n'), o.out.lastIndexOf('}') + 1)) as { error: Record<string, string> }).error;

describe('updates to loadable modules on the booted lab kernel', () => {
  let report: Report;
  const ids: Record<string, string> = {};
  let mismatchOffset = 0;

  before(async () => {
    const { kernel, tree, share, create } = await labUpdates('module-apply');
    const binfmt = await create('binfmt-misc-status');
    ids['binfmt-misc-status'] = binfmt.id;
    const mismatch = withFlippedPreByte(binfmt, 'bm_status_read');
    mismatchOffset = mismatch.offset;
    writeUpdate(join(share, 'binfmt-misc-mismatch.tsplice'), mismatch.update);
    const { update: span } = await createUpdate({
      tree,
      patches: ['nft-ct-module', 'nft-exthdr-module', 'proc-version-string'].map(testPatch),
      headersDir: kernel.headersDir,
      distributionVersion: kernel.version,
      log: quiet,
    });
    writeUpdate(join(share, 'netfilter-span.tsplice'), span);
    ids['netfilter-span'] = span.id;
    writeFileSync(join(share, 'ids.json'), JSON.stringify(ids));
    const guest = await runGuestScript<Report>({ kernel, share, script: GUEST_SCRIPT, timeoutSeconds: 900 });
    assert.equal(guest.run.status, 0, guest.run.lines.slice(-30).join('\n'));
    assert.ok(guest.report, guest.run.lines.slice(-30).join('\n'));
    report = guest.report;
  });

  it('refuses a module that is not loaded and whose file differs from the pre code, naming function and offset, and loads nothing', () => {
    const { apply, modulesBefore, modulesAfter } = report.onDisk;
    assert.equal(apply.ok, false);
    const error = jsonError(apply);
    assert.equal(error['kind'], 'match-failed');
    assert.equal(error['function'], 'bm_status_read');
    assert.equal(error['offset'], `0x${mismatchOffset.toString(16)}`);
    assert.match(error['object'] ?? '', /\/lib\/modules\/6\.1\.0-47-amd64\/kernel\/fs\/binfmt_misc\.ko$/);
    assert.deepEqual(modulesAfter, modulesBefore);
    assert.ok(!modulesBefore.includes('binfmt_misc'));
  });

  it('applies a fix to a module that is not loaded: it waits, and the module is patched as it loads', () => {
    const l = report.late;
    assert.ok(l.apply.ok, l.apply.out);
    const waiting = l.listWaiting.find((u) => u.id === ids['binfmt-misc-status']);
    assert.equal(waiting?.state, 'applied');
    assert.deepEqual(waiting?.functions, []);
    assert.deepEqual(waiting?.parts.map((p) => [p.name, p.module, p.state, p.loads]), [['bm_status_read', 'binfmt_misc', 'waiting', 0]]);
    assert.match(l.listWaitingText, /^ {2}bm_status_read \[binfmt_misc\] {2}waiting for the module to load$/m);
    assert.equal(l.first, 'enabled (tsplice)\n');
    assert.equal(l.bytes.bytes.slice(0, 12), '0f1f440000e9');
    const bound = l.listBound.find((u) => u.id === ids['binfmt-misc-status']);
    assert.deepEqual(bound?.parts.map((p) => [p.state, p.loads]), [['bound', 1]]);
    assert.deepEqual(bound?.functions.map((f) => [f.name, f.owner]), [['bm_status_read', 'binfmt_misc']]);
  });

  it('lets the module go while its fix is applied, and patches it again when it comes back', () => {
    const l = report.late;
    assert.ok(l.rmmod.ok, l.rmmod.out);
    assert.ok(!l.modulesAfterRmmod.includes('binfmt_misc'));
    const after = l.listAfterRmmod.find((u) => u.id === ids['binfmt-misc-status']);
    assert.equal(after?.state, 'applied');
    assert.deepEqual(after?.parts.map((p) => [p.state, p.loads]), [['waiting', 1]]);
    assert.deepEqual(after?.functions, []);
    assert.equal(l.second, 'enabled (tsplice)\n');
  });

  it('undoes a fix made at load: the running module and the next copy loaded run the original code', () => {
    const l = report.late;
    assert.ok(l.undo.ok, l.undo.out);
    assert.equal(l.undone, 'enabled\n');
    // The __fentry__ nop, and after it the function's own first instruction again, not a jmp.
    assert.equal(l.bytesUndone.bytes.slice(0, 10), '0f1f440000');
    assert.notEqual(l.bytesUndone.bytes.slice(10, 12), 'e9');
    assert.equal(l.afterUndoReload, 'enabled\n');
    assert.ok(l.unload.ok, l.unload.out);
    assert.ok(!l.modulesAtEnd.some((m) => m.startsWith('tsplice_binfmt')), l.modulesAtEnd.join(' '));
  });

  it('refuses a module whose running code is not the pre code, naming function and offset', () => {
    const b = report.binfmt;
    assert.equal(b.mismatch.ok, false);
    const error = jsonError(b.mismatch);
    assert.equal(error['kind'], 'match-failed');
    assert.equal(error['function'], 'bm_status_read');
    assert.equal(error['offset'], `0x${mismatchOffset.toString(16)}`);
    assert.ok(!b.modulesAfterMismatch.some((m) => m.startsWith('tsplice_binfmt')), b.modulesAfterMismatch.join(' '));
  });

  it('applies a fix to a loaded module: its file reads the new text, and the old after undo', () => {
    const b = report.binfmt;
    assert.equal(b.before, 'enabled\n');
    assert.ok(b.apply.ok, b.apply.out);
    assert.equal(b.after, 'enabled (tsplice)\n');
    assert.equal(b.afterDisable, 'disabled (tsplice)\n');
    assert.ok(b.undo.ok, b.undo.out);
    assert.equal(b.undone, 'enabled\n');
  });

  it('writes the jump into the module text after its __fentry__ site and restores the bytes on undo', () => {
    const b = report.binfmt;
    assert.equal(b.bytesBefore.module, 'binfmt_misc');
    assert.equal(b.bytesBefore.bytes.slice(0, 10), '0f1f440000');
    assert.equal(b.bytesAfter.bytes.slice(0, 10), '0f1f440000');
    assert.equal(b.bytesAfter.bytes.slice(10, 12), 'e9');
    assert.equal(b.bytesUndone.bytes, b.bytesBefore.bytes);
    assert.equal(b.bytesUndone.runningAddress, b.bytesBefore.runningAddress);
  });

  it('lists the function with its module', () => {
    const b = report.binfmt;
    const listed = b.list.find((u) => u.id === ids['binfmt-misc-status']);
    assert.equal(listed?.state, 'applied');
    assert.deepEqual(listed?.functions.map((f) => [f.name, f.owner]), [['bm_status_read', 'binfmt_misc']]);
    assert.match(b.listText, /^ {2}bm_status_read \[binfmt_misc\] {2}0x[0-9a-f]+ -> 0x[0-9a-f]+ \(tsplice_binfmt_misc_status_[0-9a-f]+\) {2}bound 1 time\(s\)$/m);
  });

  it('lets the module go once the update is unloaded', () => {
    const b = report.binfmt;
    assert.ok(b.unload.ok, b.unload.out);
    assert.ok(b.rmmodUnloaded.ok, b.rmmodUnloaded.out);
    assert.ok(!b.modulesAtEnd.includes('binfmt_misc'));
    assert.ok(!b.modulesAtEnd.some((m) => m.startsWith('tsplice_binfmt')), b.modulesAtEnd.join(' '));
  });

  it('switches functions of vmlinux, nft_ct and nf_tables in one update, and back', () => {
    const s = report.span;
    assert.ok(s.modulesLoaded.includes('nft_ct') && s.modulesLoaded.includes('nf_tables'));
    assert.ok(s.apply.ok, s.apply.out);
    const listed = s.list.find((u) => u.id === ids['netfilter-span']);
    assert.equal(listed?.state, 'applied');
    assert.deepEqual(
      listed?.functions.map((f) => `${f.name} [${f.owner ?? 'vmlinux'}]`).sort(),
      ['nft_ct_expect_obj_eval [nft_ct]', 'nft_exthdr_init [nf_tables]', 'version_proc_show [vmlinux]'],
    );
    assert.ok(s.version.endsWith('tsplice: patched version_proc_show\n'), s.version);
    s.bytesAfter.forEach((after, i) => assert.notEqual(after, s.bytesBefore[i], `function ${i} unchanged`));
    assert.ok(s.undo.ok, s.undo.out);
    assert.deepEqual(s.bytesUndone, s.bytesBefore);
    assert.ok(s.unload.ok, s.unload.out);
    assert.ok(s.rmmod.ok, s.rmmod.out);
    assert.ok(!s.modulesAtEnd.includes('nft_ct'), s.modulesAtEnd.join(' '));
    assert.deepEqual(s.modulesAtEnd.filter((m) => m.startsWith('tsplice_')), ['tsplice_core']);
  });

  it('leaves no warning or oops in the kernel log', () => {
    assert.doesNotMatch(report.dmesg, /BUG:|WARNING:|Oops|general protection|Call Trace/);
  });
});
