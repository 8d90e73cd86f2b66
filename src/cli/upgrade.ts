/**
 * `tsplice upgrade`, `withdraw`, `status`, `uname`: the installed updates package of the running
 * kernel (/usr/lib/tsplice/updates/R/, written by the package `tsplice-updates-R`), applied at
 * install and at every boot (tsplice.service), withdrawn when the package is removed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname, machine, release, version } from 'node:os';
import type { Command } from 'commander';
import { INSTALLED_UPDATES_DIR, readInstalledManifest } from '../update/installed-manifest.js';
import { readAppliedRecord } from '../upgrade/applied-record.js';
import { readBootRun, readMarker } from '../upgrade/crash-guard.js';
import { effectiveVersionLine } from '../upgrade/effective-version.js';
import { kernelStatus, runningKernel } from '../upgrade/kernel-updates.js';
import { currentBootId, stateDir } from '../upgrade/state-files.js';
import { statusText, tspliceStatus, type TspliceStatus } from '../upgrade/status.js';
import { UPGRADE_LOCK_PATH, upgrade, type UpgradeSummary } from '../upgrade/upgrade.js';
import { withLock } from '../apply/lock.js';
import type { CoreStatus } from '../switch/core-status.js';
import { requireRoot } from './apply.js';
import { printJson, progress } from './output.js';

interface UpgradeFlags {
  json?: boolean;
  boot?: boolean;
  dir: string;
  kernel?: string;
}

function summaryText(s: UpgradeSummary): string {
  if (s.guard) return 'nothing applied: the crash guard tripped (see tsplice status)\n';
  const what = s.package ? `${s.package} for ${s.kernel}` : `no updates package for ${s.kernel}`;
  const counts = [`${s.applied.length} applied`, `${s.alreadyApplied.length} already applied`, `${s.undone.length} undone`, `${s.failed.length} failed`, `${s.skipped.length} skipped`];
  return `${what}: ${counts.join(', ')}\n`;
}

function finish(summary: UpgradeSummary, json: boolean | undefined): void {
  if (json) printJson(summary);
  else process.stdout.write(summaryText(summary));
  // Each failure was said as it happened; the status tells systemd and apt that not all is in force.
  if (summary.failed.length > 0) process.exitCode = 1;
}

/**
 * What the kernel holds, for status and uname. Without root the kernel's list is unreadable
 * (/proc/tsplice is 0700), and "nothing applied" would be a wrong answer; but with no core
 * module loaded at all (/sys/module is readable by all) nothing is applied, and anyone may know.
 */
async function heldByKernel(verb: string): Promise<CoreStatus | undefined> {
  if (!existsSync('/sys/module/tsplice_core')) return undefined;
  requireRoot(verb);
  return kernelStatus();
}

async function currentStatus(dir: string, verb: string): Promise<TspliceStatus> {
  const state = stateDir();
  const bootId = currentBootId();
  return tspliceStatus({
    release: release(),
    procVersion: readFileSync('/proc/version', 'utf8'),
    versionLine: version(),
    manifest: readInstalledManifest(dir, release()),
    core: await heldByKernel(verb),
    record: readAppliedRecord(state, bootId),
    bootId,
    marker: readMarker(state),
    lastBootRun: readBootRun(state),
  });
}

export function addUpgradeCommands(program: Command): void {
  program
    .command('upgrade')
    .description("apply the running kernel's installed updates package (root): every update it ships not applied yet, in order; undo and unload the ones upgrade applied that it no longer ships")
    .option('--boot', 'run by tsplice.service at boot: the crash guard applies and the run is recorded')
    .option('--dir <dir>', 'the folder of installed updates packages', INSTALLED_UPDATES_DIR)
    .option('--json', 'print a summary as JSON')
    .action(async (opts: UpgradeFlags) => {
      requireRoot('upgrade');
      const run = () => upgrade({ dir: opts.dir, release: release(), bootId: currentBootId(), stateDir: stateDir(), kernel: runningKernel, boot: opts.boot === true, log: progress });
      const summary = await withLock('upgrade', run, UPGRADE_LOCK_PATH);
      finish(summary, opts.json);
    });

  program
    .command('withdraw')
    .description("undo and unload, newest first, every update tsplice upgrade applied (root): the updates package's prerm runs it on remove; hand-applied updates stay")
    .option('--kernel <release>', 'the kernel release whose package is removed (default: the running kernel); another kernel holds nothing now')
    .option('--json', 'print a summary as JSON')
    .action(async (opts: Omit<UpgradeFlags, 'dir'>) => {
      requireRoot('withdraw');
      const running = release();
      if (opts.kernel !== undefined && opts.kernel !== running) {
        // Removing the package of a kernel that is not running: nothing of it is in memory.
        const summary: UpgradeSummary = { kernel: opts.kernel, applied: [], undone: [], alreadyApplied: [], failed: [], skipped: [] };
        if (!opts.json) progress(`the running kernel is ${running}, not ${opts.kernel}: nothing to undo`);
        finish(summary, opts.json);
        return;
      }
      const run = () => upgrade({ dir: INSTALLED_UPDATES_DIR, release: running, bootId: currentBootId(), stateDir: stateDir(), kernel: runningKernel, withdraw: true, log: progress });
      const summary = await withLock('withdraw', run, UPGRADE_LOCK_PATH);
      finish(summary, opts.json);
    });

  program
    .command('status')
    .description('the running kernel, its effective version, the installed updates package and what of it is in force, the last boot-time run and the crash guard')
    .option('--dir <dir>', 'the folder of installed updates packages', INSTALLED_UPDATES_DIR)
    .option('--json', 'print JSON')
    .action(async (opts: { dir: string; json?: boolean }) => {
      const status = await currentStatus(opts.dir, 'status');
      if (opts.json) printJson(status);
      else process.stdout.write(statusText(status));
    });

  program
    .command('uname')
    .description("uname with the effective version: -r the Debian version the updates raise the kernel to (else the release), -v the version line with it")
    .option('-r, --kernel-release', 'the effective Debian version when updates raise it, else the kernel release')
    .option('-v, --kernel-version', "the kernel's version line, its Debian version replaced by the effective one")
    .option('-a, --all', 'all, as uname -a (the release stays the kernel release; -v says the version)')
    .option('--dir <dir>', 'the folder of installed updates packages', INSTALLED_UPDATES_DIR)
    .action(async (opts: { kernelRelease?: boolean; kernelVersion?: boolean; all?: boolean; dir: string }) => {
      const status = await currentStatus(opts.dir, 'uname');
      const line = effectiveVersionLine(status.kernel.version, status.effective);
      const effectiveRelease = status.effective.raised && status.effective.effective ? status.effective.effective : status.kernel.release;
      let words: string[];
      if (opts.all) words = ['Linux', hostname(), status.kernel.release, line, machine(), 'GNU/Linux'];
      else if (opts.kernelRelease || opts.kernelVersion) words = [...(opts.kernelRelease ? [effectiveRelease] : []), ...(opts.kernelVersion ? [line] : [])];
      else words = ['Linux'];
      process.stdout.write(`${words.join(' ')}\n`);
    });
}
