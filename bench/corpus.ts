/**
 * `npm run bench:corpus`: the corpus of real fixes (test/corpus/manifest.json, derived by
 * src/release/derive.ts from the 6.1.170-3 and 6.1.176-1 trees), made into updates and applied
 * to the running lab kernel.
 *
 * 1. Host: `createUpdate` for each corpus patch against the lab kernel's prepared tree, with
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
import { createUpdate } from '../src/create/create.js';
import { UserError, type DiagnosticKind } from '../src/host/errors.js';
import { cachePath } from '../src/host/cache.js';
import { labKernel } from '../src/debian/fetch.js';
import { GUEST_PROJECT_DIR } from '../tools/lab/guest-image.js';
import { projectRoot } from '../src/host/project.js';
import { chooseRelease } from '../src/debian/kernel-choice.js';
import { prepareTree, preparedTree } from '../src/kbuild/tree.js';
import { GuestFailure, runInGuest } from '../tools/lab/qemu.js';
import { writeUpdate, type UpdatePackage } from '../src/update/format.js';
import { addedFunctions, diffCalls, fileAddingCalled, unitThatMustChange, writeGroupPatch } from '../src/release/group.js';
import { patchPath, readManifest, type CorpusEntry } from '../src/release/derive.js';
import { adaptationOf, newLinesBeyond } from '../src/release/adapted.js';
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
const quiet = (): void => {};
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

/** Each corpus file's patch text, read once. */
const patches = new Map<string, string>();
const patchText = (file: string): string => {
  let text = patches.get(file);
  if (text === undefined) patches.set(file, (text = readFileSync(patchPath(manifestPath, manifest, byFile.get(file) as CorpusEntry), 'utf8')));
  return text;
};
/** The functions each corpus file's diff adds. */
const added = new Map<string, Set<string>>();
const addedBy = (file: string): Set<string> => {
  let names = added.get(file);
  if (!names) added.set(file, (names = addedFunctions(patchText(file))));
  return names;
};

/**
 * Creates the update for one corpus file; when create says another unit must change too, or
 * the new code calls a function another file's diff adds, and that is a corpus file, its diff
 * joins the patch (src/release/group.ts), up to 8 files.
 */
async function createGrouped(entry: CorpusEntry): Promise<{ update: UpdatePackage; group: string[]; reasons: string[] }> {
  const group = [entry.file];
  const reasons: string[] = [];
  for (;;) {
    const patch =
      group.length === 1 ? patchPath(manifestPath, manifest, entry) : writeGroupPatch(join(work, `group-${entry.file.replace(/\W/g, '-')}.patch`), group, (f) => patchPath(manifestPath, manifest, byFile.get(f) as CorpusEntry));
    try {
      const { update } = await createUpdate({ tree, patches: [patch], distributionVersion: kernel.version, headersDir: kernel.headersDir, log: quiet });
      const calls = (update.module?.externals ?? []).filter((e) => !e.local).map((e) => e.name);
      const adding = group.length < 8 ? fileAddingCalled(calls, manifest.files.map((e) => e.file), group, addedBy) : undefined;
      if (!adding) return { update, group, reasons };
      group.push(adding.file);
      reasons.push(`${adding.file}: adds ${adding.name}, which the new code calls`);
    } catch (error) {
      const unit = unitThatMustChange(error);
      const other = unit ? manifest.files.find((e) => e.unit === unit || e.file === unit) : undefined;
      if (!other || group.includes(other.file) || group.length >= 8) throw error;
      group.push(other.file);
      reasons.push(`${other.file}: ${(error as UserError).message.split('\n')[0] ?? ''}`);
    }
  }
}
const byFile = new Map(manifest.files.map((e) => [e.file, e]));

// 1. Create. A file already in a created group's update is not made again: that one update
// carries its diff, and its outcome is the file's.
const rows = new Map<string, CorpusRow>();
const created: { entry: CorpusEntry; id: string; path: string; group: string[]; module: boolean }[] = [];
/** Files whose diff is carried by another file's update: file -> the file whose update it is. */
const carriedBy = new Map<string, string>();
log(`Creating ${entries.length} updates against ${tree.dir} (${jobs} at once)...`);
type Made = { ok: true; update: UpdatePackage; group: string[]; reasons: string[]; seconds: number } | { ok: false; error: unknown; seconds: number };
/** Each entry's create, by index: made by `jobs` workers, then taken in order below. */
const made: Promise<Made>[] = [];
{
  let next = 0;
  const settled: ((m: Made) => void)[] = [];
  for (let i = 0; i < entries.length; i++) made.push(new Promise<Made>((resolve) => settled.push(resolve)));
  const worker = async (): Promise<void> => {
    for (let i = next++; i < entries.length; i = next++) {
      const entry = entries[i] as CorpusEntry;
      const started = Date.now();
      try {
        const { update, group, reasons } = await createGrouped(entry);
        settled[i]?.({ ok: true, update, group, reasons, seconds: (Date.now() - started) / 1000 });
      } catch (error) {
        settled[i]?.({ ok: false, error, seconds: (Date.now() - started) / 1000 });
      }
    }
  };
  for (let w = 0; w < Math.min(jobs, entries.length); w++) void worker();
}
// In the order of the manifest, whatever order the workers finish in, so that which update
// carries a grouped file is the same as with one job (a later file's own update is dropped).
for (const [i, entry] of entries.entries()) {
  const row: CorpusRow = { file: entry.file, unit: entry.unit, outcome: '', reason: '', changesCode: true, functions: 0, headers: entry.headers.length, part: entry.status === 'module' ? 'module' : 'built-in' };
  rows.set(entry.file, row);
  const result = await (made[i] as Promise<Made>);
  const earlier = created.find((c) => c.group.includes(entry.file));
  if (earlier) {
    carriedBy.set(entry.file, earlier.entry.file);
    row.outcome = row.reason = 'created';
    log(`[${i + 1}/${entries.length}] ${entry.file}: in the update of ${earlier.entry.file}  [${elapsed()}]`);
    continue;
  }
  row.createSeconds = result.seconds;
  if (result.ok) {
    const { update, group, reasons } = result;
    if (group.length > 1) {
      row.groupedWith = group.filter((f) => f !== entry.file);
      row.groupReasons = reasons;
    }
    row.functions = update.functions.length;
    const path = join(work, `${update.id}.tsplice`);
    writeUpdate(path, update);
    created.push({ entry, id: update.id, path, group, module: update.functions.some((f) => f.module !== undefined) });
    row.outcome = 'created';
    row.reason = 'created';
  } else {
    const { error } = result;
    const message = error instanceof Error ? error.message : String(error);
    // A refusal has its kinds (a DWARF or ELF error is a UserError too); anything else crashed.
    const classes = error instanceof UserError ? createClasses(error.diagnostics) : ['tsplice crashed'];
    row.reason = `refused at create: ${classes[0]}`;
    row.outcome = row.reason + (classes.length > 1 ? ` (+${classes.slice(1).join(', ')})` : '');
    row.error = message;
    row.changesCode = classes[0] !== 'no code change';
    if (row.changesCode) await tryAdapted(entry, row);
  }
  log(`[${i + 1}/${entries.length}] ${entry.file}: ${row.outcome}${row.functions ? ` (${row.functions} functions)` : ''} in ${row.createSeconds?.toFixed(1)} s  [${elapsed()}]`);
}
/**
 * A fix refused because it needs new code, made from its adapted patch (test/corpus/adapted/)
 * when the adapted corpus has one: created, it goes to the guest like any other update and counts
 * as applied with new code; a note saying it cannot apply live counts as not applicable live.
 */
async function tryAdapted(entry: CorpusEntry, row: CorpusRow): Promise<void> {
  const adaptation = adaptationOf(entry.patch, ADAPTED_DIR);
  if (!adaptation) return;
  row.refusedAlone = row.error;
  if (adaptation.kind === 'not-live') {
    row.adapted = { notLive: adaptation.why };
    row.reason = NOT_LIVE;
    row.outcome = `${NOT_LIVE}: ${adaptation.why}`;
    return;
  }
  const newLines = newLinesBeyond(patchText(entry.file), readFileSync(adaptation.path, 'utf8'));
  row.adapted = { patch: `adapted/${entry.patch}`, newLines };
  try {
    const { update } = await createUpdate({ tree, patches: [adaptation.path], distributionVersion: kernel.version, headersDir: kernel.headersDir, log: quiet });
    const path = join(work, `${update.id}.tsplice`);
    writeUpdate(path, update);
    created.push({ entry, id: update.id, path, group: [entry.file], module: update.functions.some((f) => f.module !== undefined) });
    row.functions = update.functions.length;
    delete row.error;
    row.outcome = row.reason = 'created';
  } catch (error) {
    const classes = error instanceof UserError ? createClasses(error.diagnostics) : ['tsplice crashed'];
    row.error = error instanceof Error ? error.message : String(error);
    row.outcome = `adapted patch refused at create: ${classes.join(', ')}`;
  }
}

// A file that alone only adds functions nothing calls (fs/notify/fsnotify.c exporting a helper
// for fs/notify/mark.c) is part of a fix across files: when a later group carries its diff,
// that update is the file's.
for (const row of rows.values()) {
  if (row.reason !== 'refused at create: only adds functions nothing calls') continue;
  const group = created.find((c) => c.group.includes(row.file));
  if (!group) continue;
  carriedBy.set(row.file, group.entry.file);
  row.refusedAlone = row.error;
  delete row.error;
  row.outcome = row.reason = 'created';
}
// One that no other corpus file's diff calls adds code nothing in this configuration runs
// (net/ipv4/udp_tunnel_core.c's udp_tunnel_dst_lookup, for drivers this update does not
// change): like a diff that changes no code, it is not a fix that could apply or fail.
for (const row of rows.values()) {
  if (row.reason !== 'refused at create: only adds functions nothing calls') continue;
  const names = [...addedBy(row.file)];
  const calledElsewhere = manifest.files.some((e) => e.file !== row.file && names.some((n) => diffCalls(patchText(e.file), n)));
  if (!calledElsewhere) row.changesCode = false;
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
