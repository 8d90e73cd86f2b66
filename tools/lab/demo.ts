/**
 * `tsplice demo`: the README's main command, on the lab default. It fetches and prepares the
 * lab, creates an update from a fix, boots Debian's stock kernel under QEMU, shows the effect
 * missing, applies the update live with the pause printed, shows the effect and the uptime
 * unchanged (no reboot), undoes it, and shuts the guest down.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { createUpdate } from '../../src/create/create.js';
import { labKernel } from '../../src/debian/fetch.js';
import { projectRoot } from '../../src/host/project.js';
import { chooseRelease } from '../../src/debian/kernel-choice.js';
import { prepareTree } from '../../src/kbuild/tree.js';
import { runInGuest } from './qemu.js';
import { writeUpdate } from '../../src/update/format.js';
import { run } from '../../src/host/exec.js';
import { progress } from '../../src/cli/output.js';

/** The fix the demo applies, and how a user sees its effect. */
interface DemoFix {
  /** The patch, relative to the project. */
  patch: string;
  title: string;
  /** A C program (relative to the project) compiled statically on the host into the share. */
  program?: { source: string; binary: string };
  /** Shell commands run once in the guest before anything is shown. */
  setup: string;
  /** Shell commands, run in the guest before, during and after the update. */
  observe: string;
}

/**
 * A real stable fix between 6.1.170 and 6.1.176 (see docs/corpus.md): once audit is locked
 * (`auditctl -e 2`), AUDIT_TRIM must be refused; 6.1.170 performs it.
 */
const DEMO_FIX: DemoFix = {
  patch: 'test/corpus/patches/kernel-audit.patch',
  title: 'kernel/audit.c: refuse AUDIT_TRIM and AUDIT_MAKE_EQUIV while audit is locked (Debian 6.1.176)',
  program: { source: 'test/corpus/demo/audit-trim.c', binary: 'audit-trim' },
  setup: 'echo "    locking audit (AUDIT_SET enabled=2), as a hardened system does:"; ./audit-trim lock | sed "s/^/    /" | head -1',
  observe: './audit-trim | sed "s/^/    /"',
};

function guestScript(updateFile: string, id: string, fix: DemoFix): string {
  return [
    'set -e',
    'step() { echo; echo "== $*"; }',
    'up() { cut -d" " -f1 /proc/uptime; }',
    'step "Running kernel: $(uname -r), $(uname -v)"',
    fix.setup,
    `step "Before the update (${fix.title.replace(/"/g, '\\"')})"`,
    fix.observe,
    'before=$(up); echo "    uptime: ${before} s"',
    `step "tsplice apply ${updateFile}"`,
    `tsplice apply ${updateFile}`,
    'step "With the update applied, no reboot"',
    fix.observe,
    'echo "    uptime: $(up) s (was ${before} s: the kernel kept running)"',
    'step "tsplice list"',
    'tsplice list',
    `step "tsplice undo ${id}"`,
    `tsplice undo ${id}`,
    'step "After undo"',
    fix.observe,
    'echo "    uptime: $(up) s"',
    `step "tsplice unload ${id} (undo kept the update's module loaded until now)"`,
    `tsplice unload ${id}`,
  ].join('\n');
}

export function addDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('the whole story on the lab kernel: create an update from a fix, apply it live, show it, undo it')
    .option('--kernel <release>', 'kernel release (default: oldest complete 6.1)')
    .action(async (opts: { kernel?: string }) => {
      const started = Date.now();
      const release = await chooseRelease(opts.kernel, progress);
      progress(`[1/4] Fetching ${release} (image, headers, source) from Debian's archive`);
      const kernel = await labKernel(release, progress);
      progress(`[2/4] Preparing the ${kernel.version} source tree like Debian's build`);
      const tree = await prepareTree(release, progress);
      const fix = DEMO_FIX;
      progress(`[3/4] Creating the update from ${fix.patch}: ${fix.title}`);
      const share = mkdtempSync(join(tmpdir(), 'tsplice-demo-'));
      try {
        if (fix.program) {
          await run(['gcc', '-static', '-O2', '-o', join(share, fix.program.binary), join(projectRoot(), fix.program.source)], {
            purpose: `compiling ${fix.program.source} for the guest`,
          });
        }
        const { update } = await createUpdate({
          tree,
          patches: [join(projectRoot(), fix.patch)],
          headersDir: kernel.headersDir,
          distributionVersion: kernel.version,
          log: progress,
        });
        const updateFile = `${update.id}.tsplice`;
        writeUpdate(join(share, updateFile), update);
        writeFileSync(join(share, 'demo.sh'), `${guestScript(updateFile, update.id, fix)}\n`);
        progress(`      ${updateFile}: ${update.functions.map((f) => `${f.name} (${f.status})`).join(', ')}`);
        progress(`[4/4] Booting ${release} under QEMU; inside it, tsplice applies and undoes the update`);
        const result = await runInGuest({
          kernel,
          command: 'sh demo.sh',
          cwd: share,
          shares: [share],
          timeoutSeconds: 600,
        });
        progress(`Done in ${((Date.now() - started) / 1000).toFixed(0)} s; the guest is shut down.`);
        process.exitCode = result.status;
      } finally {
        rmSync(share, { recursive: true, force: true });
      }
    });
}
