/**
 * `tsplice upgrade`, `withdraw`, `status` and `uname` on the booted lab kernel, against an
 * installed-package layout (--dir) holding an update made by `tsplice create` from
 * test/patches: applied, nothing to do the second time, undone when a newer manifest drops it,
 * withdrawn as the package's prerm does, and a hand-applied update never touched; the crash
 * guard stops a boot-time run after a boot that died applying. One boot runs the script; the
 * checks assert on its report.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { runGuestScript } from '../../tools/lab/guest-script.js';
import { labUpdates } from '../apply/lab-updates.js';
import type { InstalledManifest } from '../update/installed-manifest.js';
import { moduleNameFor } from '../update/module.js';

/** Runs in the guest: every step's output, parsed where it is JSON. */
const GUEST_SCRIPT = `
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
const setup = JSON.parse(readFileSync('setup.json', 'utf8'));
const env = { ...process.env, TSPLICE_STATE_DIR: setup.stateDir };
// stdout and stderr both kept, whatever the status: progress and the guard's sentence are on stderr.
const tsplice = (args) => {
  const r = spawnSync('sh', ['-c', 'tsplice ' + args], { encoding: 'utf8', env });
  return { ok: r.status === 0, status: r.status, out: r.stdout, err: r.stderr };
};
const json = (r) => { try { return JSON.parse(r.out); } catch { return { unparsed: r }; } };
const dir = ' --dir ' + setup.dir;
const install = (name) => writeFileSync(setup.manifestPath, readFileSync(name));
const ids = () => json(tsplice('list --json')).map((u) => u.id + ' ' + u.state);
const report = {};
const save = () => writeFileSync('report.json', JSON.stringify(report, null, 2));
report.bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
report.status0 = json(tsplice('status --json' + dir));
// an update applied by hand: upgrade must never undo it
report.byHand = tsplice('apply by-hand.tsplice');
// a boot that died while applying: the boot-time run applies nothing and exits 0
install('manifest-v1.json');
writeFileSync(setup.stateDir + '/applying.json', JSON.stringify({ bootId: 'dead-boot-0000', update: setup.id, action: 'apply', since: '2026-12-05T17:00:00.000Z' }));
report.guardedBoot = tsplice('upgrade --boot --json' + dir);
report.guardedList = ids();
report.guardedBootRun = JSON.parse(readFileSync(setup.stateDir + '/boot-run.json', 'utf8'));
report.guardedStatus = json(tsplice('status --json' + dir));
report.guardedStatusText = tsplice('status' + dir).out;
save();
// by hand: applies and clears the guard
report.first = tsplice('upgrade --json' + dir);
report.markerAfterFirst = existsSync(setup.stateDir + '/applying.json');
report.listAfterFirst = ids();
report.procVersion = readFileSync('/proc/version', 'utf8');
report.status1 = json(tsplice('status --json' + dir));
report.unameR1 = tsplice('uname -r' + dir).out.trim();
report.unameV1 = tsplice('uname -v' + dir).out.trim();
report.second = tsplice('upgrade --json' + dir);
report.bootAgain = tsplice('upgrade --boot --json' + dir);
report.bootRunAgain = JSON.parse(readFileSync(setup.stateDir + '/boot-run.json', 'utf8'));
save();
// a newer package drops the update: undone and unloaded, the hand-applied one stays
install('manifest-v2.json');
report.dropped = tsplice('upgrade --json' + dir);
report.listAfterDrop = ids();
report.modulesAfterDrop = readFileSync('/proc/modules', 'utf8');
report.procVersionAfterDrop = readFileSync('/proc/version', 'utf8');
// the older package again, then removed: prerm's withdraw
install('manifest-v1.json');
report.again = tsplice('upgrade --json' + dir);
report.withdraw = tsplice('withdraw --json');
report.withdrawOther = tsplice('withdraw --kernel 9.9.9-not-running --json');
report.listAfterWithdraw = ids();
report.statusAfterWithdraw = json(tsplice('status --json' + dir));
rmSync(setup.manifestPath);
report.unameRRemoved = tsplice('uname -r' + dir).out.trim();
report.statusRemoved = json(tsplice('status --json' + dir));
save();
`;

interface Outcome {
  ok: boolean;
  status: number;
  out: string;
  err?: string;
}
interface Summary {
  applied: string[];
  undone: string[];
  alreadyApplied: string[];
  failed: { id: string; reason: string }[];
  skipped: unknown[];
  guard?: { bootId: string; update: string };
}
interface Status {
  kernel: { release: string; debianVersion?: string };
  effective: { effective?: string; raised: boolean; missing: string[] };
  package?: { version: string };
  updates: { id: string; state: string; byUpgrade: boolean }[];
  notApplicable: { path: string; outcome: string; reason?: string }[];
  others: { id: string; state: string }[];
  crashGuard?: { bootId: string; message: string };
  lastBootRun?: { bootId: string; applied: string[]; note?: string };
}
interface Report {
  bootId: string;
  status0: Status;
  byHand: Outcome;
  guardedBoot: Outcome;
  guardedList: string[];
  guardedBootRun: { bootId: string; note?: string; guard?: { bootId: string } };
  guardedStatus: Status;
  guardedStatusText: string;
  first: Outcome;
  markerAfterFirst: boolean;
  listAfterFirst: string[];
  procVersion: string;
  status1: Status;
  unameR1: string;
  unameV1: string;
  second: Outcome;
  bootAgain: Outcome;
  bootRunAgain: { bootId: string; applied: string[]; guard?: unknown; note?: string };
  dropped: Outcome;
  listAfterDrop: string[];
  modulesAfterDrop: string;
  procVersionAfterDrop: string;
  again: Outcome;
  withdraw: Outcome;
  withdrawOther: Outcome;
  listAfterWithdraw: string[];
  statusAfterWithdraw: Status;
  unameRRemoved: string;
  statusRemoved: Status;
}

const summary = (o: Outcome): Summary => {
  assert.ok(o.out.trim().startsWith('{'), `not a JSON summary: ${JSON.stringify(o)}`);
  return JSON.parse(o.out) as Summary;
};

describe('tsplice upgrade on the booted lab kernel', () => {
  let report: Report;
  let id = '';
  let handId = '';
  let release = '';
  let booted = '';
  const to = '6.1.176-1';

  before(async () => {
    const lab = await labUpdates('upgrade');
    release = lab.release;
    booted = lab.kernel.version;
    const update = await lab.create('proc-version-string');
    id = update.id;
    handId = (await lab.create('proc-uptime-new-helper', 'by-hand')).id;
    // The installed-package layout: DIR/R/manifest.json and the update file it names.
    const dir = join(lab.share, 'updates');
    const folder = join(dir, release);
    mkdirSync(folder, { recursive: true });
    const bytes = readFileSync(join(lab.share, 'proc-version-string.tsplice'));
    writeFileSync(join(folder, '0001-fs-proc-version-c.tsplice'), bytes);
    const manifest = (version: string, updates: InstalledManifest['updates']): InstalledManifest => ({
      format: 1,
      kernel: release,
      from: booted,
      to,
      package: { name: `tsplice-updates-${release}`, version },
      updates,
      files: [
        ...updates.map((u) => ({ path: 'fs/proc/version.c', outcome: 'live' as const, update: u.id })),
        { path: 'mm/slub.c', outcome: 'needs-reboot' as const, reason: 'a changed structure layout (kmem_cache)' },
      ],
    });
    const entry = { id, file: '0001-fs-proc-version-c.tsplice', sha256: createHash('sha256').update(bytes).digest('hex'), sources: ['fs/proc/version.c'], modules: ['vmlinux'] };
    writeFileSync(join(lab.share, 'manifest-v1.json'), JSON.stringify(manifest(`${to}+tsplice1`, [entry])));
    writeFileSync(join(lab.share, 'manifest-v2.json'), JSON.stringify(manifest(`${to}+tsplice2`, [])));
    const stateDir = join(lab.share, 'state');
    mkdirSync(stateDir);
    writeFileSync(join(lab.share, 'setup.json'), JSON.stringify({ dir, stateDir, id, manifestPath: join(folder, 'manifest.json') }));
    const guest = await runGuestScript<Report>({ kernel: lab.kernel, share: lab.share, script: GUEST_SCRIPT, timeoutSeconds: 900 });
    assert.ok(guest.report, guest.run.lines.slice(-30).join('\n'));
    report = guest.report;
    assert.equal(guest.run.status, 0, guest.run.lines.slice(-30).join('\n'));
  });

  it('starts with nothing applied: the booted version, the package not installed', () => {
    assert.equal(report.status0.kernel.release, release);
    assert.equal(report.status0.kernel.debianVersion, booted);
    assert.equal(report.status0.package, undefined);
    assert.equal(report.status0.effective.effective, booted);
    assert.ok(report.byHand.ok, JSON.stringify(report.byHand));
  });

  it('at boot, applies nothing after a boot that died applying, exits 0, and says so in status', () => {
    assert.equal(report.guardedBoot.status, 0, JSON.stringify(report.guardedBoot));
    assert.equal(summary(report.guardedBoot).guard?.bootId, 'dead-boot-0000');
    assert.match(report.guardedBoot.err ?? '', /boot dead-boot-0000 died while applying/);
    assert.ok(!report.guardedList.some((l) => l.startsWith(id)), report.guardedList.join(', '));
    assert.equal(report.guardedBootRun.bootId, report.bootId);
    assert.match(report.guardedBootRun.note ?? '', /^skipped because boot dead-boot-0000 died while applying/);
    assert.equal(report.guardedStatus.crashGuard?.bootId, 'dead-boot-0000');
    assert.match(report.guardedStatusText, /^CRASH GUARD: .*run 'tsplice upgrade' by hand/m);
  });

  it('applies the update by hand, clears the guard, and the kernel runs the fix', () => {
    assert.ok(report.first.ok, JSON.stringify(report.first));
    assert.deepEqual(summary(report.first).applied, [id]);
    assert.equal(report.markerAfterFirst, false);
    assert.ok(report.listAfterFirst.includes(`${id} applied`), report.listAfterFirst.join(', '));
    assert.match(report.procVersion, /^tsplice: patched version_proc_show$/m, 'the patched /proc/version');
  });

  it('status and uname show the effective version once the update is in force', () => {
    const s = report.status1;
    assert.deepEqual(s.effective, { booted, effective: to, raised: true, missing: [] });
    assert.deepEqual(s.updates.map((u) => [u.id, u.state, u.byUpgrade]), [[id, 'applied', true]]);
    assert.deepEqual(s.notApplicable, [{ path: 'mm/slub.c', outcome: 'needs-reboot', reason: 'a changed structure layout (kmem_cache)' }]);
    assert.deepEqual(s.others, [{ id: handId, state: 'applied' }]);
    assert.equal(s.crashGuard, undefined);
    assert.equal(report.unameR1, to);
    assert.match(report.unameV1, new RegExp(`^#1 SMP PREEMPT_DYNAMIC Debian ${to.replace(/\./g, '\\.')} \\(tsplice; booted ${booted.replace(/\./g, '\\.')}\\)$`));
  });

  it('finds nothing to do the second time, at boot too, and records the boot-time run', () => {
    const second = summary(report.second);
    assert.deepEqual([second.applied, second.alreadyApplied, second.undone], [[], [id], []]);
    assert.deepEqual(summary(report.bootAgain).alreadyApplied, [id]);
    assert.equal(report.bootRunAgain.guard, undefined);
    assert.equal(report.bootRunAgain.note, undefined);
  });

  it('undoes and unloads what a newer package dropped, and leaves the hand-applied update', () => {
    assert.ok(report.dropped.ok, JSON.stringify(report.dropped));
    assert.deepEqual(summary(report.dropped).undone, [id]);
    assert.deepEqual(report.listAfterDrop, [`${handId} applied`]);
    assert.doesNotMatch(report.modulesAfterDrop, new RegExp(`^${moduleNameFor(id)} `, 'm'));
    assert.doesNotMatch(report.procVersionAfterDrop, /tsplice: patched/);
  });

  it("withdraws as the package's prerm does: upgrade's updates only; another kernel's package holds nothing", () => {
    assert.deepEqual(summary(report.again).applied, [id]);
    assert.ok(report.withdraw.ok, JSON.stringify(report.withdraw));
    assert.deepEqual(summary(report.withdraw).undone, [id]);
    assert.ok(report.withdrawOther.ok);
    assert.deepEqual(summary(report.withdrawOther).undone, []);
    assert.deepEqual(report.listAfterWithdraw, [`${handId} applied`]);
    assert.equal(report.statusAfterWithdraw.effective.effective, booted);
    assert.deepEqual(report.statusAfterWithdraw.effective.missing, [`${id} is not applied`]);
    assert.equal(report.unameRRemoved, release);
    assert.equal(report.statusRemoved.package, undefined);
  });
});
