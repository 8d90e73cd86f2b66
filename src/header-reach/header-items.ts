/**
 * The top-level items of a header (or any C file): each `#define`, `#include`, directive and
 * declaration, with the names it defines, the identifiers it mentions and the conditionals it
 * sits under. Comparing these items is how a header change is told apart from a change in
 * layout or comments (header-change.ts), and following their mentions is how a changed name
 * spreads through the other headers (name-closure.ts).
 *
 * The parsing is lexical, not a C front end: comments dropped, continuation lines joined,
 * tokens compared with whitespace normalised; top-level items split at `;` and at the `}` that
 * ends a function body; `#define`s keyed by name; conditionals kept as each item's context.
 */
import { declarationNames, opensFunctionBody } from './c-declarations.js';
import { IDENTIFIER, IDENTIFIERS, isIdentifier, normalize, stripComments, tokenize } from './c-tokens.js';
import { pasteFragments, type Fragment } from './token-pastes.js';

/** How a top-level item came to be. */
export type ItemKind = 'define' | 'undef' | 'include' | 'pragma' | 'directive' | 'declaration';

export interface Item {
  kind: ItemKind;
  /** The item's text, tokens joined by single spaces, after its enclosing conditionals. */
  text: string;
  /** The names it defines: macros, functions, variables, typedefs, struct/union/enum tags, enumerators. */
  names: string[];
  /**
   * Name parts a macro invocation may paste into the names it defines:
   * `__create_dev_flag_accessors(ready_to_probe, …)` defines `dev_set_ready_to_probe`.
   */
  tails: string[];
  /** Per name, the text that decides what it means (an enumerator: the enum up to it); default `text`. */
  keys: Map<string, string>;
  /** Every identifier of the item and of its enclosing conditionals. */
  mentions: string[];
  /** Identifiers a `##` pastes onto a macro argument: a name with this part may come out of it. */
  fragments: Fragment[];
  /** The macros a top-level invocation calls (`TRACE_EVENT`, `SUBSYS`). */
  invokes: string[];
  /** A definition that puts code or data into every unit that includes it (not `static`, not `extern`, top-level `asm`). */
  emits: boolean;
  /** Changes nothing a unit's code can see: forward declarations, static assertions, `#error`. */
  inert: boolean;
  /** For `#include`: what is included, as written (`<linux/bitops.h>`). */
  include?: string;
  /** The file's first line of the item, for messages. */
  line: number;
}

/** Top-level invocations that change no unit's code: compile-time checks, diagnostics. */
const INERT_INVOCATIONS = /^(static_assert|_Static_assert|BUILD_BUG_ON\w*|__diag_\w+)$/;

/**
 * The identifiers of the tokens and of the conditionals: a struct/union/enum tag as
 * `struct foo` (a tag and a function may share a name: `enum hrtimer_restart` and
 * `hrtimer_restart()`), any other identifier as itself.
 */
function mentionsOf(tokens: readonly string[], conditions: string): string[] {
  const ids = new Set<string>();
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] ?? '';
    if (t.startsWith('#')) for (const m of t.match(IDENTIFIERS) ?? []) ids.add(m);
    else if (t === 'struct' || t === 'union' || t === 'enum') {
      if (isIdentifier(tokens[i + 1])) ids.add(`${t} ${tokens[++i] ?? ''}`);
    } else if (IDENTIFIER.test(t)) ids.add(t);
  }
  for (const m of conditions.match(IDENTIFIERS) ?? []) ids.add(m);
  return [...ids];
}

/** `struct foo` -> `foo`; a plain name as is. */
export function identOf(name: string): string {
  const space = name.indexOf(' ');
  return space < 0 ? name : name.slice(space + 1);
}

/** The top-level items of a header (or any C file), in order. */
export function parseItems(text: string): Item[] {
  const items: Item[] = [];
  const frames: string[][] = [];
  const lines = stripComments(text).split('\n');
  let pending: string[] = [];
  let pendingLine = 0;
  let depth = 0;
  let functionBody = false;
  const conditions = (): string => frames.map((f) => f.join(' | ')).join(' && ');

  const finish = (): void => {
    if (pending.length === 0) return;
    const tokens = pending;
    pending = [];
    depth = 0;
    functionBody = false;
    const cond = conditions();
    const text = tokens.join(' ');
    const found = declarationNames(tokens);
    const keys = new Map<string, string>();
    if (found.enumBody) {
      const head = tokens.slice(0, found.enumBody.start).join(' ');
      for (const e of found.enumerators) keys.set(e.name, `${cond} :: ${head} ${tokens.slice(found.enumBody.start, e.end).join(' ')}`);
    }
    const isStatic = found.storage.has('static');
    const isExtern = found.storage.has('extern');
    const isTypedef = found.storage.has('typedef');
    const emits =
      found.invokes.includes('asm') ||
      (found.functionBody && !isStatic) ||
      (found.declaresData && !found.functionBody && !isStatic && !isExtern && !isTypedef && found.invokes.length === 0);
    const inert = found.forwardOnly || (found.names.length === 0 && found.tails.length === 0 && found.invokes.length > 0 && found.invokes.every((m) => INERT_INVOCATIONS.test(m)));
    items.push({
      kind: 'declaration',
      text: `${cond} :: ${text}`,
      names: found.names,
      tails: found.tails,
      keys,
      mentions: mentionsOf(tokens, cond),
      fragments: [],
      invokes: found.invokes,
      emits,
      inert,
      line: pendingLine,
    });
  };

  lines.forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed.startsWith('#')) {
      const m = /^#\s*(\w*)\s*([\s\S]*)$/.exec(trimmed);
      const keyword = m?.[1] ?? '';
      const rest = m?.[2] ?? '';
      if (pending.length > 0 || depth > 0) {
        // Inside a declaration: part of its text.
        pending.push(`#${keyword} ${normalize(rest)}`);
        return;
      }
      const cond = conditions();
      const base = { keys: new Map<string, string>(), fragments: [] as Fragment[], invokes: [] as string[], emits: false, inert: false, line: index + 1, tails: [] as string[] };
      switch (keyword) {
        case 'if':
        case 'ifdef':
        case 'ifndef':
          frames.push([`${keyword} ${normalize(rest)}`]);
          return;
        case 'elif':
        case 'elifdef':
        case 'elifndef':
        case 'else':
          frames.at(-1)?.push(`${keyword} ${normalize(rest)}`);
          return;
        case 'endif':
          frames.pop();
          return;
        case 'define': {
          const d = /^([A-Za-z_$][\w$]*)(\([^)]*\))?([\s\S]*)$/.exec(rest);
          if (!d?.[1]) return;
          const params = new Set((d[2] ?? '').match(IDENTIFIERS) ?? []);
          const body = tokenize(d[3] ?? '');
          const defText = `#define ${d[1]}${d[2] !== undefined ? `(${tokenize(d[2].slice(1, -1)).join(' ')})` : ''} ${body.join(' ')}`;
          items.push({
            ...base,
            kind: 'define',
            text: `${cond} :: ${defText}`,
            names: [d[1]],
            // A parameter's name means nothing outside the body.
            mentions: mentionsOf(body, cond).filter((m) => !params.has(m)),
            fragments: pasteFragments(body, params),
          });
          return;
        }
        case 'undef': {
          const name = tokenize(rest)[0];
          if (name) items.push({ ...base, kind: 'undef', text: `${cond} :: #undef ${name}`, names: [name], mentions: mentionsOf([], cond) });
          return;
        }
        case 'include':
        case 'include_next':
          items.push({ ...base, kind: 'include', text: `${cond} :: #${keyword} ${normalize(rest)}`, names: [], mentions: mentionsOf(tokenize(rest), cond), include: rest.trim() });
          return;
        case 'pragma':
          items.push({ ...base, kind: 'pragma', text: `${cond} :: #pragma ${normalize(rest)}`, names: [], mentions: mentionsOf(tokenize(rest), cond), emits: true });
          return;
        case '':
          return;
        default:
          // #error, #warning, #line: nothing a unit's code sees.
          items.push({ ...base, kind: 'directive', text: `${cond} :: #${keyword} ${normalize(rest)}`, names: [], mentions: [], inert: true });
          return;
      }
    }
    for (const token of tokenize(line)) {
      if (pending.length === 0) pendingLine = index + 1;
      pending.push(token);
      if (token === '(' || token === '[' || token === '{') {
        if (token === '{' && depth === 0) functionBody = opensFunctionBody(pending);
        depth++;
      } else if (token === ')' || token === ']' || token === '}') {
        depth = Math.max(0, depth - 1);
        if (token === '}' && depth === 0 && functionBody) finish();
      } else if (token === ';' && depth === 0) {
        finish();
      }
    }
  });
  finish();
  return items;
}
