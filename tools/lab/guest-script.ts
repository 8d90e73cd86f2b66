/**
 * How a test asks something of a booted kernel: it puts what the guest needs in a shared
 * folder, the lab boots the kernel once and runs a Node script there as root, and the script
 * writes what it saw to report.json; the test's checks then assert on that report on the host.
 * One boot per test file (the guide), so a file's checks read one report.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabKernel } from '../../src/debian/fetch.js';
import { runInGuest, type GuestRunResult } from './qemu.js';

export interface GuestScriptOptions {
  kernel: LabKernel;
  /** The host folder the guest shares (same path) and runs in; the script is written there. */
  share: string;
  /** The script's source (ESM); it writes report.json in its working folder. */
  script: string;
  /** Seconds before the guest is declared hung. */
  timeoutSeconds: number;
  /** The shell command line that runs the script (default `node check.mjs`). */
  command?: string;
}

export interface GuestScriptRun<Report> {
  run: GuestRunResult;
  /** What the script wrote; undefined when it wrote no report.json (it died first). */
  report: Report | undefined;
}

/** The script's file name in the share. */
export const GUEST_SCRIPT_FILE = 'check.mjs';

/**
 * Runs `script` in one boot of `kernel` and reads its report. A guest that hangs or panics
 * throws (runInGuest); a script that fails still returns the report it wrote up to then.
 */
export async function runGuestScript<Report>(options: GuestScriptOptions): Promise<GuestScriptRun<Report>> {
  writeFileSync(join(options.share, GUEST_SCRIPT_FILE), options.script);
  const run = await runInGuest({
    kernel: options.kernel,
    command: options.command ?? `node ${GUEST_SCRIPT_FILE}`,
    cwd: options.share,
    shares: [options.share],
    timeoutSeconds: options.timeoutSeconds,
    // The console streams only when asked (TSPLICE_TEST_VERBOSE=1): a test's output is its checks.
    ...(process.env['TSPLICE_TEST_VERBOSE'] ? {} : { onLine: (): void => {} }),
  });
  const path = join(options.share, 'report.json');
  return { run, report: existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Report) : undefined };
}
