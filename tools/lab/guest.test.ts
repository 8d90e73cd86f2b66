/**
 * The lab on a booted kernel: one guest boot runs a checking script that reports what it saw
 * as JSON; the checks below assert on that report. Two more short boots show that a hung and a
 * crashed guest are reported, not waited on forever.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { chooseRelease } from '../../src/debian/kernel-choice.js';
import { labKernel, type LabKernel } from '../../src/debian/fetch.js';
import { buildModule } from '../../src/kbuild/external-module.js';
import { runGuestScript } from './guest-script.js';
import { GuestFailure, runInGuest, type GuestRunResult } from './qemu.js';

const quiet = (): void => {};

/** What the guest saw, written by the checking script below. */
interface GuestReport {
  procVersion: string;
  nodeVersion: string;
  uid: number;
  moduleLoaded: boolean;
  moduleInProcModules: boolean;
  taint: number;
  peek: { name: string; runningAddress: string; length: number; bytes: string };
  kallsymsAddress: string;
  /** Modules of the stock image loaded by modprobe, then removed by modprobe -r. */
  modprobe: { loaded: string[]; afterRemove: string[]; modulesDirWritable: boolean };
}

const CHECK_SCRIPT = `
import { execFileSync } from 'node:child_process';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
const sh = (cmd) => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
const report = {};
report.procVersion = readFileSync('/proc/version', 'utf8').trim();
report.nodeVersion = process.version;
report.uid = process.getuid();
sh('insmod ./module/tsplice_hello.ko');
report.moduleLoaded = sh('dmesg').includes('tsplice_hello: loaded in');
report.moduleInProcModules = readFileSync('/proc/modules', 'utf8').split('\\n').some((l) => l.startsWith('tsplice_hello '));
report.taint = Number(readFileSync('/proc/sys/kernel/tainted', 'utf8'));
report.peek = JSON.parse(sh('tsplice peek do_sys_poll --length 64 --json'));
report.kallsymsAddress = '0x' + readFileSync('/proc/kallsyms', 'utf8').split('\\n').find((l) => / [tT] do_sys_poll$/.test(l)).split(' ')[0];
const listed = () => readFileSync('/proc/modules', 'utf8').split('\\n').map((l) => l.split(' ')[0]).filter(Boolean);
sh('modprobe nf_conntrack');
const loaded = listed();
sh('modprobe -r nf_conntrack');
let modulesDirWritable = true;
// A write that succeeds would land in the host's cached image: take it back at once.
const probe = '/lib/modules/' + sh('uname -r').trim() + '/tsplice-probe';
try { writeFileSync(probe, ''); unlinkSync(probe); } catch { modulesDirWritable = false; }
report.modprobe = { loaded, afterRemove: listed(), modulesDirWritable };
writeFileSync('report.json', JSON.stringify(report));
console.log('guest checks done');
`;

const HELLO_MODULE = `#include <linux/module.h>
#include <linux/utsname.h>
static int __init tsplice_hello_init(void)
{
	pr_info("tsplice_hello: loaded in %s\\n", init_utsname()->release);
	return 0;
}
static void __exit tsplice_hello_exit(void) { }
module_init(tsplice_hello_init);
module_exit(tsplice_hello_exit);
MODULE_LICENSE("GPL");
`;

describe('the lab guest', () => {
  let kernel: LabKernel;
  let share: string;
  let run: GuestRunResult;
  let report: GuestReport;

  before(async () => {
    kernel = await labKernel(await chooseRelease(undefined, quiet), quiet);
    share = mkdtempSync(join(tmpdir(), 'tsplice-lab-test-'));
    mkdirSync(join(share, 'module'));
    writeFileSync(join(share, 'module', 'tsplice_hello.c'), HELLO_MODULE);
    writeFileSync(join(share, 'module', 'Kbuild'), 'obj-m := tsplice_hello.o\n');
    await buildModule(kernel, join(share, 'module'), 'tsplice_hello');
    const guest = await runGuestScript<GuestReport>({ kernel, share, script: CHECK_SCRIPT, command: 'node check.mjs && exit 7', timeoutSeconds: 300 });
    run = guest.run;
    assert.ok(guest.report, run.lines.slice(-30).join('\n'));
    report = guest.report;
  });

  it('returns the command\'s exit status and streams its output', () => {
    assert.equal(run.status, 7);
    assert.ok(run.lines.includes('guest checks done'), run.lines.join('\n'));
  });

  it('boots the requested Debian kernel', () => {
    assert.match(report.procVersion, new RegExp(`^Linux version ${kernel.release.replace(/\./g, '\\.')} `));
    assert.ok(report.procVersion.includes(`Debian ${kernel.version}`), report.procVersion);
  });

  it('runs Node as root in the shared folder, which the host sees', () => {
    assert.equal(report.nodeVersion, process.version);
    assert.equal(report.uid, 0);
    assert.ok(existsSync(join(share, 'report.json')));
  });

  it('loads an out-of-tree module built against the unpacked headers', () => {
    assert.equal(report.moduleLoaded, true);
    assert.equal(report.moduleInProcModules, true);
    // Taint bit 12 (O, out-of-tree) is set by loading it.
    assert.equal(report.taint & (1 << 12), 1 << 12);
  });

  it('loads a module of the stock image with its dependencies by modprobe, and removes it', () => {
    // nf_conntrack needs nf_defrag_ipv4, nf_defrag_ipv6 and libcrc32c (modules.dep).
    for (const name of ['nf_conntrack', 'nf_defrag_ipv4', 'nf_defrag_ipv6', 'libcrc32c']) assert.ok(report.modprobe.loaded.includes(name), `${name}: ${report.modprobe.loaded.join(' ')}`);
    assert.ok(!report.modprobe.afterRemove.includes('nf_conntrack'), report.modprobe.afterRemove.join(' '));
    // The host's copy of the image is shared read-only: the guest cannot change it.
    assert.equal(report.modprobe.modulesDirWritable, false);
  });

  it('reads a function\'s running bytes through /proc/kcore at its /proc/kallsyms address', () => {
    assert.equal(report.peek.runningAddress, report.kallsymsAddress);
    assert.equal(report.peek.length, 64);
    assert.equal(report.peek.bytes.length, 128);
    // KASLR moves the kernel off its link address.
    assert.notEqual(report.kallsymsAddress, '0xffffffff81000000');
    // The compiler emitted `call __fentry__` (e8 …); the kernel rewrote it at boot to the
    // 5-byte nop, and that is what the running bytes show.
    assert.equal(report.peek.bytes.slice(0, 10), '0f1f440000');
  });
});

describe('the lab guest, when things go wrong', () => {
  it('kills a guest that outlives --timeout and shows its last console lines', async () => {
    const kernel = await labKernel(await chooseRelease(undefined, quiet), quiet);
    const started = Date.now();
    await assert.rejects(
      runInGuest({ kernel, command: 'echo about to hang; sleep 1000', cwd: '/', shares: [], timeoutSeconds: 25, onLine: quiet }),
      (error: unknown) => {
        assert.ok(error instanceof GuestFailure);
        assert.match(error.message, /did not finish within 25 s/);
        assert.ok(error.lastLines.includes('about to hang'), error.lastLines.join('\n'));
        return true;
      },
    );
    assert.ok(Date.now() - started < 60_000);
  });

  it('reports a guest kernel that crashes', async () => {
    const kernel = await labKernel(await chooseRelease(undefined, quiet), quiet);
    await assert.rejects(
      runInGuest({ kernel, command: 'echo c > /proc/sysrq-trigger', cwd: '/', shares: [], timeoutSeconds: 120, onLine: quiet }),
      (error: unknown) => {
        assert.ok(error instanceof GuestFailure);
        assert.match(error.message, /crashed before the command finished: (Kernel panic|BUG:|Oops|sysrq)/);
        assert.ok(error.lastLines.length > 0);
        return true;
      },
    );
  });
});
