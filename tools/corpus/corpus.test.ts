/**
 * A part of the real-fix corpus in the test command: the files of tools/corpus/selection.ts,
 * each made into an update once on the host as bench/corpus.ts does (createUpdate against the
 * lab tree, with the lab kernel's headers). A refusal must have its exact class and name what
 * is at fault; an update must replace the expected functions with the expected features, and
 * one guest boot runs the corpus bench's per-update procedure over all of them
 * (tools/corpus/guest.ts: `tsplice apply --json`, the kernel's record says applied, a jmp at each
 * site to the new code, smoke workload, dmesg clean, `tsplice undo`, original bytes back).
 * One test per file, so a failure names it.
 *
 * `tsplice apply` died now and then with SIGSEGV in the guest under multi-threaded TCG (a few
 * percent of applies, never the same update twice; the lab now runs single-threaded TCG for
 * that reason: docs/lab.md). An update whose
 * apply crashed is run once more in the same boot, after the others; its test passes only when
 * that run passes every step, and says that it needed it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { createUpdate } from '../../src/create/create.js';
import { FormatError } from '../../src/elf/index.js';
import { UserError } from '../../src/host/errors.js';
import { labKernel, type LabKernel } from '../../src/debian/fetch.js';
import { GUEST_PROJECT_DIR } from '../lab/guest-image.js';
import { projectRoot } from '../../src/host/project.js';
import { chooseRelease } from '../../src/debian/kernel-choice.js';
import { prepareTree } from '../../src/kbuild/tree.js';
import { GuestFailure, runInGuest } from '../lab/qemu.js';
import { writeUpdate, type UpdatePackage } from '../../src/update/format.js';
import { patchPath, readManifest } from '../../src/release/derive.js';
import { writeGroupPatch } from '../../src/release/group.js';
import { CORPUS_GUEST_APPEND, createClasses, parseGuestRecords, type GuestPlan, type GuestResult } from './outcome.js';
import { expectationProblems, SELECTION, updateFacts } from './selection.js';
import { adaptationOf } from '../../src/release/adapted.js';
import { ADAPTED_DIR } from './adapted-corpus.js';

const quiet = (): void => {};
/** Where the update of a selected file's adapted patch is kept beside the file's own. */
const adaptedKey = (file: string): string => `${file} (adapted)`;
const say = (line: string): void => {
  process.stderr.write(`corpus test: ${line}\n`);
};
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

interface Created {
  update?: UpdatePackage;
  /** Where the update is written in the share. */
  path?: string;
  error?: unknown;
  ms: number;
}

/**
 * The guest's runner: the corpus driver over the plan, then once more over the updates whose
 * apply crashed and, when the driver itself died of a signal (tsplice's commands run in its
 * process), over the update it died in and those it had not reached.
 */
const RUNNER = `
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
const driver = '${GUEST_PROJECT_DIR}/dist/tools/corpus/guest.js';
const first = spawnSync('node', [driver, 'plan.json'], { stdio: 'inherit' });
const died = first.signal !== null;
if (!died && first.status !== 0) process.exit(first.status ?? 1);
const plan = JSON.parse(readFileSync('plan.json', 'utf8'));
const lines = existsSync(plan.results) ? readFileSync(plan.results, 'utf8').split('\\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
const results = lines.filter((r) => r.type === 'result');
const done = new Set(results.map((r) => r.id));
const crashed = new Set(results.filter((r) => r.outcome === 'apply crashed').map((r) => r.id));
const again = plan.items.filter((i) => crashed.has(i.id) || (died && !done.has(i.id)));
if (again.length === 0) process.exit(died ? 1 : 0);
const retry = { results: plan.results.replace(/\\.jsonl$/, '-retry.jsonl'), items: again };
writeFileSync('plan-retry.json', JSON.stringify(retry));
const second = spawnSync('node', [driver, 'plan-retry.json'], { stdio: 'inherit' });
process.exit(second.status ?? 1);
`;

/** The records of a results file of the guest driver: results by update id, and the update it stopped in. */
function readRecords(path: string): { results: Map<string, GuestResult>; unfinished?: string } {
  const lines = existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
  const { results, unfinished } = parseGuestRecords(lines);
  return { results: new Map(results.map((r) => [r.id, r])), ...(unfinished ? { unfinished } : {}) };
}

describe('the real-fix corpus selection on the lab kernel', () => {
  let kernel: LabKernel;
  let share: string;
  const created = new Map<string, Created>();

  before(async () => {
    const started = Date.now();
    const release = await chooseRelease(undefined, quiet);
    kernel = await labKernel(release, quiet);
    const tree = await prepareTree(release, quiet);
    const manifestPath = join(projectRoot(), 'test', 'corpus', 'manifest.json');
    const manifest = readManifest(manifestPath);
    assert.equal(manifest.from.version, kernel.version, `the corpus is against ${manifest.from.version}, the lab kernel ${release} is ${kernel.version}`);
    share = mkdtempSync(join(tmpdir(), 'tsplice-corpus-test-'));
    for (const selected of SELECTION) {
      const entry = manifest.files.find((e) => e.file === selected.file);
      assert.ok(entry, `${selected.file} is not in ${manifestPath}`);
      const t0 = Date.now();
      const result: Created = { ms: 0 };
      try {
        const { update } = await createUpdate({
          tree,
          patches: [
            selected.groupWith
              ? writeGroupPatch(join(share, `group-${selected.file.replace(/\W/g, '-')}.patch`), [selected.file, ...selected.groupWith], (f) => {
                  const member = manifest.files.find((e) => e.file === f);
                  assert.ok(member, `${f} is not in ${manifestPath}`);
                  return patchPath(manifestPath, manifest, member);
                })
              : patchPath(manifestPath, manifest, entry),
          ],
          distributionVersion: kernel.version,
          headersDir: kernel.headersDir,
          log: quiet,
        });
        result.update = update;
        result.path = join(share, `${update.id}.tsplice`);
        writeUpdate(result.path, update);
      } catch (error) {
        result.error = error;
      }
      result.ms = Date.now() - t0;
      created.set(selected.file, result);
      const what = result.update ? `created (${result.update.functions.length} functions)` : `refused: ${(result.error instanceof Error ? result.error.message : String(result.error)).split('\n').slice(-1)[0]?.trim().slice(0, 120)}`;
      say(`${selected.file}: ${what} in ${seconds(result.ms)}`);
      if (selected.adapted) {
        const adaptation = adaptationOf(entry.patch, ADAPTED_DIR);
        const t1 = Date.now();
        const adapted: Created = { ms: 0 };
        try {
          assert.equal(adaptation?.kind, 'patch', `${selected.file}: no adapted patch test/corpus/adapted/${entry.patch}`);
          const { update } = await createUpdate({ tree, patches: [adaptation.path], distributionVersion: kernel.version, headersDir: kernel.headersDir, log: quiet });
          adapted.update = update;
          adapted.path = join(share, `${update.id}.tsplice`);
          writeUpdate(adapted.path, update);
        } catch (error) {
          adapted.error = error;
        }
        adapted.ms = Date.now() - t1;
        created.set(adaptedKey(selected.file), adapted);
        say(`${selected.file} (adapted): ${adapted.update ? 'created' : 'refused'} in ${seconds(adapted.ms)}`);
      }
    }
    say(`create part: ${SELECTION.length} files in ${seconds(Date.now() - started)}`);
  });

  const createdFor = (file: string): Created => {
    const c = created.get(file);
    assert.ok(c, `${file} was not created`);
    return c;
  };

  describe('refused at create, with the exact class', () => {
    for (const selected of SELECTION.filter((s) => s.refused !== undefined)) {
      it(`${selected.file}: ${selected.refused} (${selected.why})`, () => {
        const c = createdFor(selected.file);
        assert.equal(c.update, undefined, `create made an update (${c.update?.functions.map((f) => f.name).join(', ')}) instead of refusing: ${selected.refused}`);
        const error = c.error;
        assert.ok(error instanceof UserError || error instanceof FormatError, `create crashed instead of refusing: ${error instanceof Error ? error.stack : String(error)}`);
        assert.deepEqual(createClasses(error.diagnostics), [selected.refused], error.message);
        if (selected.names) assert.ok(error.message.includes(selected.names), `the refusal does not say '${selected.names}':\n${error.message}`);
      });
    }
  });

  describe('applied, checked and undone in one guest boot', () => {
    // Each selected update, and each adapted one (the fix with its author's new code).
    const applied = [
      ...SELECTION.flatMap((s) => (s.update ? [{ key: s.file, selected: s, expected: s.update }] : [])),
      ...SELECTION.flatMap((s) => (s.adapted ? [{ key: adaptedKey(s.file), selected: s, expected: s.adapted }] : [])),
    ];
    let first = new Map<string, GuestResult>();
    let retried = new Map<string, GuestResult>();
    /** Why an update has no result: the guest died, hung or stopped before it. */
    let stopped: string | undefined;
    let broke: string | undefined;
    /** The update the driver's first run died in, when it died (and the runner ran it again). */
    let diedIn: string | undefined;

    before(async () => {
      const started = Date.now();
      const items: GuestPlan['items'] = [];
      for (const { key, selected } of applied) {
        const c = created.get(key);
        if (c?.update && c.path) items.push({ id: c.update.id, file: selected.file, update: c.path, ...(selected.late ? { late: true } : {}) });
      }
      assert.ok(items.length > 0, 'create made no update of the selection');
      const plan: GuestPlan = { results: join(share, 'results.jsonl'), items };
      writeFileSync(join(share, 'plan.json'), `${JSON.stringify(plan, null, 2)}\n`);
      writeFileSync(join(share, 'run.mjs'), RUNNER);
      let lastLines: string[] = [];
      try {
        const run = await runInGuest({
          kernel,
          command: 'node run.mjs',
          cwd: share,
          shares: [share],
          // TCG on two cores: a boot, then about 6 s per update (apply, smoke, undo), with room.
          timeoutSeconds: 300 + 120 * items.length,
          append: CORPUS_GUEST_APPEND,
          onLine: (line) => {
            lastLines = [...lastLines.slice(-29), line];
            if (line.startsWith('corpus: ') && line.includes(': ', 8)) say(`  ${line.slice(8, 300)}`);
          },
        });
        if (run.status !== 0) stopped = `the guest driver exited with status ${run.status} (3: an update left the kernel suspect)\n${lastLines.join('\n')}`;
      } catch (error) {
        if (!(error instanceof GuestFailure)) throw error;
        stopped = error.message;
      }
      const firstRecords = readRecords(plan.results);
      const retriedRecords = readRecords(join(share, 'results-retry.jsonl'));
      first = firstRecords.results;
      retried = retriedRecords.results;
      diedIn = firstRecords.unfinished;
      broke = retriedRecords.unfinished ?? (retried.has(firstRecords.unfinished ?? '') ? undefined : firstRecords.unfinished);
      say(`guest part: ${items.length} updates in ${seconds(Date.now() - started)} (one boot)${stopped ? `; stopped: ${stopped.split('\n')[0]}` : ''}`);
    });

    for (const { key, selected, expected } of applied) {
      const adapted = key !== selected.file;
      it(`${key}: applies, runs, undoes (${adapted ? 'with its author\'s new code: ' : ''}${selected.why})`, (t) => {
        const c = createdFor(key);
        const message = c.error instanceof Error ? c.error.message : String(c.error);
        assert.ok(c.update, `create refused: ${message}`);
        const update = c.update;
        assert.deepEqual(expectationProblems(updateFacts(update), expected), [], `the update of ${selected.file} is not the expected one`);
        t.diagnostic(`created in ${seconds(c.ms)}: ${update.functions.map((f) => f.name).join(', ')}`);

        const firstRun = first.get(update.id);
        let result = firstRun;
        if (firstRun?.outcome === 'apply crashed') {
          t.diagnostic(`the first apply crashed (${firstRun.error ?? ''}); run once more`);
          result = retried.get(update.id);
        } else if (!firstRun && retried.has(update.id)) {
          if (diedIn === update.id) t.diagnostic('the driver died during the first run of this update; run once more');
          result = retried.get(update.id);
        }
        const why = broke === update.id ? `the guest broke during this update: ${stopped ?? ''}` : `the guest never ran it${stopped ? `: ${stopped}` : ''}`;
        assert.ok(result, why);
        assert.equal(result.outcome, 'applied', `${result.outcome}: ${result.error ?? ''}${result.dmesg.length ? `\nkernel log: ${result.dmesg.join('\n')}` : ''}`);
        assert.equal(result.error, undefined);
        // The kernel's record lists every replaced function, each with a jmp to the new code
        // at its site, and its original bytes back after undo.
        assert.deepEqual(result.functions.map((f) => f.name).sort(), [...expected.functions].sort(), 'the functions the kernel lists as replaced');
        if (adapted) assert.ok(result.functions.length > 0 || (update.hooks?.length ?? 0) + (update.declarations?.length ?? 0) > 0, 'an adapted update with nothing in it');
        for (const f of result.functions) {
          assert.ok(f.jumps, `${f.name}: no jmp to ${f.newAddress} at +${f.site}: ${f.applied}`);
          assert.ok(f.site === 0 || f.site === 5, `${f.name}: site +${f.site}`);
          assert.equal(f.restored, true, `${f.name}: after undo ${f.undone ?? '?'}`);
        }
        assert.deepEqual(result.dmesg, [], 'the kernel complained');
        assert.ok(result.undoPauseNs !== undefined, 'undone');
        assert.notEqual(result.reboot, true);
        if (selected.late) {
          // Applied with the module unloaded: patched as it loaded, and again after rmmod and modprobe.
          assert.equal(result.late?.ok, true, `the late path: ${result.late?.error ?? 'not run'}`);
          assert.equal(result.late?.firstLoad, expected.functions.length);
          assert.equal(result.late?.reload, expected.functions.length);
        }
        t.diagnostic(`applied in ${seconds(result.applyWallMs ?? 0)} (pause ${((result.pauseNs ?? 0) / 1000).toFixed(0)} µs), undone in ${seconds(result.undoWallMs ?? 0)}`);
      });
    }
  });
});
