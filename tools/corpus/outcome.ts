/**
 * What happened to each corpus file, and the words for it: the refusal classes of
 * `tsplice create`, the failure classes of apply in the guest, the per-file table and the
 * totals. Pure functions, shared by the guest driver and bench/corpus.ts. Classes come from
 * the kind and fields of tsplice's diagnostics (src/host/errors.ts), never from its sentences.
 */
import { formatSpread, spreadOf, type Spread } from '../../src/host/stats.js';
import type { DiagnosticKind } from '../../src/host/errors.js';
export { CREATE_CLASSES, createClasses } from '../../src/release/refusal-classes.js';

/** One update the guest applies (paths as the guest sees them: the share has the host's paths). */
export interface GuestPlan {
  results: string;
  /** `late`: after the update applied to its loaded modules, run the late path too (lateCycle in guest.ts). */
  items: { id: string; file: string; update: string; late?: boolean }[];
}

/**
 * The late path of a module update: applied with its modules unloaded, then `modprobe` (the
 * jmps written as they load), `modprobe -r` and `modprobe` again (written again), undo.
 */
export interface LateResult {
  ok: boolean;
  /** The step that failed and why. */
  error?: string;
  /** Functions found jumping to the new code after the first load and after the reload. */
  firstLoad?: number;
  reload?: number;
}

export interface FunctionCheck {
  name: string;
  oldAddress: string;
  newAddress: string;
  site: number;
  /** 16 running bytes at the old address after apply. */
  applied: string;
  jumps: boolean;
  restored?: boolean;
  /** The bytes after undo, when they are not the original ones. */
  undone?: string;
}

export type GuestOutcome =
  | 'applied'
  | 'match failed'
  | 'busy'
  | 'unresolved reference'
  | 'insmod failed'
  /** A module the update replaces functions of does not load in the lab guest (no hardware, a missing dependency): not counted as applied. */
  | 'module does not load'
  | 'ambiguous static'
  | 'nothing to stage'
  | 'apply crashed'
  | 'apply error'
  | 'check failed'
  | 'smoke failed'
  | 'kernel complained'
  | 'undo failed'
  | 'driver error'
  | 'guest broke';

export interface GuestResult {
  id: string;
  file: string;
  outcome: GuestOutcome;
  error?: string;
  /** The kind of the error tsplice reported (its --json output), when it reported one. */
  kind?: string;
  functions: FunctionCheck[];
  /** Oops/WARN/BUG lines the kernel logged during this update. */
  dmesg: string[];
  applyWallMs?: number;
  matchMs?: number;
  stageMs?: number;
  pauseNs?: number;
  attempts?: number;
  undoWallMs?: number;
  undoPauseNs?: number;
  /** The guest should be booted afresh before the next update. */
  reboot?: boolean;
  /** The late path, for an item that asked for it and applied. */
  late?: LateResult;
}

/**
 * The guest kernel's command line for corpus runs: an oops, a soft lockup, a hung task or an
 * RCU stall ends the boot at once, so that the update running then is known to have broken it.
 */
export const CORPUS_GUEST_APPEND = 'panic_on_oops=1 softlockup_panic=1 hung_task_panic=1 hung_task_timeout_secs=60 sysctl.kernel.panic_on_rcu_stall=1';

/**
 * The records of a results file (lines of the guest driver): the results in order, and the
 * update that was started and has no result (the guest stopped during it), if any.
 */
export function parseGuestRecords(lines: readonly string[]): { results: GuestResult[]; unfinished?: string } {
  const results: GuestResult[] = [];
  let started: string | undefined;
  for (const line of lines) {
    const record = JSON.parse(line) as { type: string; id: string } & GuestResult;
    if (record.type === 'start') started = record.id;
    else if (record.type === 'result') {
      results.push(record);
      if (started === record.id) started = undefined;
    }
  }
  return started === undefined ? { results } : { results, unfinished: started };
}

/** Kernel log lines that mean something went wrong. */
const BAD_KERNEL_LINE =
  /\b(Oops|BUG:|WARNING:|general protection fault|segfault at|traps:|Call Trace:|kernel BUG|RIP:|refcount_t:|list_(add|del) corruption|UBSAN|stack-protector|soft lockup|hard LOCKUP|rcu: INFO|self-detected stall|blocked for more than|ftrace bug|ftrace failed)/;

export function dmesgProblems(lines: string[]): string[] {
  return lines.filter((l) => BAD_KERNEL_LINE.test(l));
}

/**
 * What the guest driver knows of a failed `tsplice apply --json`, which it runs in its own
 * process (guest.ts): a command that hangs or kills the process ends the boot, and the host
 * records that update as 'guest broke'.
 */
export interface ApplyFailure {
  /** The `{"error": {kind, ...}}` the CLI printed on stdout; absent when it printed none (it threw). */
  error?: { kind: string };
}

/** Apply failure classes by the kind of tsplice's error; any other kind is 'apply error'. */
export const APPLY_CLASSES: ReadonlyMap<DiagnosticKind, GuestOutcome> = new Map<DiagnosticKind, GuestOutcome>([
  ['match-failed', 'match failed'],
  ['busy', 'busy'],
  ['nothing-to-stage', 'nothing to stage'],
  ['ambiguous', 'ambiguous static'],
  ['unresolved-reference', 'unresolved reference'],
  ['unnamed-data-reference', 'unresolved reference'],
  ['insmod-failed', 'insmod failed'],
  ['module-not-loaded', 'module does not load'],
]);

export function classifyApplyError(failure: ApplyFailure): GuestOutcome {
  // Ended by an exception rather than a refusal (which --json always reports).
  if (!failure.error) return 'apply crashed';
  return APPLY_CLASSES.get(failure.error.kind as DiagnosticKind) ?? 'apply error';
}

/** One row of the report. */
export interface CorpusRow {
  file: string;
  unit: string;
  /** 'applied', 'refused at create: <class>', or a guest outcome. */
  outcome: string;
  /** The class alone, for the totals ('applied' when applied). */
  reason: string;
  /** Does the file's diff change code (false: refused with 'no code change')? */
  changesCode: boolean;
  functions: number;
  createSeconds?: number;
  applyMs?: number;
  pauseUs?: number;
  /** Wall time of the undo, in the guest. */
  undoMs?: number;
  error?: string;
  headers: number;
  /** Other corpus files whose diffs are in this file's update (one fix across files). */
  groupedWith?: string[];
  /** Why each grouped file joined: create's message naming the unit that had to change too. */
  groupReasons?: string[];
  /** The corpus file whose (grouped) update carries this file's diff, when not this file's own. */
  inUpdateOf?: string;
  /** Why create refused this file alone, when a group's update carries it. */
  refusedAlone?: string;
  /** The first boot this file's update ran in (0-based), when it reached the guest. */
  boot?: number;
  /** Whether the file's unit is built into vmlinux or into a loadable module (the manifest's status); absent counts as built in. */
  part?: CorpusPart;
  /** The late path, for a module update the run tried it on: 'patched at load', or what failed. */
  late?: string;
  /**
   * For a fix refused because it needs new code: its adapted patch (test/corpus/adapted/) and the
   * lines of new code it needed beyond the upstream diff, or why it cannot apply live. The
   * upstream refusal stays in `refusedAlone`.
   */
  adapted?: { patch: string; newLines: number } | { notLive: string };
}

/** The outcome of a fix whose adapted patch applied (reason and outcome). */
export const APPLIED_WITH_NEW_CODE = 'applied with new code';
/** The outcome of a fix the adapted corpus says cannot apply live. */
export const NOT_LIVE = 'not applicable live';

/** The two kinds of fixes the corpus holds, whose shares are reported apart. */
export type CorpusPart = 'built-in' | 'module';

/** The share of one part: applied without new code / fixes whose diff changes code. */
export interface PartShare {
  part: CorpusPart;
  files: number;
  changesCode: number;
  applied: number;
  share: number;
  /** Applied from an adapted patch (with new code), and what those patches needed. */
  withNewCode: number;
  newLines?: Spread;
  /** Fixes the adapted corpus says cannot apply live. */
  notLive: number;
  /** (applied + withNewCode) / changesCode. */
  liveShare: number;
}

export interface CorpusTotals {
  files: number;
  changesCode: number;
  applied: number;
  /** applied / changesCode. */
  share: number;
  reasons: [string, number][];
  boots: number;
  reboots: number;
  /** Built-in and module fixes apart, for each part the corpus run had. */
  parts: PartShare[];
  /** Module updates the late path was tried on, and those patched at load and at reload. */
  late: { tried: number; patched: number };
  /** Each step's time over the rows that have it: create (s), apply and undo (ms), pause (µs). */
  timings: { create?: Spread; apply?: Spread; pause?: Spread; undo?: Spread };
}

function partShare(part: CorpusPart, rows: readonly CorpusRow[]): PartShare {
  const changesCode = rows.filter((r) => r.changesCode).length;
  const applied = rows.filter((r) => r.reason === 'applied').length;
  const adapted = rows.filter((r) => r.reason === APPLIED_WITH_NEW_CODE);
  const newLines = spreadOf(adapted.map((r) => (r.adapted && 'newLines' in r.adapted ? r.adapted.newLines : undefined)));
  return {
    part,
    files: rows.length,
    changesCode,
    applied,
    share: changesCode > 0 ? applied / changesCode : 0,
    withNewCode: adapted.length,
    ...(newLines ? { newLines } : {}),
    notLive: rows.filter((r) => r.reason === NOT_LIVE).length,
    liveShare: changesCode > 0 ? (applied + adapted.length) / changesCode : 0,
  };
}

/** `guests`: how many guests ran side by side; each one's first boot is not a reboot. */
export function totals(rows: CorpusRow[], boots: number, guests = 1): CorpusTotals {
  const changesCode = rows.filter((r) => r.changesCode).length;
  const applied = rows.filter((r) => r.reason === 'applied').length;
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.reason, (counts.get(r.reason) ?? 0) + 1);
  return {
    files: rows.length,
    changesCode,
    applied,
    share: changesCode > 0 ? applied / changesCode : 0,
    reasons: [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])),
    boots,
    reboots: Math.max(0, boots - guests),
    parts: (['built-in', 'module'] as const).map((part) => partShare(part, rows.filter((r) => (r.part ?? 'built-in') === part))).filter((p) => p.files > 0),
    late: { tried: rows.filter((r) => r.late !== undefined).length, patched: rows.filter((r) => r.late === 'patched at load').length },
    timings: dropUndefined({
      create: spreadOf(rows.map((r) => r.createSeconds)),
      apply: spreadOf(rows.map((r) => r.applyMs)),
      pause: spreadOf(rows.map((r) => r.pauseUs)),
      undo: spreadOf(rows.map((r) => r.undoMs)),
    }),
  };
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** "create 8.3 s (2.0–14.0, n=20); apply 5.5 s (…); …": median (min–max) of each step. */
function timingLine(t: CorpusTotals): string[] {
  const parts = [
    t.timings.create && `create ${formatSpread(t.timings.create, 1, 1)} s`,
    t.timings.apply && `apply ${formatSpread(t.timings.apply, 1000, 1)} s`,
    t.timings.undo && `undo ${formatSpread(t.timings.undo, 1000, 2)} s`,
    t.timings.pause && `pause ${formatSpread(t.timings.pause, 1, 0)} µs`,
  ].filter((p): p is string => typeof p === 'string');
  return parts.length > 0 ? [`median (min–max, n) per update: ${parts.join('; ')}`] : [];
}

/** The late path's line, when the run tried it. */
function lateLines(t: CorpusTotals): string[] {
  if (t.late.tried === 0) return [];
  return [`late path (applied with the module unloaded, then modprobe, rmmod, modprobe, undo): ${t.late.patched} of ${t.late.tried} module updates patched at each load`];
}

/** One line per part: "built-in: 108 of 132 whose diff changes code applied (81.8%)". */
function partLines(t: CorpusTotals): string[] {
  const pct = (n: number, of: number): string => `${of > 0 ? ((100 * n) / of).toFixed(1) : '0.0'}%`;
  return t.parts.map((p) => {
    const line = `${p.part}: ${p.files} files; ${p.applied} of ${p.changesCode} whose diff changes code applied without new code (${(100 * p.share).toFixed(1)}%)`;
    if (p.withNewCode === 0 && p.notLive === 0) return line;
    const lines = p.newLines ? `; new lines median ${p.newLines.median}, largest ${p.newLines.max}` : '';
    return `${line}; ${p.withNewCode} applied with new code (${pct(p.withNewCode, p.changesCode)}${lines}); ${p.notLive} not applicable live (${pct(p.notLive, p.changesCode)}); live with or without new code: ${p.applied + p.withNewCode} = ${(100 * p.liveShare).toFixed(1)}%`;
  });
}

const pad = (text: string, width: number): string => (text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width));

export function formatTable(rows: CorpusRow[]): string {
  const fileWidth = Math.min(48, Math.max(4, ...rows.map((r) => r.file.length)));
  const header = `${pad('file', fileWidth)}  ${pad('outcome', 44)}  ${'fns'.padStart(4)}  ${'create s'.padStart(8)}  ${'apply s'.padStart(7)}  ${'pause us'.padStart(8)}`;
  const lines = [header, '-'.repeat(header.length)];
  for (const r of rows) {
    lines.push(
      `${pad(r.file, fileWidth)}  ${pad(r.outcome, 44)}  ${String(r.functions).padStart(4)}  ${(r.createSeconds?.toFixed(1) ?? '-').padStart(8)}  ${(r.applyMs !== undefined ? (r.applyMs / 1000).toFixed(1) : '-').padStart(7)}  ${(r.pauseUs?.toFixed(0) ?? '-').padStart(8)}`,
    );
  }
  return lines.join('\n');
}

export function formatTotals(t: CorpusTotals): string {
  const lines = [
    `files: ${t.files}; whose diff changes code: ${t.changesCode}; applied without new code (create, apply, checks, smoke, undo all passed): ${t.applied} = ${(100 * t.share).toFixed(1)}%`,
    ...partLines(t),
    ...lateLines(t),
    ...timingLine(t),
    `guest boots: ${t.boots} (reboots after an update left the guest unusable: ${t.reboots})`,
    'outcomes:',
    ...t.reasons.map(([reason, n]) => `  ${String(n).padStart(4)}  ${reason}`),
  ];
  return lines.join('\n');
}

/** The table and the totals as Markdown (docs/corpus.md keeps the last run's). */
export function formatMarkdown(rows: CorpusRow[], t: CorpusTotals): string {
  const lines = [
    `Files: ${t.files}; whose diff changes code: ${t.changesCode}; **applied without new code: ${t.applied} = ${(100 * t.share).toFixed(1)}%**. Guest boots: ${t.boots} (reboots: ${t.reboots}).`,
    '',
    ...[...partLines(t), ...lateLines(t), ...timingLine(t)].map((l) => `- ${l}`),
    '',
    '| outcome | files | examples |',
    '| --- | ---: | --- |',
    ...t.reasons.map(([reason, n]) => {
      const files = rows.filter((r) => r.reason === reason).map((r) => r.file);
      return `| ${reason} | ${n} | ${files.slice(0, 3).join(', ')}${files.length > 3 ? ', …' : ''} |`;
    }),
    '',
    '| file | outcome | functions | create s | apply s | pause µs |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.file}${r.inUpdateOf ? ` (in the update of ${r.inUpdateOf})` : r.groupedWith ? ` (with ${r.groupedWith.join(', ')})` : ''} | ${r.outcome} | ${r.functions || ''} | ${r.createSeconds?.toFixed(1) ?? ''} | ${r.applyMs !== undefined ? (r.applyMs / 1000).toFixed(1) : ''} | ${r.pauseUs?.toFixed(0) ?? ''} |`,
    ),
  ];
  return lines.join('\n');
}
