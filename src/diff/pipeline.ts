/**
 * Pre-post differencing of one compilation unit, as a list of named steps in the manner of
 * kpatch's create-diff-object. Each step reads the state the earlier ones left and adds to
 * it; `diffObjects` runs them in order. The result says which functions the update carries
 * (changed and new), which new data it carries, and what makes the pair unsafe (refusals).
 */
import type { DiagnosticKind } from '../host/errors.js';
import { definingSection, SHT_NOBITS } from '../elf/index.js';
import { comparePieces } from './compare.js';
import { correlate, type Correlation } from './correlate.js';
import { DiffObject, isInit, isWritable, type ObjectPiece } from './object.js';
import { checkDataLayouts } from './layouts.js';
import { copyUnplacedStaticCallees } from './private-copies.js';
import { findRenamedFunctions } from './renames.js';
import { copyChangedReadOnlyData, readersOf } from './read-only-copies.js';
import { collectHooks, findShadowIds, honourDeclarations, type Declaration, type Hook, type ShadowUse } from './hooks.js';
import { refuseChangedTables } from './tables.js';
import { bugLines, scanSpecialSections, type SpecialEntry } from './special-sections.js';

export interface CarriedFunction {
  name: string;
  /** changed: replaces a running function; new: only the update has it; copy: a private copy of an unchanged static (private-copies.ts). */
  status: 'changed' | 'new' | 'copy';
  section: string;
  /** Why it counts as changed (first difference found). */
  why?: string;
  post: ObjectPiece;
  pre?: ObjectPiece;
}

export interface NewData {
  name: string;
  /** new: only the update has it; copy: the update's own copy of changed read-only data (read-only-copies.ts). */
  status: 'new' | 'copy';
  section: string;
  post?: ObjectPiece;
}

/** What makes a pair unsafe: a diagnostic of the differencing, before create adds the unit. */
export interface Refusal {
  kind: DiagnosticKind;
  /** The function, data object, type or table refused. */
  symbol: string;
  /** The function the refusal is about, when it is one (a changed __init function, a user of a changed type). */
  function?: string;
  section: string;
  /** Where in the symbol the first difference is, when it is at one place. */
  offset?: number;
  reason: string;
  /** Why no declaration answers this refusal, when none can (hooks.ts). */
  unanswerable?: string;
}

export interface DiffState {
  pre: DiffObject;
  post: DiffObject;
  correlation: Correlation;
  functions: CarriedFunction[];
  data: NewData[];
  refused: Refusal[];
  /** Functions whose only difference is a line number or a renumbered label: left out. */
  lineNumbersOnly: string[];
  specialEntries: SpecialEntry[];
  /** The pre object's entries for the pre versions of carried functions: where run-pre matching must expect boot-time rewrites. */
  preSpecialEntries: SpecialEntry[];
  /** The patch author's hooks and declarations (<linux/tsplice.h>, hooks.ts), in the unit's order. */
  hooks: Hook[];
  declarations: Declaration[];
  /** The shadow ids the carried code uses (hooks.ts). */
  shadowIds: ShadowUse[];
}

export interface DiffStep {
  name: string;
  run(state: DiffState): void;
}

/** Step: every post function is compared with its pre version, or is new. */
const compareFunctions: DiffStep = {
  name: 'compare functions',
  run(state) {
    findRenamedFunctions(state.pre, state.post, state.correlation);
    const preLines = bugLines(state.pre);
    const postLines = bugLines(state.post);
    for (const post of state.post.functions) {
      const pre = state.correlation.postToPre.get(post);
      if (!pre) {
        state.functions.push({ name: post.symbol.name, status: 'new', section: post.section.name, post });
        continue;
      }
      const verdict = comparePieces(state.pre, pre, state.post, post, state.correlation);
      if (verdict.verdict === 'changed') {
        state.functions.push({ name: post.symbol.name, status: 'changed', section: post.section.name, why: verdict.why, post, pre });
      } else if (verdict.verdict === 'line-numbers-only') {
        state.lineNumbersOnly.push(post.symbol.name);
      } else if ((preLines.get(pre) ?? []).join() !== (postLines.get(post) ?? []).join()) {
        // Same code; only the lines recorded for its WARN/BUG sites moved.
        state.lineNumbersOnly.push(post.symbol.name);
      }
    }
  },
};

/**
 * Step: code that jumps into the middle of a changed function (a `.cold` part jumping back
 * into its hot part) would land in the old body; it is carried too, until nothing changes.
 */
const carryJumpsIntoChangedCode: DiffStep = {
  name: 'carry code that jumps into changed code',
  run(state) {
    let grew = true;
    while (grew) {
      grew = false;
      const carried = new Set(state.functions.map((f) => f.post));
      for (const post of state.post.functions) {
        if (carried.has(post)) continue;
        for (const rela of post.relocations) {
          const target = state.post.target(post, rela);
          if (target.kind === 'piece' && target.offset !== 0n && carried.has(target.piece) && target.piece !== post) {
            state.functions.push({
              name: post.symbol.name,
              status: 'changed',
              section: post.section.name,
              why: `jumps into changed ${target.piece.symbol.name}`,
              post,
              pre: state.correlation.postToPre.get(post),
            });
            grew = true;
            break;
          }
        }
      }
    }
  },
};

/** Step: new data is carried; existing data whose initial value changed is refused (literals aside). */
const compareData: DiffStep = {
  name: 'compare data',
  run(state) {
    const copied = new Set(state.data.map((d) => d.post));
    for (const post of state.post.dataObjects) {
      if (copied.has(post)) continue;
      const pre = state.correlation.postToPre.get(post);
      if (!pre) {
        state.data.push({ name: post.symbol.name, status: 'new', section: post.section.name, post });
        continue;
      }
      if (post.section.type === SHT_NOBITS && pre.section.type === SHT_NOBITS && pre.end - pre.start === post.end - post.start) continue;
      // A renumbered literal (`__msg.9` now holding what `__msg.8` held) is compared where it
      // is used, by contents, and new code gets a copy: no running copy changes meaning.
      if (state.pre.isConstantLabel(pre) && state.post.isConstantLabel(post)) continue;
      const verdict = comparePieces(state.pre, pre, state.post, post, state.correlation);
      if (verdict.verdict !== 'changed') continue;
      // Read-only data the update could not carry a copy of says why (read-only-copies.ts).
      const notCopied = isWritable(post.section) ? undefined : readersOf(state.post, post);
      const what = isWritable(post.section)
        ? 'the running kernel\'s copy is live state'
        : `existing code reads the running kernel's copy${notCopied && 'why' in notCopied ? ` and the update cannot carry its own (${notCopied.why})` : ''}`;
      // A BTF ID the data names that is another one now: told apart from other values.
      const btf = verdict.targets?.pre.startsWith('__BTF_ID__') && verdict.targets.post.startsWith('__BTF_ID__');
      state.refused.push({
        kind: btf ? 'changed-btf-id' : 'changed-initializer',
        symbol: post.symbol.name,
        section: post.section.name,
        ...(verdict.offset !== undefined ? { offset: verdict.offset } : {}),
        reason: `changed initial value of existing data (${verdict.why}); ${what}: it needs a hook`,
        // Existing data that grows or shrinks: no hook can give a live object another size.
        ...(pre.end - pre.start !== post.end - post.start ? { unanswerable: 'no hook can give existing data another size: rewrite the fix so that it keeps its size' } : {}),
      });
    }
  },
};

/** Step: new string literals the carried code uses are new data. */
const collectNewStrings: DiffStep = {
  name: 'collect new strings',
  run(state) {
    const preStrings = new Set<string>();
    for (const piece of state.pre.functions) {
      for (const rela of piece.relocations) {
        const t = state.pre.target(piece, rela);
        if (t.kind === 'string') preStrings.add(t.text);
      }
    }
    const seen = new Set<string>();
    for (const f of state.functions) {
      for (const rela of f.post.relocations) {
        const t = state.post.target(f.post, rela);
        if (t.kind !== 'string' || preStrings.has(t.text) || seen.has(t.text)) continue;
        seen.add(t.text);
        const symbol = state.post.elf.symbols[rela.symbolIndex];
        const section = symbol ? definingSection(state.post.elf, symbol)?.name ?? '' : '';
        state.data.push({ name: JSON.stringify(t.text), status: 'new', section });
      }
    }
  },
};

/** Step: init code and data ran at boot and are gone; changing them needs a hook. */
const refuseInitChanges: DiffStep = {
  name: 'refuse changes to __init code and data',
  run(state) {
    state.functions = state.functions.filter((f) => {
      if (!isInit(f.post)) return true;
      state.refused.push({
        kind: 'init-change',
        symbol: f.name,
        function: f.name,
        section: f.section,
        reason: `${f.status} __init function: init code ran at boot and was freed; the change needs a hook`,
      });
      return false;
    });
    state.data = state.data.filter((d) => {
      if (!d.post || !isInit(d.post)) return true;
      state.refused.push({ kind: 'init-change', symbol: d.name, section: d.section, reason: 'new __initdata: init data was freed after boot' });
      return false;
    });
    for (const r of state.refused) {
      if (isInit({ section: { name: r.section } }) && (r.kind === 'changed-initializer' || r.kind === 'changed-btf-id')) {
        r.kind = 'init-change';
        r.reason = 'changed __initdata: init data was freed after boot; the change needs a hook';
        // Freed data has no size to keep: a declaration answers it whatever its size.
        delete r.unanswerable;
      }
    }
  },
};

/** Step: the special-section entries of carried code; refuse sections tsplice does not know. */
const collectSpecialEntries: DiffStep = {
  name: 'collect special-section entries',
  run(state) {
    const carried = new Set(state.functions.map((f) => f.post));
    const scan = scanSpecialSections(state.post, carried);
    state.specialEntries = scan.entries;
    const carriedPre = new Set(state.functions.flatMap((f) => (f.pre ? [f.pre] : [])));
    state.preSpecialEntries = scanSpecialSections(state.pre, carriedPre).entries;
    for (const u of scan.unknown) {
      state.refused.push({
        kind: 'unknown-special-section',
        symbol: u.owner.symbol.name,
        function: u.owner.symbol.name,
        section: u.section,
        reason: `section ${u.section} describes this function and tsplice does not know its layout`,
      });
    }
  },
};

export const DIFF_STEPS: readonly DiffStep[] = [
  collectHooks,
  compareFunctions,
  copyChangedReadOnlyData,
  carryJumpsIntoChangedCode,
  copyUnplacedStaticCallees,
  compareData,
  collectNewStrings,
  refuseInitChanges,
  collectSpecialEntries,
  refuseChangedTables,
  checkDataLayouts,
  honourDeclarations,
  findShadowIds,
];

export function diffObjects(pre: DiffObject, post: DiffObject, steps: readonly DiffStep[] = DIFF_STEPS): DiffState {
  const state: DiffState = {
    pre,
    post,
    correlation: correlate(pre, post),
    functions: [],
    data: [],
    refused: [],
    lineNumbersOnly: [],
    specialEntries: [],
    preSpecialEntries: [],
    hooks: [],
    declarations: [],
    shadowIds: [],
  };
  for (const step of steps) step.run(state);
  return state;
}

/** The JSON that `tsplice diff --json` prints. */
export interface DiffReport {
  ok: boolean;
  functions: { name: string; status: 'changed' | 'new' | 'copy' }[];
  data: { name: string; status: 'new' | 'copy' }[];
  refused: Refusal[];
  lineNumbersOnly: string[];
  hooks: Hook[];
  declarations: Declaration[];
  shadowIds: ShadowUse[];
}

export function diffReport(state: DiffState): DiffReport {
  return {
    ok: state.refused.length === 0 && (state.functions.length > 0 || state.hooks.length > 0 || state.declarations.length > 0),
    functions: state.functions.map((f) => ({ name: f.name, status: f.status })),
    data: state.data.map((d) => ({ name: d.name, status: d.status })),
    refused: state.refused,
    lineNumbersOnly: state.lineNumbersOnly,
    hooks: state.hooks,
    declarations: state.declarations,
    shadowIds: state.shadowIds,
  };
}
