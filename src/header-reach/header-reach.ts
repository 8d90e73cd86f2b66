/**
 * Which units a header change can reach, for `create`: the names whose meaning changed
 * (header-change.ts), closed over the items of the other headers the units see
 * (name-closure.ts), and the units whose own text names one of them.
 *
 * Conservative by construction: it may name a unit whose code does not change (a wasted
 * compile), it must not leave out one whose code could. Where the text says nothing a name
 * could carry (a changed top-level `asm`, a `#pragma`, a definition that emits code or data
 * in every includer, an item the parser names nothing for), the change reaches every unit
 * that includes the header, as before. See docs/create.md, "Header reach".
 */
import { IDENTIFIERS, stripComments, tokenize } from './c-tokens.js';
import type { HeaderChange } from './header-change.js';
import { NameClosure, type FileFacts } from './name-closure.js';
import { pasteFragments, type Fragment } from './token-pastes.js';

interface UnitFacts {
  ids: Set<string>;
  /** The macros the unit's own text #defines. */
  defined: Set<string>;
  fragments: Fragment[];
}

/** What findReach read of files and units, kept across the headers of one patch (the texts do not change between them). */
export interface ReachCache {
  files: Map<string, FileFacts>;
  units: Map<string, UnitFacts>;
}

export function newReachCache(): ReachCache {
  return { files: new Map(), units: new Map() };
}

export interface ReachInput {
  /** What changed in the header. */
  change: HeaderChange;
  /** Extra changed names with what they stand for (`#include <linux/bitops.h>`). */
  seeds?: Map<string, string>;
  /** The files whose top-level items pass a change on: the headers the units can see. */
  files: readonly string[];
  /** The units to decide. */
  units: readonly string[];
  /** A file's text (for a patched file, the pre and post texts both: a mention in either counts). */
  read: (file: string) => string;
  /** The texts that make up a unit besides the header files: itself and the .c/.inc files it includes. */
  unitFiles?: (unit: string) => string[];
  /** The units (of `units`) that include `file`, directly or not. */
  unitsIncluding?: (file: string) => string[];
  /** Stop closing over names past this many (default CLOSURE_LIMIT): every unit is then counted as reached. */
  closureLimit?: number;
  /** Texts already read for another header of the same patch. */
  cache?: ReachCache;
}

export interface ReachResult {
  /** Reached units, each with the changed names (as the header has them) that reach it. */
  units: Map<string, string[]>;
  /** Why every unit is reached: a change no name carries, or a closure past the limit. */
  everything?: string;
  /** How many names the closure ended with (the header's own and those that use them). */
  closureSize: number;
}

/**
 * Past this many names the closure stops and every unit counts as reached: a change used that
 * widely (`struct task_struct`, `test_bit`) reaches far more units than create rebuilds, and
 * following it to the end costs a minute. The units that the names found so far reach are
 * still listed with them, so a refusal can say which changed names reach the most.
 */
export const CLOSURE_LIMIT = 10_000;

/**
 * The units the change reaches. The changed names are closed over the top-level items of
 * `files`: an item that mentions a changed name (or could paste one, or sits under a
 * conditional that tests one) has its own names changed too, to a fixpoint. A unit is reached
 * when its text names one of them, or could paste one, or defines a macro whose changed
 * invocations the header holds, or instantiates its trace events.
 */
export function findReach(input: ReachInput): ReachResult {
  const { change } = input;
  const limit = input.closureLimit ?? CLOSURE_LIMIT;
  const cache = input.cache ?? newReachCache();
  const closure = new NameClosure(input.read, cache.files);
  for (const name of change.names) closure.add(name, [name]);
  for (const [name, root] of input.seeds ?? []) closure.add(name, [root]);

  let everything: string | undefined = change.unnamed[0] ? `${change.header}: ${change.unnamed[0]}` : undefined;
  if (everything && change.unnamed.length > 1) everything = `${everything} (and ${change.unnamed.length - 1} more such change${change.unnamed.length > 2 ? 's' : ''})`;

  const truncated = everything ? false : closure.close(input.files, limit);

  const unitsReached = new Map<string, Set<string>>();
  const reach = (unit: string, why: Iterable<string>): void => {
    const set = unitsReached.get(unit) ?? new Set<string>();
    for (const w of why) set.add(w);
    if (set.size > 0) unitsReached.set(unit, set);
  };
  for (const unit of input.units) {
    if (everything) {
      reach(unit, [everything]);
      continue;
    }
    let u = cache.units.get(unit);
    if (!u) {
      const stripped = (input.unitFiles?.(unit) ?? [unit]).map((f) => stripComments(input.read(f))).join('\n');
      u = { ids: new Set(stripped.match(IDENTIFIERS) ?? []), defined: new Set(), fragments: [] };
      for (const m of stripped.matchAll(/^[ \t]*#[ \t]*define[ \t]+([A-Za-z_$][\w$]*)(\([^)]*\))?(.*)$/gm)) {
        u.defined.add(m[1] ?? '');
        if ((m[3] ?? '').includes('##')) u.fragments.push(...pasteFragments(tokenize(m[3] ?? ''), new Set((m[2] ?? '').match(IDENTIFIERS) ?? [])));
      }
      cache.units.set(unit, u);
    }
    const { defined } = u;
    const why = closure.named(u.ids, u.fragments, true);
    for (const macro of change.invokes) if (defined.has(macro)) why.add(`${macro} invocations (the unit defines ${macro})`);
    if (change.traceEvents && defined.has('CREATE_TRACE_POINTS')) why.add('its trace events (the unit defines CREATE_TRACE_POINTS)');
    reach(unit, why);
  }
  for (const [file, why] of closure.emitting) {
    for (const unit of input.unitsIncluding?.(file) ?? input.units) reach(unit, why);
  }
  if (truncated) {
    everything = `what ${change.header} changes is used by more than ${limit} names of the headers its including units see`;
    // Every unit counts; those the names found so far reach keep them, for the message.
    for (const unit of input.units) if (!unitsReached.has(unit)) reach(unit, [everything]);
  }
  const units = new Map([...unitsReached].map(([u, why]) => [u, [...why].sort()] as [string, string[]]).sort((a, b) => a[0].localeCompare(b[0])));
  return { units, ...(everything ? { everything } : {}), closureSize: closure.size };
}
