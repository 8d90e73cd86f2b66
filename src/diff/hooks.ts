/**
 * What a patch author wrote with <linux/tsplice.h> (kmod/include/linux/tsplice.h): hooks, the
 * functions the core module runs around and inside the switch, and declarations, which take a
 * refusal away on purpose. Both sit in sections of their own in the post object
 * (`.tsplice.hook.<kind>`: a pointer to the hook; `.tsplice.declare.<kind>`: the symbol's name
 * as a string), which DiffObject keeps apart from the unit's data (authorEntries). Two steps:
 *
 * - collect hooks and declarations (early): each hook names a function of the unit, which the
 *   update carries as an entry point even when nothing calls it;
 * - honour declarations (last): a refusal a declaration answers is taken away; a declaration
 *   that answers no refusal is itself refused, so a misspelt name cannot pass unnoticed.
 */
import { canonicalName } from './names.js';
import type { DiffObject, ObjectPiece } from './object.js';
import type { DiffStep, Refusal } from './pipeline.js';

export const HOOK_KINDS = [
  'pre_apply',
  'check_apply',
  'apply',
  'post_apply',
  'fail_apply',
  'pre_reverse',
  'check_reverse',
  'reverse',
  'post_reverse',
  'fail_reverse',
] as const;
export type HookKind = (typeof HOOK_KINDS)[number];

export const DECLARATION_KINDS = ['data_change_handled', 'init_change_handled'] as const;
export type DeclarationKind = (typeof DECLARATION_KINDS)[number];

/** A hook of the unit: its kind and the function it names. */
export interface Hook {
  kind: HookKind;
  function: string;
}

/** A declaration of the unit: its kind and the symbol it names. */
export interface Declaration {
  kind: DeclarationKind;
  symbol: string;
}

const HOOK_SECTION = /^\.tsplice\.hook\.([a-z_]+)$/;
const DECLARATION_SECTION = /^\.tsplice\.declare\.([a-z_]+)$/;

/** The refusal kinds each declaration answers. */
const ANSWERS: Record<DeclarationKind, readonly Refusal['kind'][]> = {
  data_change_handled: ['changed-initializer', 'changed-btf-id', 'changed-table'],
  init_change_handled: ['init-change'],
};

/** A hook entry: the function pointer, then the line (struct tsplice_hook_entry). */
const HOOK_ENTRY_SIZE = 16;
const LINE_OFFSET = 8;

/** The function a hook entry points at, or why it is not a function of the unit. */
function hookTarget(post: DiffObject, entry: ObjectPiece): { function: ObjectPiece } | { why: string } {
  const [rela, ...more] = entry.relocations;
  if (!rela || more.length > 0 || entry.end - entry.start !== HOOK_ENTRY_SIZE || rela.offset !== entry.start) return { why: 'it is not a hook entry of <linux/tsplice.h> (a function and a line)' };
  const target = post.target(entry, rela);
  if (target.kind === 'piece' && target.offset === 0n && post.functions.includes(target.piece)) return { function: target.piece };
  if (target.kind === 'symbol') {
    const piece = post.pieceOf(target.symbol);
    if (piece && target.addend === 0n && post.functions.includes(piece)) return { function: piece };
    return { why: `it points at ${target.symbol.name}, which is not a function of the unit` };
  }
  return { why: 'it does not point at the entry of a function of the unit' };
}

/** Step: the hooks and declarations of the post object. */
export const collectHooks: DiffStep = {
  name: 'collect hooks and declarations',
  run(state) {
    // Hooks in the order of their lines (the compiler emits them in no promised order).
    const line = (p: ObjectPiece): bigint => (p.end - p.start === HOOK_ENTRY_SIZE ? Buffer.from(state.post.bytes(p)).readBigUInt64LE(LINE_OFFSET) : 0n);
    const pieces = [...state.post.authorEntries].sort((a, b) => Number(line(a) - line(b)) || a.section.index - b.section.index || a.start - b.start);
    for (const entry of pieces) {
      const hook = HOOK_SECTION.exec(entry.section.name)?.[1];
      const declared = DECLARATION_SECTION.exec(entry.section.name)?.[1];
      const kind = HOOK_KINDS.find((k) => k === hook);
      const declaration = DECLARATION_KINDS.find((k) => k === declared);
      if (kind) {
        const target = hookTarget(state.post, entry);
        if ('why' in target) {
          state.refused.push({ kind: 'bad-hook', symbol: entry.symbol.name, section: entry.section.name, reason: `the ${kind} hook ${entry.symbol.name}: ${target.why}` });
          continue;
        }
        state.hooks.push({ kind, function: target.function.symbol.name });
      } else if (declaration) {
        const bytes = Buffer.from(state.post.bytes(entry));
        const end = bytes.indexOf(0);
        state.declarations.push({ kind: declaration, symbol: bytes.subarray(0, end < 0 ? bytes.length : end).toString('latin1') });
      } else {
        state.refused.push({
          kind: 'bad-hook',
          symbol: entry.symbol.name,
          section: entry.section.name,
          reason: `section ${entry.section.name} is not one <linux/tsplice.h> makes (hooks: ${HOOK_KINDS.join(', ')}; declarations: ${DECLARATION_KINDS.join(', ')})`,
        });
      }
    }
  },
};

/** A shadow id the new code uses, as far as the code shows it (a constant moved into the argument). */
export interface ShadowUse {
  /** `0x…`, or `computed` when the code does not load it as a constant. */
  id: string;
  function: string;
  /** The shadow function called. */
  call: string;
}

/** The register each shadow function takes its id in (x86-64 psABI: 2nd argument, or 1st). */
const SHADOW_ID_REGISTER: Readonly<Record<string, readonly string[]>> = {
  tsplice_shadow_get: ['ESI', 'RSI'],
  tsplice_shadow_get_or_alloc: ['ESI', 'RSI'],
  tsplice_shadow_free: ['ESI', 'RSI'],
  tsplice_shadow_free_all: ['EDI', 'RDI'],
};

/** The functions tsplice_core exports to update modules: the module loader links them, not apply. */
export const SHADOW_FUNCTIONS: readonly string[] = Object.keys(SHADOW_ID_REGISTER);

/** How far back from a call the id's `mov` is looked for, before giving up as `computed`. */
const ID_LOOKBACK = 16;

/** Step: the shadow ids the carried code passes to tsplice_shadow_*, for `tsplice inspect`. */
export const findShadowIds: DiffStep = {
  name: 'find shadow ids',
  run(state) {
    for (const f of state.functions) {
      let instructions: ReturnType<DiffObject['instructions']> | undefined;
      for (const rela of f.post.relocations) {
        const target = state.post.target(f.post, rela);
        const registers = target.kind === 'symbol' ? SHADOW_ID_REGISTER[target.symbol.name] : undefined;
        if (!registers || target.kind !== 'symbol') continue;
        instructions ??= state.post.instructions(f.post);
        const at = instructions.findIndex((i) => rela.offset - f.post.start >= i.offset && rela.offset - f.post.start < i.offset + i.length);
        let id = 'computed';
        for (let k = at - 1; k >= 0 && k >= at - ID_LOOKBACK; k--) {
          const before = instructions[k];
          if (!before || before.isCall) break;
          if (before.immediate && registers.includes(before.immediate.register)) {
            id = `0x${before.immediate.value.toString(16)}`;
            break;
          }
        }
        if (!state.shadowIds.some((u) => u.id === id && u.function === f.name && u.call === target.symbol.name)) state.shadowIds.push({ id, function: f.name, call: target.symbol.name });
      }
    }
  },
};

/** Whether a refusal is about `symbol`, by its name as C spells it. */
function names(refusal: Refusal, symbol: string): boolean {
  return [refusal.symbol, refusal.function].some((n) => n !== undefined && (n === symbol || canonicalName(n) === symbol));
}

/** Step: declarations take away the refusals they answer; one answering none is refused. */
export const honourDeclarations: DiffStep = {
  name: 'honour declarations',
  run(state) {
    const used = new Set<Declaration>();
    state.refused = state.refused.filter((refusal) => {
      const answer = refusal.unanswerable ? undefined : state.declarations.find((d) => ANSWERS[d.kind].includes(refusal.kind) && names(refusal, d.symbol));
      if (!answer) return true;
      used.add(answer);
      return false;
    });
    // What is left says what would answer it.
    for (const refusal of state.refused) {
      const answer = refusal.unanswerable ?? whatAnswers(refusal.kind, refusal.symbol, refusal.section);
      if (answer) refusal.reason = `${refusal.reason}; ${answer}`;
      delete refusal.unanswerable;
    }
    for (const d of state.declarations) {
      if (used.has(d)) continue;
      const what = d.kind === 'data_change_handled' ? 'no existing data of that name has a changed initial value' : 'no __init code or data of that name changes';
      state.refused.push({
        kind: 'unused-declaration',
        symbol: d.symbol,
        section: `.tsplice.declare.${d.kind}`,
        reason: `tsplice_${d.kind}(${d.symbol}) answers nothing: ${what} in this unit`,
      });
    }
  },
};

/** Data the kernel cannot write after boot: a hook's plain store there would fault. */
const READ_ONLY_SECTION = /^(\.rodata|\.data\.\.ro_after_init|\.BTF_ids)/;

/** The sentence a refusal gives for what would answer it, by kind and section (create's messages). */
export function whatAnswers(kind: Refusal['kind'], symbol: string, section = ''): string | undefined {
  const name = canonicalName(symbol);
  // A table refused as a whole section (`.pci_fixup_header`) has no C name to declare.
  if (kind === 'changed-table' && symbol.startsWith('.')) return 'a section the kernel reads at boot cannot be declared: rewrite the fix so that the replaced code carries the change, or it applies only at the next boot (docs/hooks.md)';
  if (ANSWERS.data_change_handled.includes(kind) && READ_ONLY_SECTION.test(section)) {
    return 'the running copy is read-only, so no hook can write it: rewrite the fix so that the replaced code carries the change (docs/hooks.md)';
  }
  if (ANSWERS.data_change_handled.includes(kind)) return `declare tsplice_data_change_handled(${name}) and write the new value in a tsplice_apply hook (docs/hooks.md)`;
  if (ANSWERS.init_change_handled.includes(kind)) return `declare tsplice_init_change_handled(${name}) if nothing needs doing at run time, or do it in a hook (docs/hooks.md)`;
  if (kind === 'layout-change') return 'rewrite the fix with shadow data (tsplice_shadow_*, docs/hooks.md)';
  return undefined;
}

