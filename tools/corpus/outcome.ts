/**
 * What happened to each corpus file, and the words for it: the refusal classes of
 * `tsplice create`, the failure classes of apply in the guest, the per-file table and the
 * totals. Pure functions, shared by the guest driver and bench/corpus.ts.
 */
import type { CoreRefusal } from '../../src/switch/core-status.js';

/** One update the guest applies (paths as the guest sees them: the share has the host's paths). */
export interface GuestPlan {
  results: string;
  items: { id: string; file: string; update: string }[];
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
 * The class of a failed `tsplice apply`, from its message and the kernel's record of its last
 * refusal when that was about this update: a busy abort is told by the kernel's reason, not by
 * the words of the message.
 */
export function classifyApplyError(message: string, refusal?: CoreRefusal): GuestOutcome {
  if (refusal?.diagnostic.reason === 'busy') return 'busy';
  if (/does not match the update|has no function .* in \/proc\/kallsyms|matches \d+ functions of the running kernel|tsplice cannot tell which one/.test(message)) return 'match failed';
  if (/did not finish in/.test(message)) return 'guest broke';
  if (/was killed by SIG|RuntimeError|wasm:\/\//.test(message)) return 'apply crashed';
  if (/has no function to stage/.test(message)) return 'nothing to stage';
  if (/matching did not tell which one/.test(message)) return 'ambiguous static';
  if (/which the running kernel does not have|cannot resolve in the running kernel/.test(message)) return 'unresolved reference';
  if (/'insmod /.test(message)) return 'insmod failed';
  return 'apply error';
}

/**
 * Refusal classes of `tsplice create`, in priority order: a message can list several refusals
 * (one per line), each gets a class, and the first class of this list present is the file's.
 * 'layout change' is kept apart; changed initializers that are only a renumbered or moved
 * line (dynamic debug descriptors, __BTF_ID__ names) are told from real ones.
 */
export const CREATE_CLASSES: [string, RegExp][] = [
  ['layout change', /data layout change/],
  ['header change: too many units include it', /is included by \d+ units built into vmlinux, more than|is part of every unit of the kernel|reach \d+ units? built into vmlinux, more than|units built into vmlinux that include the header count, more than/],
  ['header change: another unit must change too', /does not compile with the patched/],
  ['only adds functions nothing calls', /changes no running code: it only adds/],
  ['header change', /tsplice does not yet find and rebuild the units that include a changed header|changes headers; tsplice does not yet/],
  ['__init code or data', /__init function|__initdata/],
  ['changed initializer: __dyndbg descriptor (line number)', /\(__dyndbg\): changed initial value/],
  ['changed initializer: renumbered __BTF_ID__ name', /changed initial value of existing data \(at \+0x[0-9a-f]+ __BTF_ID__\S+ -> __BTF_ID__/],
  ['changed initializer', /changed initial value of existing data/],
  ['changed table', /changed table \(/],
  ['unknown special section', /describes this function and tsplice does not know its layout/],
  ['no DWARF', /carry no DWARF/],
  ['no code change', /changes no code/],
  ['#included file (not a unit)', /kbuild recorded no command|No rule to make target|did not produce/],
  ['module or not built', /built as a module|is not built for this kernel/],
  ['patch does not apply', /does not apply to this tree/],
  ['unnamed data reference', /refers to unnamed data/],
  ['compile error', /compiling .* \(post\)|\(pre\) in/],
];

/** Every class a create refusal names, the file's own first (one class per refusal line). */
export function createClasses(message: string): string[] {
  const lines = message.split('\n').filter((l) => l.trim());
  const found = new Set<string>();
  for (const line of lines.length > 1 ? lines.slice(1) : lines) {
    const hit = CREATE_CLASSES.find(([, re]) => re.test(line));
    if (hit) found.add(hit[0]);
  }
  if (found.size === 0) {
    const hit = CREATE_CLASSES.find(([, re]) => re.test(message));
    if (hit) found.add(hit[0]);
  }
  const ordered = CREATE_CLASSES.map(([name]) => name).filter((name) => found.has(name));
  return ordered.length > 0 ? ordered : ['create error'];
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
}

export function totals(rows: CorpusRow[], boots: number): CorpusTotals {
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
    reboots: Math.max(0, boots - 1),
  };
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
