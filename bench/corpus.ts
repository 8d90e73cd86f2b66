/**
 * `npm run bench:corpus`: the corpus of real fixes (test/corpus/manifest.json, derived by
 * src/release/derive.ts from the 6.1.170-3 and 6.1.176-1 trees), made into updates and applied
 * to the running lab kernel.
 *
 * 1. Host: an update for each corpus patch (src/release/fix-updates.ts) against the lab kernel's prepared tree, with
 *    the lab headers (so the update carries its module): created, or refused with a class.
 * 2. Guest: one boot runs tools/corpus/guest.ts over every created update (apply, check the
 *    jmp, smoke workload, dmesg, undo, check the bytes). A boot is started again only when an
 *    update left the guest unusable (it died, hung, oopsed or asked for it), and counted.
 * 3. A table per file and the totals.
 *
 *   --limit N       the first N corpus files      --only A,B   these files
 *   --skip-guest    create only                   --json PATH  write the rows and totals
 *   --markdown PATH write the table and totals as Markdown
 *   --max-boots N   give up after N boots of one guest (default 8)
 *   --jobs N        updates created at once on the host (default: the number of CPUs)
 *   --guests N      guests booted side by side, the updates dealt round robin (default: one
 *                   per two CPUs); each boots again on its own when an update breaks it
 *   --late N        run the late path (apply with the module unloaded, modprobe, rmmod,
 *                   modprobe, undo) on N module updates spread over the list (default 25)
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { UserError, type DiagnosticKind } from '../src/host/errors.js';
import { cachePath } from '../src/host/cache.js';
import { labKernel } from '../src/debian/fetch.js';
import { GUEST_PROJECT_DIR } from '../tools/lab/guest-image.js';
import { projectRoot } from '../src/host/project.js';
import { chooseRelease } from '../src/debian/kernel-choice.js';
import { prepareTree, preparedTree } from '../src/kbuild/tree.js';
import { GuestFailure, runInGuest } from '../tools/lab/qemu.js';
import { writeUpdate } from '../src/update/format.js';
import { makeFixUpdates, type FixFile, type FixResult } from '../src/release/fix-updates.js';
import { patchPath, readManifest, type CorpusEntry } from '../src/release/derive.js';
import { ADAPTED_DIR } from '../tools/corpus/adapted-corpus.js';
import { APPLIED_WITH_NEW_CODE, NOT_LIVE, CORPUS_GUEST_APPEND, createClasses, formatMarkdown, parseGuestRecords, formatTable, formatTotals, totals, type CorpusRow, type GuestPlan, type GuestResult } from '../tools/corpus/outcome.js';

const { values } = parseArgs({
  options: {
    limit: { type: 'string' },
    only: { type: 'string' },
    'skip-guest': { type: 'boolean', default: false },
    json: { type: 'string' },
    markdown: { type: 'string' },
    'max-boots': { type: 'string', default: '8' },
    manifest: { type: 'string' },
    late: { type: 'string', default: '25' },
    jobs: { type: 'string' },
    guests: { type: 'string' },
  },
});

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const benchStarted = Date.now();
const elapsed = (): string => `${((Date.now() - benchStarted) / 60000).toFixed(1)} min`;

/** Updates created at once on the host (default: the number of CPUs). */
const jobs = Math.max(1, values.jobs ? Number(values.jobs) : availableParallelism());

const manifestPath = values.manifest ?? join(projectRoot(), 'test', 'corpus', 'manifest.json');
if (!existsSync(manifestPath)) throw new UserError(`${manifestPath} is missing: derive the corpus first (npm run build && node dist/tools/corpus/derive-cli.js).`, { kind: 'missing-file', object: manifestPath });
const manifest = readManifest(manifestPath);
let entries: CorpusEntry[] = manifest.files;
if (values.only) {
  const only = values.only.split(',');
  entries = entries.filter((e) => only.includes(e.file));
}
if (values.limit) entries = entries.slice(0, Number(values.limit));

/**
 * Files the derivation could not make a patch of (the manifest's deriveErrors), as rows: each
 * is a fix of the release that tsplice does not apply, counted against its part's share with
 * the class of its refusal (create refuses such a unit the same way: the step that failed is
 * create's own, buildPreObject).
 */
const underived: CorpusRow[] = (manifest.deriveErrors ?? [])
  .filter((f) => !values.only || values.only.split(',').includes(f.file))
  .filter(() => !values.limit)
  .map((f) => {
    const cls = f.kind ? createClasses([{ kind: f.kind as DiagnosticKind, reason: f.deriveError }])[0] : 'derivation failed';
    const reason = `not derived: ${cls}`;
    return { file: f.file, unit: f.unit, outcome: reason, reason, changesCode: true, functions: 0, headers: 0, error: f.deriveError, part: f.status === 'module' ? 'module' : 'built-in' };
  });

const release = await chooseRelease(undefined, log);
const kernel = await labKernel(release, log);
if (kernel.version !== manifest.from.version) throw new UserError(`The corpus is against ${manifest.from.version}, the lab kernel ${release} is ${kernel.version}.`, { kind: 'wrong-kernel' });
const tree = preparedTree(release, kernel.version) ?? (await prepareTree(release, log));
const work = cachePath('corpus', 'bench-run');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

const byFile = new Map(manifest.files.map((e) => [e.file, e]));
const fixFile = (e: CorpusEntry): FixFile => ({ file: e.file, unit: e.unit, patch: patchPath(manifestPath, manifest, e) });

// 1. Create (src/release/fix-updates.ts, as a release makes them). A file already in a created
// group's update is not made again: that one update carries its diff, and its outcome is the file's.
const rows = new Map<string, CorpusRow>();
const created: { entry: CorpusEntry; id: string; path: string; group: string[]; module: boolean }[] = [];
/** Files whose diff is carried by another file's update: file -> the file whose update it is. */
const carriedBy = new Map<string, string>();
log(`Creating ${entries.length} updates against ${tree.dir} (${jobs} at once)...`);
const fixes = await makeFixUpdates({
  tree,
  headersDir: kernel.headersDir,
  distributionVersion: kernel.version,
  files: entries.map(fixFile),
  pool: manifest.files.map(fixFile),
  jobs,
  workDir: work,
  adaptedDir: ADAPTED_DIR,
  onResult: (fix, i) => {
    const entry = entries[i] as CorpusEntry;
    const row = rowOf(entry, fix);
    rows.set(entry.file, row);
    const where = fix.outcome === 'carried' ? `in the update of ${fix.carriedBy}` : `${row.outcome}${row.functions ? ` (${row.functions} functions)` : ''} in ${row.createSeconds?.toFixed(1)} s`;
    log(`[${i + 1}/${entries.length}] ${entry.file}: ${where}  [${elapsed()}]`);
  },
});
// Rows in the order of the manifest (a file only adding functions is decided last).
{
  const ordered = new Map(entries.map((e) => [e.file, rows.get(e.file) as CorpusRow]));
  rows.clear();
  for (const [file, row] of ordered) rows.set(file, row);
}
for (const fix of fixes) {
  if (fix.outcome !== 'created') continue;
  const entry = byFile.get(fix.file) as CorpusEntry;
  const path = join(work, `${fix.update.id}.tsplice`);
  writeUpdate(path, fix.update);
  created.push({ entry, id: fix.update.id, path, group: fix.group, module: fix.update.functions.some((f) => f.module !== undefined) });
}

/** The report's row for a file's fix as create left it. */
function rowOf(entry: CorpusEntry, fix: FixResult): CorpusRow {
  const row: CorpusRow = { file: entry.file, unit: entry.unit, outcome: '', reason: '', changesCode: true, functions: 0, headers: entry.headers.length, part: entry.status === 'module' ? 'module' : 'built-in' };
  if (fix.outcome === 'carried') {
    carriedBy.set(entry.file, fix.carriedBy);
    if (fix.refusedAlone !== undefined) row.refusedAlone = fix.refusedAlone;
    row.outcome = row.reason = 'created';
    return row;
  }
  row.createSeconds = fix.seconds;
  if (fix.outcome === 'created') {
    if (fix.group.length > 1) {
      row.groupedWith = fix.group.filter((f) => f !== entry.file);
      row.groupReasons = fix.groupReasons;
    }
    if (fix.adapted) {
      row.refusedAlone = fix.refusedAlone;
      row.adapted = { patch: `adapted/${entry.patch}`, newLines: fix.adapted.newLines };
    }
    row.functions = fix.update.functions.length;
    row.outcome = row.reason = 'created';
    return row;
  }
  row.reason = `refused at create: ${fix.classes[0]}`;
  row.outcome = row.reason + (fix.classes.length > 1 ? ` (+${fix.classes.slice(1).join(', ')})` : '');
  row.error = fix.error;
  row.changesCode = fix.changesCode;
  if (fix.notLive !== undefined) {
    row.refusedAlone = fix.error;
    row.adapted = { notLive: fix.notLive };
    row.reason = NOT_LIVE;
    row.outcome = `${NOT_LIVE}: ${fix.notLive}`;
  } else if (fix.adapted) {
    row.refusedAlone = fix.error;
    row.adapted = { patch: `adapted/${entry.patch}`, newLines: fix.adapted.newLines };
    row.error = fix.adapted.error;
    row.outcome = `adapted patch refused at create: ${fix.adapted.classes.join(', ')}`;
  }
  return row;
}

// 2. Apply in the guest.
type Created = (typeof created)[number];
type Done = GuestResult & { boot: number };

/**
 * One guest lane: boots the lab guest on `items` (booting again after an update left it
 * unusable, up to `maxBoots`), with its own plan and results files in the share. Lanes run
 * side by side: a guest runs on one host thread (TCG), so two lanes use two cores.
 */
async function guestLane(lane: number, items: Created[], lateIds: ReadonlySet<string>, maxBoots: number): Promise<{ done: Map<string, Done>; boots: number }> {
  const resultsPath = join(work, `results-${lane}.jsonl`);
  const planPath = join(work, `plan-${lane}.json`);
  const done = new Map<string, Done>();
  const name = lanes > 1 ? `lane ${lane + 1}, ` : '';
  let seen = 0;
  let laneBoots = 0;
  while (done.size < items.length && laneBoots < maxBoots) {
    const remaining = items.filter((c) => !done.has(c.id));
    const plan: GuestPlan = { results: resultsPath, items: remaining.map((c) => ({ id: c.id, file: c.entry.file, update: c.path, ...(lateIds.has(c.id) ? { late: true } : {}) })) };
    writeFileSync(planPath, `${JSON.stringify(plan, null, 2)}\n`);
    const boot = laneBoots++;
    log(`Boot ${laneBoots} (${name}${remaining.length} updates to apply)  [${elapsed()}]`);
    let lastLines: string[] = [];
    let failure: string | undefined;
    try {
      const r = await runInGuest({
        kernel,
        command: `node ${GUEST_PROJECT_DIR}/dist/tools/corpus/guest.js ${planPath}`,
        cwd: work,
        shares: [work],
        timeoutSeconds: 180 + 150 * remaining.length,
        append: CORPUS_GUEST_APPEND,
        onLine: (line) => {
          lastLines.push(line);
          if (lastLines.length > 30) lastLines = lastLines.slice(-30);
          if (line.startsWith('corpus: ') && line.includes(': ', 8)) log(`  ${line.slice(8)}  [${elapsed()}]`);
        },
      });
      if (r.status !== 0 && r.status !== 3) failure = `the guest driver exited with status ${r.status}`;
    } catch (error) {
      if (!(error instanceof GuestFailure)) throw error;
      failure = error.message.split('\n')[0];
      lastLines = error.lastLines;
    }
    const lines = existsSync(resultsPath) ? readFileSync(resultsPath, 'utf8').split('\n').filter(Boolean) : [];
    const records = parseGuestRecords(lines.slice(seen));
    for (const result of records.results) done.set(result.id, { ...result, boot });
    const started = records.unfinished;
    const progressed = lines.length > seen;
    seen = lines.length;
    if (started && !done.has(started)) {
      const item = items.find((c) => c.id === started);
      const why = failure ?? 'the guest stopped during this update';
      const console = lastLines.filter((l) => /Kernel panic|BUG|Oops|RIP|WARNING|lockup|stall|blocked/.test(l)).slice(0, 4).join(' | ');
      done.set(started, { id: started, file: item?.entry.file ?? started, outcome: 'guest broke', error: `${why}${console ? `: ${console}` : ''}`, functions: [], dmesg: [], boot });
      log(`  ${item?.entry.file}: guest broke: ${why}`);
    } else if (failure && done.size < items.length) {
      log(`  boot ${laneBoots} (${name}) ended without an update in progress: ${failure}`);
      // A guest that dies before its first update will not do better booted again.
      if (!progressed && laneBoots >= 2) break;
    }
  }
  return { done, boots: laneBoots };
}

let boots = 0;
/** Guests run side by side (default: one per two CPUs, at least one; --guests N). */
const lanes = Math.max(1, Math.min(values.guests ? Number(values.guests) : Math.floor(availableParallelism() / 2) || 1, created.length || 1));
if (!values['skip-guest'] && created.length > 0) {
  const done = new Map<string, Done>();
  // The late path on module updates spread evenly over the list (sorted by path: over subsystems).
  const moduleUpdates = created.filter((c) => c.module);
  const wanted = Math.min(Number(values.late), moduleUpdates.length);
  const lateIds = new Set(wanted > 0 ? moduleUpdates.filter((_, i) => Math.floor((i * wanted) / moduleUpdates.length) !== Math.floor(((i - 1) * wanted) / moduleUpdates.length)).map((c) => c.id) : []);
  // Round robin, so that each lane has a share of every subsystem and of the late path.
  const laneItems = Array.from({ length: lanes }, (_, lane) => created.filter((_, i) => i % lanes === lane));
  const results = await Promise.all(laneItems.map((items, lane) => guestLane(lane, items, lateIds, Number(values['max-boots']))));
  for (const r of results) {
    boots += r.boots;
    for (const [id, result] of r.done) done.set(id, result);
  }
  for (const c of created) {
    const row = rows.get(c.entry.file) as CorpusRow;
    const result = done.get(c.id);
    if (!result) {
      row.outcome = row.reason = 'not run (boots exhausted)';
      continue;
    }
    row.boot = result.boot;
    const adapted = row.adapted !== undefined && 'patch' in row.adapted;
    row.reason = adapted && result.outcome === 'applied' ? APPLIED_WITH_NEW_CODE : result.outcome;
    row.outcome = adapted ? `${row.reason} (${row.adapted && 'newLines' in row.adapted ? row.adapted.newLines : '?'} new lines)` : result.outcome;
    if (result.applyWallMs !== undefined) row.applyMs = result.applyWallMs;
    if (result.pauseNs !== undefined) row.pauseUs = result.pauseNs / 1000;
    if (result.undoWallMs !== undefined) row.undoMs = result.undoWallMs;
    if (result.functions.length > 0) row.functions = result.functions.length;
    if (result.error) row.error = result.error;
    if (result.late) row.late = result.late.ok ? 'patched at load' : `failed: ${result.late.error ?? '?'}`;
  }
  writeFileSync(join(work, 'guest-results.json'), `${JSON.stringify([...done.values()], null, 2)}\n`);
}

// Files carried by another file's update take that update's outcome.
for (const [file, owner] of carriedBy) {
  const row = rows.get(file) as CorpusRow;
  const from = rows.get(owner) as CorpusRow;
  Object.assign(row, {
    outcome: from.outcome,
    reason: from.reason,
    functions: from.functions,
    groupedWith: [owner, ...(from.groupedWith ?? []).filter((f) => f !== file)],
    inUpdateOf: owner,
    ...(from.applyMs !== undefined ? { applyMs: from.applyMs } : {}),
    ...(from.pauseUs !== undefined ? { pauseUs: from.pauseUs } : {}),
    ...(from.error !== undefined ? { error: from.error } : {}),
    ...(from.boot !== undefined ? { boot: from.boot } : {}),
  });
}

// 3. Report.
const all = [...rows.values(), ...underived].sort((a, b) => a.file.localeCompare(b.file));
const summary = totals(all, boots, values['skip-guest'] ? 1 : lanes);
process.stdout.write(`${formatTable(all)}\n\n${formatTotals(summary)}\n`);
process.stdout.write(`\nfailures (first line of each message):\n`);
for (const r of all.filter((x) => x.reason !== 'applied' && x.error)) {
  process.stdout.write(`  ${r.file}: ${r.reason}: ${(r.error ?? '').split('\n').slice(0, 2).join(' / ').slice(0, 400)}\n`);
}
process.stdout.write(`\nwall time ${elapsed()}; updates and guest records in ${work}\n`);
if (values.markdown) writeFileSync(values.markdown, `${formatMarkdown(all, summary)}\n`);
if (values.json) {
  writeFileSync(values.json, `${JSON.stringify({ at: new Date().toISOString(), release, sourceVersion: kernel.version, to: manifest.to.version, boots, guests: lanes, totals: summary, rows: all, minutes: (Date.now() - benchStarted) / 60000 }, null, 2)}\n`);
}
