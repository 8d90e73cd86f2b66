/**
 * Which hunks of the grouped header diffs a corpus file needs to compile. An update is what a
 * maintainer would ship for one fix: the file's own diff and only the header hunks it needs,
 * not every change the stable release made to those headers (a header diff mixes fixes).
 *
 * Given headers whose whole diffs make the unit compile, this starts from the hunks that name
 * what the compiler missed (in the lines they change, or failing that anywhere in the hunk:
 * `TRACE_EVENT(hrtimer_start,` is the hunk's function context when only its arguments change),
 * compiles, and adds the hunks naming what the next errors miss, for a few rounds; then takes
 * away each kept hunk the unit compiles without (a name can be in hunks that do not add it).
 * When that does not converge it falls back to taking hunks away one at a time from the whole set and
 * keeping each one whose absence breaks the compile. The compiler is a callback, so this is
 * tested without a kernel tree.
 */
import { removedNames, sharedRemovals } from './stopped-names.js';
import { allLines, changedLines, hunkLabel, narrowToDefines, renderHunks, replaceHunk, splitHunks, type SplitDiff } from './hunks.js';

/**
 * Whether `text` names `name`: literally, or through a macro that pastes it together
 * (`__create_dev_flag_accessors(ready_to_probe, …)` makes dev_set_ready_to_probe), so the
 * longest underscore-separated tail of the name (two parts or more, 6 characters or more)
 * counts too.
 */
export function namedIn(name: string, text: string): boolean {
  if (new RegExp(`\\b${name}\\b`).test(text)) return true;
  const parts = name.split('_').filter(Boolean);
  for (let k = 1; k <= parts.length - 2; k++) {
    const tail = parts.slice(k).join('_');
    if (tail.length >= 6 && new RegExp(`\\b${tail}\\b`).test(text)) return true;
  }
  return false;
}

/** Words of error lines that say nothing about where the fix lives. */
const PLAIN = new Set(['struct', 'union', 'enum', 'int', 'void', 'char', 'long', 'unsigned', 'const', 'static', 'return']);

export interface MissingName {
  name: string;
  /** The error line that names it. */
  line: string;
}

/**
 * What the compiler's error lines say is missing or wrong, each with its line: the quoted
 * identifiers (`‘user_dumpable’`), not gcc's guesses (`did you mean ‘…’`), and a
 * struct/union/enum tag only on a line that quotes no identifier: in "‘struct task_struct’ has
 * no member named ‘user_dumpable’" the member is what a hunk adds; task_struct is named by
 * every hunk inside the structure.
 */
export function missingNames(output: string): MissingName[] {
  const found = new Map<string, string>();
  for (const line of output.split('\n')) {
    if (!/\berror\b|fatal/.test(line)) continue;
    const text = line.replace(/;? did you mean [‘'`"][^’'"]*[’'"]\??/g, '');
    const quoted = [...text.matchAll(/[‘'`"]([A-Za-z_]\w*)(?:\(\))?[’'"]/g)].map((m) => m[1] ?? '').filter((n) => n && !PLAIN.has(n));
    const tags = [...text.matchAll(/(?:struct|union|enum) ([A-Za-z_]\w*)/g)].map((m) => m[1] ?? '').filter(Boolean);
    for (const name of quoted.length > 0 ? quoted : tags) if (!found.has(name)) found.set(name, line);
  }
  return [...found].map(([name, line]) => ({ name, line }));
}

export interface HeaderDiff {
  path: string;
  /** The header's whole diff (one file, unified). */
  diff: string;
}

export interface KeptHunk {
  /** 1-based, out of the header diff's hunks. */
  index: number;
  /** The hunk's `@@` line. */
  at: string;
  /** Why it is needed: the error line naming what it adds or changes, or what breaks without it. */
  reason: string;
}

export interface HunkChoice {
  path: string;
  /** Hunks in the header's whole diff. */
  total: number;
  kept: KeptHunk[];
  /** The header's part of the patch: its diff with only the kept hunks (empty when none). */
  diff: string;
}

/** Compiles the unit with these partial header diffs (path → diff) applied; others untouched. */
export type HunkCompile = (diffs: ReadonlyMap<string, string>) => Promise<{ ok: boolean; output: string }>;

export interface HunkSelection {
  /** Whether the chosen hunks compile (false only when even the whole diffs do not). */
  ok: boolean;
  /** 'named': found by the names in errors; 'removal': by taking hunks away one at a time. */
  method: 'named' | 'removal';
  choices: HunkChoice[];
  compiles: number;
}

export interface SelectOptions {
  /** Rounds of adding hunks for new errors before falling back to removal (default 4). */
  rounds?: number;
  /**
   * The file's own diff: a header hunk that removes a name this diff stops using is kept too
   * (stopped-names.ts), whether or not the unit needs it to compile.
   */
  ownDiff?: string;
  /** Shortens an error line for a reason (drops scratch folder paths). */
  clean?: (line: string) => string;
  log?: (line: string) => void;
}

function firstErrorLine(output: string): string {
  return output.split('\n').find((l) => /\berror\b|fatal/.test(l)) ?? output.split('\n')[0] ?? '';
}

/**
 * Chooses the hunks of `headers` that the unit needs to compile. `errorOutputs` are the
 * compiler outputs that made the headers necessary (the file alone, then each round of
 * grouping); `compile` must succeed with every header's whole diff.
 */
export async function selectHunks(headers: readonly HeaderDiff[], errorOutputs: readonly string[], compile: HunkCompile, options: SelectOptions = {}): Promise<HunkSelection> {
  const clean = options.clean ?? ((line: string): string => line.trim());
  const whole = new Map<string, SplitDiff>(headers.map((h) => [h.path, splitHunks(h.diff)]));
  /** The headers' diffs as chosen so far: whole, or with a hunk narrowed. */
  let split = whole;
  /** Every name the compiler said was missing, for narrowing hunks to the #defines of those names. */
  const seen = new Set<string>();
  /** Per header, the kept hunks' 0-based indices and why each. */
  type Kept = Map<string, Map<number, string>>;
  let kept: Kept = new Map(headers.map((h) => [h.path, new Map<number, string>()]));
  let compiles = 0;
  /** The selection without hunk `i` of `path`. */
  const without = (selection: Kept, path: string, i: number): Kept => {
    const trial: Kept = new Map([...selection].map(([p, m]) => [p, new Map(m)]));
    trial.get(path)?.delete(i);
    return trial;
  };
  const run = async (selection: Kept, diffsOf = split): Promise<{ ok: boolean; output: string }> => {
    compiles++;
    const diffs = new Map<string, string>();
    for (const [path, chosen] of selection) if (chosen.size > 0) diffs.set(path, renderHunks(diffsOf.get(path) as SplitDiff, chosen.keys()));
    return compile(diffs);
  };
  // The hunks removing what the file's own diff stops using (stopped-names.ts); false when the
  // unit no longer compiles with them added, and only the whole diffs will do.
  const stopped = removedNames((options.ownDiff ?? '').split('\n'));
  const keepSharedRemovals = async (): Promise<boolean> => {
    let added = false;
    for (const [path, diff] of split) {
      const chosen = kept.get(path) as Map<number, string>;
      diff.hunks.forEach((h, i) => {
        if (chosen.has(i)) return;
        const shared = sharedRemovals(h.lines, stopped);
        if (shared.length === 0) return;
        chosen.set(i, `removes ${shared.join(', ')}, which the file's own diff stops using: one change of data with it`);
        added = true;
      });
    }
    return !added || (await run(kept)).ok;
  };
  const wholeChoices = (): HunkChoice[] => {
    split = whole;
    kept = new Map([...split].map(([path, diff]) => [path, new Map(diff.hunks.map((_h, i) => [i, 'whole diff: the hunks the file stops using do not compile without the others'] as [number, string]))]));
    return choices(kept);
  };
  // A name can be in more hunks than the one that adds it (the per-CPU kstack_offset a hunk
  // removes, the task_struct member another adds): keep a hunk only if the unit fails without
  // it. Without any hunk it is the file alone, which failed.
  const prune = async (): Promise<void> => {
    for (const path of split.keys()) {
      for (const i of [...(kept.get(path)?.keys() ?? [])].sort((a, b) => a - b)) {
        if ([...kept.values()].reduce((n, m) => n + m.size, 0) <= 1) break;
        const trial = without(kept, path, i);
        if ((await run(trial)).ok) kept = trial;
      }
    }
  };
  // A kept hunk that also changes what the unit does not need, cut down to the #defines of the
  // missing names it adds (hunks.ts narrowToDefines), when the unit compiles with that.
  // Whether any hunk was narrowed.
  const narrow = async (): Promise<boolean> => {
    let narrowedAny = false;
    for (const [path, chosen] of kept) {
      for (const i of [...chosen.keys()]) {
        const original = split.get(path)?.hunks[i];
        const narrowed = original ? narrowToDefines(original, seen) : undefined;
        if (!narrowed) continue;
        const trial = new Map(split);
        trial.set(path, replaceHunk(split.get(path) as SplitDiff, i, narrowed));
        if (!(await run(kept, trial)).ok) continue;
        split = trial;
        narrowedAny = true;
        const defined = narrowed.lines.filter((l) => l.startsWith('+')).map((l) => /#\s*define\s+(\w+)/.exec(l)?.[1]).filter(Boolean);
        chosen.set(i, `${chosen.get(i) ?? ''} (narrowed to the #define of ${defined.join(', ')}: the hunk's other changes are not needed)`);
      }
    }
    return narrowedAny;
  };
  const choices = (selection: Kept): HunkChoice[] =>
    headers.map((h) => {
      const diff = split.get(h.path) as SplitDiff;
      const chosen = selection.get(h.path) ?? new Map<number, string>();
      const indices = [...chosen.keys()].sort((a, b) => a - b);
      return {
        path: h.path,
        total: diff.hunks.length,
        kept: indices.map((i) => ({ index: i + 1, at: hunkLabel(diff.hunks[i] as SplitDiff['hunks'][number]), reason: chosen.get(i) ?? '' })),
        diff: renderHunks(diff, indices),
      };
    });

  // Adds, for each name, the hunks that change a line naming it; when no hunk of a header
  // changes such a line, the hunks that name it anywhere (context or function line).
  const addNamed = (names: readonly MissingName[]): number => {
    let added = 0;
    for (const [path, diff] of split) {
      const chosen = kept.get(path) as Map<number, string>;
      for (const { name, line } of names) {
        if (name.includes('/')) continue;
        seen.add(name);
        const inChanged = diff.hunks.map((h, i) => (namedIn(name, changedLines(h)) ? i : -1)).filter((i) => i >= 0);
        const hits = inChanged.length > 0 ? inChanged : diff.hunks.map((h, i) => (namedIn(name, allLines(h)) ? i : -1)).filter((i) => i >= 0);
        for (const i of hits) {
          if (chosen.has(i)) continue;
          chosen.set(i, `names ${name}: ${clean(line)}`);
          added++;
        }
      }
    }
    return added;
  };

  addNamed(missingNames(errorOutputs.join('\n')));
  for (let round = 0; round < (options.rounds ?? 4); round++) {
    const result = await run(kept);
    if (result.ok) {
      await prune();
      // A narrowed hunk may need less of the others (tcp.h's tcp_sk_rw without the
      // container_of_const that the whole hunk used): prune again after narrowing.
      if (await narrow()) await prune();
      if (await keepSharedRemovals()) return { ok: true, method: 'named', choices: choices(kept), compiles };
      // The hunks the file stops using need others too: start again from the whole diffs.
      break;
    }
    const more = addNamed(missingNames(result.output));
    options.log?.(`  hunks, round ${round + 1}: ${clean(firstErrorLine(result.output)).slice(0, 160)}; ${more} more hunk(s)`);
    if (more === 0) break;
  }

  // Removal: from every hunk of the whole diffs, take each away in turn; keep it only if the
  // unit then fails.
  split = whole;
  kept = new Map([...split].map(([path, diff]) => [path, new Map(diff.hunks.map((_h, i) => [i, 'whole diff'] as [number, string]))]));
  if (!(await run(kept)).ok) return { ok: false, method: 'removal', choices: choices(kept), compiles };
  for (const [path, diff] of split) {
    for (let i = 0; i < diff.hunks.length; i++) {
      const trial = without(kept, path, i);
      const result = await run(trial);
      if (result.ok) kept = trial;
      else kept.get(path)?.set(i, `without it: ${clean(firstErrorLine(result.output))}`);
    }
  }
  for (const { name } of missingNames(errorOutputs.join('\n'))) seen.add(name);
  if (await narrow()) await prune();
  if (!(await keepSharedRemovals())) return { ok: true, method: 'removal', choices: wholeChoices(), compiles };
  return { ok: true, method: 'removal', choices: choices(kept), compiles };
}
