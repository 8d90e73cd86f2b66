/**
 * One update per fix: each changed file's patch (derive.ts) made into an update by
 * `createUpdate`, grown into one fix across files when create or the new code says so
 * (group.ts), and, for a fix refused because it needs new code, made from the maintainer's
 * adapted patch when there is one (adapted.ts). `tsplice release` ships what this makes; the
 * corpus bench applies it in the lab guest. The order of the files decides which update carries
 * a file two fixes would both take: the first one's, whatever order the workers finish in.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createUpdate } from '../create/create.js';
import { UserError, type Diagnostic } from '../host/errors.js';
import type { PreparedTree } from '../kbuild/tree.js';
import type { UpdatePackage } from '../update/format.js';
import { adaptationOf, newLinesBeyond } from './adapted.js';
import { addedFunctions, diffCalls, fileAddingCalled, unitThatMustChange, writeGroupPatch } from './group.js';
import { createClasses } from './refusal-classes.js';

/** A changed file and the patch derived for it. */
export interface FixFile {
  file: string;
  unit: string;
  /** The patch's path; its file name is the key of the adapted patch. */
  patch: string;
}

/** The most files one fix is grown to. */
const MAX_GROUP = 8;

/** The adapted patch an update was made from, and the lines of new code it needed beyond upstream. */
export interface AdaptedFrom {
  patch: string;
  newLines: number;
}

export type FixResult =
  /** An update carries the file's fix: its own, or, with `carriedBy`, another file's. */
  | {
      file: string;
      outcome: 'created';
      update: UpdatePackage;
      /** The files whose diffs the update holds, this one first. */
      group: string[];
      /** Why each other file joined. */
      groupReasons: string[];
      seconds: number;
      adapted?: AdaptedFrom;
      /** Why create refused the file's own patch, when the update is made otherwise. */
      refusedAlone?: string;
    }
  | { file: string; outcome: 'carried'; carriedBy: string; refusedAlone?: string }
  | {
      file: string;
      outcome: 'refused';
      /** Refusal classes (refusal-classes.ts), the file's own first. */
      classes: string[];
      error: string;
      diagnostics: readonly Diagnostic[];
      seconds: number;
      /** False when the diff changes no code that runs: not a fix that could apply or fail. */
      changesCode: boolean;
      /** What the adapted folder had: a note why it cannot apply live, or an adapted patch create refused too. */
      notLive?: string;
      adapted?: AdaptedFrom & { classes: string[]; error: string };
    };

export interface FixUpdatesOptions {
  tree: PreparedTree;
  headersDir: string;
  distributionVersion: string;
  files: readonly FixFile[];
  /** Every changed file of the release, which a fix may grow to take (default: `files`). */
  pool?: readonly FixFile[];
  /** Updates created at once. */
  jobs: number;
  /** Where grouped patches are written. */
  workDir: string;
  /** The maintainer's adapted patches (adapted.ts), if any. */
  adaptedDir?: string;
  /**
   * Makes one update from a patch; default `createUpdate`. A release passes a cached one
   * (update-cache.ts), so that a re-run reuses what is built.
   */
  create?: (patch: string) => Promise<UpdatePackage>;
  /** Each file's result as it is decided, in the order of `files`. */
  onResult?: (result: FixResult, index: number) => void;
}

const CALLS_ONLY_ADDED = 'only adds functions nothing calls';

/** Every file's fix, in the order of `files`. */
export async function makeFixUpdates(options: FixUpdatesOptions): Promise<FixResult[]> {
  const { files } = options;
  const pool = options.pool ?? files;
  const create =
    options.create ??
    (async (patch: string): Promise<UpdatePackage> =>
      (await createUpdate({ tree: options.tree, patches: [patch], distributionVersion: options.distributionVersion, headersDir: options.headersDir, log: () => {} })).update);
  const byFile = new Map(pool.map((f) => [f.file, f]));
  const patchTexts = new Map<string, string>();
  const patchText = (file: string): string => {
    let text = patchTexts.get(file);
    if (text === undefined) patchTexts.set(file, (text = readFileSync((byFile.get(file) as FixFile).patch, 'utf8')));
    return text;
  };
  const added = new Map<string, Set<string>>();
  const addedBy = (file: string): Set<string> => {
    let names = added.get(file);
    if (!names) added.set(file, (names = addedFunctions(patchText(file))));
    return names;
  };
  const allFiles = pool.map((f) => f.file);

  /**
   * The update of one file's fix: when create says another unit must change too, or the new
   * code calls a function another file's diff adds, and that is a file of this release, its
   * diff joins the patch, up to MAX_GROUP files.
   */
  const createGrouped = async (fix: FixFile): Promise<{ update: UpdatePackage; group: string[]; reasons: string[] }> => {
    const group = [fix.file];
    const reasons: string[] = [];
    for (;;) {
      const patch = group.length === 1 ? fix.patch : writeGroupPatch(join(options.workDir, `group-${fix.file.replace(/\W/g, '-')}.patch`), group, (f) => (byFile.get(f) as FixFile).patch);
      try {
        const update = await create(patch);
        const calls = (update.module?.externals ?? []).filter((e) => !e.local).map((e) => e.name);
        const adding = group.length < MAX_GROUP ? fileAddingCalled(calls, allFiles, group, addedBy) : undefined;
        if (!adding) return { update, group, reasons };
        group.push(adding.file);
        reasons.push(`${adding.file}: adds ${adding.name}, which the new code calls`);
      } catch (error) {
        const unit = unitThatMustChange(error);
        const other = unit ? pool.find((e) => e.unit === unit || e.file === unit) : undefined;
        if (!other || group.includes(other.file) || group.length >= MAX_GROUP) throw error;
        group.push(other.file);
        reasons.push(`${other.file}: ${(error as UserError).message.split('\n')[0] ?? ''}`);
      }
    }
  };

  type Made = { ok: true; update: UpdatePackage; group: string[]; reasons: string[]; seconds: number } | { ok: false; error: unknown; seconds: number };
  // Each file's create, by index, made by `jobs` workers and taken in order below.
  const made: Promise<Made>[] = [];
  const settled: ((m: Made) => void)[] = [];
  for (let i = 0; i < files.length; i++) made.push(new Promise<Made>((resolve) => settled.push(resolve)));
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < files.length; i = next++) {
      const started = Date.now();
      try {
        const { update, group, reasons } = await createGrouped(files[i] as FixFile);
        settled[i]?.({ ok: true, update, group, reasons, seconds: (Date.now() - started) / 1000 });
      } catch (error) {
        settled[i]?.({ ok: false, error, seconds: (Date.now() - started) / 1000 });
      }
    }
  };
  for (let w = 0; w < Math.min(Math.max(1, options.jobs), files.length); w++) void worker();

  const results: FixResult[] = [];
  const created: Extract<FixResult, { outcome: 'created' }>[] = [];
  for (const [i, fix] of files.entries()) {
    const result = await (made[i] as Promise<Made>);
    const earlier = created.find((c) => c.group.includes(fix.file));
    let decided: FixResult;
    if (earlier) decided = { file: fix.file, outcome: 'carried', carriedBy: earlier.file };
    else if (result.ok) {
      decided = { file: fix.file, outcome: 'created', update: result.update, group: result.group, groupReasons: result.reasons, seconds: result.seconds };
      created.push(decided);
    } else {
      decided = await refusedOrAdapted(fix, result.error, result.seconds, create, patchText, options.adaptedDir);
      if (decided.outcome === 'created') created.push(decided);
    }
    results.push(decided);
    // A file only adding functions is decided after every group is known (below).
    if (!(decided.outcome === 'refused' && decided.classes[0] === CALLS_ONLY_ADDED)) options.onResult?.(decided, i);
  }

  for (const [i, result] of results.entries()) {
    if (result.outcome !== 'refused' || result.classes[0] !== CALLS_ONLY_ADDED) continue;
    // A file that alone only adds functions nothing calls (fs/notify/fsnotify.c exporting a
    // helper for fs/notify/mark.c) is part of a fix across files: a group's update carries it.
    const group = created.find((c) => c.group.includes(result.file));
    if (group) results[i] = { file: result.file, outcome: 'carried', carriedBy: group.file, refusedAlone: result.error };
    // One that no other file's diff calls adds code nothing in this configuration runs
    // (net/ipv4/udp_tunnel_core.c's udp_tunnel_dst_lookup): like a diff that changes no code,
    // it is not a fix that could apply or fail.
    else if (!allFiles.some((f) => f !== result.file && [...addedBy(result.file)].some((n) => diffCalls(patchText(f), n)))) result.changesCode = false;
    options.onResult?.(results[i] as FixResult, i);
  }
  return results;
}

/**
 * A file whose own patch create refused: made from its adapted patch when the maintainer wrote
 * one, or refused with the classes of create's refusal (and the adapted folder's note, if any).
 */
async function refusedOrAdapted(
  fix: FixFile,
  error: unknown,
  seconds: number,
  create: (patch: string) => Promise<UpdatePackage>,
  patchText: (file: string) => string,
  adaptedDir: string | undefined,
): Promise<FixResult> {
  const message = error instanceof Error ? error.message : String(error);
  // A refusal has its kinds (a DWARF or ELF error is a UserError too); anything else crashed.
  const classes = error instanceof UserError ? createClasses(error.diagnostics) : ['tsplice crashed'];
  const refused: FixResult = { file: fix.file, outcome: 'refused', classes, error: message, diagnostics: error instanceof UserError ? error.diagnostics : [], seconds, changesCode: classes[0] !== 'no code change' };
  const patchName = fix.patch.split('/').pop() ?? fix.patch;
  const adaptation = refused.changesCode && adaptedDir !== undefined ? adaptationOf(patchName, adaptedDir) : undefined;
  if (!adaptation) return refused;
  if (adaptation.kind === 'not-live') return { ...refused, notLive: adaptation.why };
  const newLines = newLinesBeyond(patchText(fix.file), readFileSync(adaptation.path, 'utf8'));
  const started = Date.now();
  try {
    const update = await create(adaptation.path);
    return { file: fix.file, outcome: 'created', update, group: [fix.file], groupReasons: [], seconds: (Date.now() - started) / 1000, adapted: { patch: adaptation.path, newLines }, refusedAlone: message };
  } catch (adaptedError) {
    const adaptedClasses = adaptedError instanceof UserError ? createClasses(adaptedError.diagnostics) : ['tsplice crashed'];
    return { ...refused, adapted: { patch: adaptation.path, newLines, classes: adaptedClasses, error: adaptedError instanceof Error ? adaptedError.message : String(adaptedError) } };
  }
}
