/**
 * Which units a header change can reach, for `create`: the top-level items of a header's pre
 * and post text, the names whose meaning changed, those names closed over the items of the
 * other headers the units see, and the units whose own text names one of them.
 *
 * Conservative by construction: it may name a unit whose code does not change (a wasted
 * compile), it must not leave out one whose code could. Where the text says nothing a name
 * could carry (a changed top-level `asm`, a `#pragma`, a definition that emits code or data
 * in every includer, an item the parser names nothing for), the change reaches every unit
 * that includes the header, as before. See docs/create.md, "Header reach".
 *
 * The parsing is lexical, not a C front end: comments dropped, continuation lines joined,
 * tokens compared with whitespace normalised; top-level items split at `;` and at the `}` that
 * ends a function body; `#define`s keyed by name; conditionals kept as each item's context.
 */

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

/**
 * A `##` paste chain of a macro body, operand by operand: a literal (`dev_`), or `null` for
 * a macro parameter. `dev_##accessor_name` is `['dev_', null]`.
 */
export interface Fragment {
  operands: (string | null)[];
}

const KEYWORDS = new Set(
  (
    'auto break case char const continue default do double else enum extern float for goto if inline int long register restrict return short ' +
    'signed sizeof static struct switch typedef union unsigned void volatile while _Bool _Complex _Alignas _Alignof _Atomic ' +
    '_Generic _Noreturn _Thread_local __attribute__ __attribute __asm__ __asm asm __inline__ __inline __volatile__ __volatile __restrict ' +
    '__restrict__ typeof __typeof__ __typeof __extension__ __signed__ __const__ __const __auto_type'
  ).split(' '),
);

/** Keywords that say how a declaration is stored, not what type it has. */
const STORAGE = new Set(['static', 'extern', 'inline', '__inline__', '__inline', 'const', 'volatile', '__extension__', 'register', '_Thread_local']);

/** Attribute macros that take arguments and may stand between a struct keyword or tag and its body. */
const ATTRIBUTE_MACROS = new Set(['__aligned', '__section', '__attribute__', '__attribute', '__cacheline_aligned', '__packed', '__randomize_layout', '__no_randomize_layout']);

/** Type names a macro argument often is and that never come out of a paste. */
const BASIC_TYPES = new Set(
  (
    'void char short int long float double signed unsigned bool _Bool u8 u16 u32 u64 s8 s16 s32 s64 __u8 __u16 __u32 __u64 __s8 __s16 ' +
    '__s32 __s64 __le16 __le32 __le64 __be16 __be32 __be64 size_t ssize_t uintptr_t atomic_t atomic64_t atomic_long_t'
  ).split(' '),
);

/** Top-level invocations that change no unit's code: compile-time checks, diagnostics. */
const INERT_INVOCATIONS = /^(static_assert|_Static_assert|BUILD_BUG_ON\w*|__diag_\w+)$/;

const TOKEN = /[A-Za-z_$][\w$]*|\.?\d(?:[\w.]|[eEpP][+-])*|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|##|->|<<=|>>=|\.\.\.|[-+*/%&|^<>=!]=|<<|>>|&&|\|\||\+\+|--|\S/g;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const IDENTIFIERS = /[A-Za-z_$][\w$]*/g;

/**
 * The text with continuation lines joined and comments removed (string and character
 * literals kept whole); a newline is kept for each removed one, so lines still count.
 */
export function stripComments(text: string): string {
  const lines: string[] = [];
  // Continuations joined first (translation phase 2), with the lost newlines put back after
  // the joined line so that line numbers stay those of the file.
  const joined = text.replace(/\r\n?/g, '\n').split('\n');
  let carry = '';
  let owed = 0;
  for (const line of joined) {
    if (line.endsWith('\\')) {
      carry += `${line.slice(0, -1)} `;
      owed++;
      continue;
    }
    lines.push(carry + line);
    for (; owed > 0; owed--) lines.push('');
    carry = '';
  }
  if (carry) lines.push(carry);
  return lines
    .join('\n')
    .replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'/g, (m) =>
      m.startsWith('/*') ? ` ${'\n'.repeat(m.split('\n').length - 1)}` : m.startsWith('//') ? ' ' : m,
    );
}

export function tokenize(text: string): string[] {
  return text.match(TOKEN) ?? [];
}

/** The identifiers of a text, after comments are removed. */
export function identifiersOf(text: string): Set<string> {
  return new Set(stripComments(text).match(IDENTIFIERS) ?? []);
}

interface Element {
  token: string;
  /** For a group (`(`, `[`, `{`), the index just past its closing token. */
  end: number;
  start: number;
}

/** The items of the tokens `tokens` at depth 0: single tokens, and whole groups. */
function elements(tokens: readonly string[], from = 0, to = tokens.length): Element[] {
  const out: Element[] = [];
  for (let i = from; i < to; ) {
    const token = tokens[i] ?? '';
    if (token === '(' || token === '[' || token === '{') {
      let depth = 0;
      let j = i;
      for (; j < to; j++) {
        const t = tokens[j];
        if (t === '(' || t === '[' || t === '{') depth++;
        else if (t === ')' || t === ']' || t === '}') depth--;
        if (depth === 0) break;
      }
      out.push({ token, start: i, end: Math.min(j + 1, to) });
      i = j + 1;
    } else {
      if (!token.startsWith('#')) out.push({ token, start: i, end: i + 1 });
      i++;
    }
  }
  return out;
}

/** The comma-separated parts of a group's inside, as token ranges. */
function groupParts(tokens: readonly string[], group: Element): [number, number][] {
  const parts: [number, number][] = [];
  let depth = 0;
  let start = group.start + 1;
  for (let i = group.start + 1; i < group.end - 1; i++) {
    const t = tokens[i];
    if (t === '(' || t === '[' || t === '{') depth++;
    else if (t === ')' || t === ']' || t === '}') depth--;
    else if (t === ',' && depth === 0) {
      parts.push([start, i]);
      start = i + 1;
    }
  }
  if (start < group.end - 1) parts.push([start, group.end - 1]);
  return parts;
}

function isIdentifier(token: string | undefined): token is string {
  return token !== undefined && IDENTIFIER.test(token) && !KEYWORDS.has(token);
}

/** `(*name)`, `(*const name[4])`: the name a function-pointer declarator's group holds. */
function pointerDeclaratorName(tokens: readonly string[], group: Element): string | undefined {
  let i = group.start + 1;
  if (tokens[i] !== '*' && tokens[i] !== '^') return undefined;
  while (i < group.end - 1) {
    const t = tokens[i] ?? '';
    if (t === '*' || t === '^' || t === 'const' || t === 'volatile' || t === 'restrict' || t === '__restrict') i++;
    // `__rcu`, `__percpu` and the like before the name.
    else if (isIdentifier(t) && t.startsWith('__') && isIdentifier(tokens[i + 1])) i++;
    else break;
  }
  const name = tokens[i];
  return isIdentifier(name) && [')', '[', '('].includes(tokens[i + 1] ?? '') ? name : undefined;
}

/** After a declarator's name: only attributes (`__read_mostly`, `__aligned(8)`, `asm("x")`) up to `,` `;` `=` or the end. */
function onlyAttributesFollow(els: readonly Element[], from: number): boolean {
  for (let i = from; i < els.length; i++) {
    const t = els[i]?.token ?? '';
    if (t === ',' || t === ';' || t === '=' || t === '{') return true;
    if (t === '(') continue;
    if (t === 'asm' || t === '__asm__' || t === '__asm' || t === '__attribute__' || t === '__attribute') continue;
    if (IDENTIFIER.test(t) && t.startsWith('__') && !KEYWORDS.has(t)) continue;
    return false;
  }
  return true;
}

/** Whether, up to the end of the declarator, a plain identifier (the real name) follows `from`. */
function plainNameFollows(els: readonly Element[], from: number): boolean {
  for (let i = from; i < els.length; i++) {
    const t = els[i]?.token ?? '';
    if (t === ',' || t === ';' || t === '=' || t === '{') return false;
    if (isIdentifier(t) && !t.startsWith('__')) return true;
  }
  return false;
}

interface Names {
  names: string[];
  tails: string[];
  invokes: string[];
  /** Enumerators of a top-level enum with the token index where each one's entry ends. */
  enumerators: { name: string; end: number }[];
  /** The body group of that enum. */
  enumBody?: Element;
  functionBody: boolean;
  storage: Set<string>;
  declaresData: boolean;
  forwardOnly: boolean;
}

/** Every `struct|union|enum TAG {` anywhere in the tokens (nested tags and enumerators are file-scope names in C). */
function nestedTagsAndEnumerators(tokens: readonly string[], from: number, to: number, into: Set<string>): void {
  const skipAttributes = (j: number): number => {
    while ((tokens[j] === '__attribute__' || ATTRIBUTE_MACROS.has(tokens[j] ?? '')) && tokens[j + 1] === '(') {
      let depth = 0;
      for (j++; j < to; j++) {
        if (tokens[j] === '(') depth++;
        else if (tokens[j] === ')') depth--;
        if (depth === 0) break;
      }
      j++;
    }
    return j;
  };
  for (let i = from; i < to; i++) {
    const t = tokens[i];
    if (t !== 'struct' && t !== 'union' && t !== 'enum') continue;
    let j = skipAttributes(i + 1);
    const tag = isIdentifier(tokens[j]) ? tokens[j++] : undefined;
    j = skipAttributes(j);
    if (tokens[j] !== '{') continue;
    if (tag) into.add(`${t} ${tag}`);
    if (t === 'enum') {
      const body = elements(tokens, j, to)[0];
      if (body) for (const [s] of groupParts(tokens, body)) if (isIdentifier(tokens[s])) into.add(tokens[s] ?? '');
    }
  }
}

/** The names a top-level declaration (or definition, or invocation) defines. */
function declarationNames(tokens: readonly string[]): Names {
  const els = elements(tokens);
  const result: Names = { names: [], tails: [], invokes: [], enumerators: [], functionBody: false, storage: new Set(), declaresData: false, forwardOnly: false };
  const names = new Set<string>();
  let typeSeen = false;
  let nameFound = false;
  let sawBody = false;
  let sawName = false;
  // Right after a struct/union/enum body, `__packed`, `__aligned(8)` are attributes, not declarators.
  let afterBody = false;
  const isAttribute = (t: string): boolean => t === '__attribute__' || t === '__attribute' || t === 'asm' || t === '__asm__' || t === '__asm';
  for (let i = 0; i < els.length; i++) {
    const el = els[i];
    if (!el) break;
    const t = el.token;
    const next = els[i + 1];
    if (afterBody && isAttribute(t)) {
      if (next?.token === '(') i++;
      continue;
    }
    if (afterBody && t.startsWith('__') && isIdentifier(t)) {
      // `} __packed;`, `} __aligned(8) name;`: an attribute unless nothing else could be the name.
      const after = i + (next?.token === '(' ? 2 : 1);
      const end = els[after]?.token;
      if (end === undefined || end === ';' || end === ',' || end === '=' || plainNameFollows(els, after) || (end ?? '').startsWith('__')) {
        i = after - 1;
        continue;
      }
    }
    afterBody = false;
    if (t === ',') {
      nameFound = false;
      continue;
    }
    if (t === ';') continue;
    if (t === '=') {
      // The initializer: mentions, no names.
      while (i + 1 < els.length && els[i + 1]?.token !== ',' && els[i + 1]?.token !== ';') i++;
      continue;
    }
    if (t === 'struct' || t === 'union' || t === 'enum') {
      typeSeen = true;
      // KW [attributes] [TAG] [attributes] { body }, or KW TAG and a declarator.
      let j = i + 1;
      const skipAttributes = (): void => {
        while (isAttribute(els[j]?.token ?? '') || (ATTRIBUTE_MACROS.has(els[j]?.token ?? '') && els[j + 1]?.token === '(')) j += els[j + 1]?.token === '(' ? 2 : 1;
      };
      skipAttributes();
      const run: string[] = [];
      if (isIdentifier(els[j]?.token)) {
        run.push(els[j]?.token ?? '');
        j++;
      }
      const afterTag = j;
      skipAttributes();
      if (els[j]?.token !== '{') j = afterTag;
      const body = els[j];
      if (body?.token === '{') {
        sawBody = true;
        afterBody = true;
        const tag = run.at(-1);
        if (tag) names.add(`${t} ${tag}`);
        if (t === 'enum') {
          result.enumBody = body;
          for (const [s, e] of groupParts(tokens, body)) {
            let k = s;
            while (k < e && (tokens[k] ?? '').startsWith('#')) k++;
            if (isIdentifier(tokens[k])) result.enumerators.push({ name: tokens[k] ?? '', end: e });
          }
        }
        i = j;
      } else {
        i = j - 1;
      }
      continue;
    }
    if (t === '(') {
      if (!nameFound && typeSeen) {
        const name = pointerDeclaratorName(tokens, el);
        if (name) {
          names.add(name);
          nameFound = true;
          sawName = true;
          result.declaresData = true;
        }
      }
      continue;
    }
    if (t === '{') {
      sawBody = true;
      if (els[i - 1]?.token === '(' || nameFound) result.functionBody = true;
      continue;
    }
    if (STORAGE.has(t)) {
      result.storage.add(t);
      continue;
    }
    if (isAttribute(t)) {
      if (next?.token === '(') i++;
      if ((t === 'asm' || t === '__asm__' || t === '__asm') && !typeSeen && !nameFound) result.invokes.push('asm');
      continue;
    }
    if (KEYWORDS.has(t)) {
      if (t === 'typedef') result.storage.add(t);
      else typeSeen = true;
      continue;
    }
    if (t === '*') {
      typeSeen = true;
      continue;
    }
    if (!IDENTIFIER.test(t)) continue;
    if (next?.token === '(') {
      if (pointerDeclaratorName(tokens, next) !== undefined) {
        // `u32 (*fn)(void)`: t is the type; the group holds the name.
        typeSeen = true;
        continue;
      }
      if (nameFound) {
        // An attribute after the declarator: `__printf(1, 2)`, `__acquires(x)`.
        i++;
        continue;
      }
      if (!typeSeen) {
        // A macro invocation (`DECLARE_PER_CPU(u32, x)`, `__printf(3, 4)` before a prototype).
        result.invokes.push(t);
        for (const [s, e] of groupParts(tokens, next)) {
          const arg = tokens[s] ?? '';
          if (e === s + 1 && isIdentifier(arg) && !BASIC_TYPES.has(arg) && /[a-z]/.test(arg)) result.tails.push(arg);
        }
        i++;
        continue;
      }
      if (plainNameFollows(els, i + 2)) {
        // An attribute with arguments before the name: `int __section(".x") foo;`.
        i++;
        continue;
      }
      names.add(t);
      nameFound = true;
      sawName = true;
      i++;
      if (els[i + 1]?.token === '{') result.functionBody = true;
      continue;
    }
    if (nameFound) continue;
    const n = next?.token;
    if (n === undefined || n === '[' || n === '=' || n === ',' || n === ';' || n === ':' || n === ')' || n === '{') {
      if (typeSeen || result.storage.size > 0 || sawBody) {
        names.add(t);
        nameFound = true;
        sawName = true;
        result.declaresData = true;
      }
      typeSeen = true;
      continue;
    }
    if (typeSeen && onlyAttributesFollow(els, i + 1)) {
      names.add(t);
      nameFound = true;
      sawName = true;
      result.declaresData = true;
      continue;
    }
    typeSeen = true;
  }
  const nested = new Set<string>();
  nestedTagsAndEnumerators(tokens, 0, tokens.length, nested);
  for (const n of nested) names.add(n);
  for (const e of result.enumerators) names.add(e.name);
  result.names = [...names];
  result.forwardOnly = !sawName && !sawBody && result.invokes.length === 0 && /^(struct|union|enum)$/.test(els[0]?.token ?? '');
  return result;
}

/**
 * Whether the `{` just pushed (last of `pending`) opens a function body rather than a
 * struct/union/enum body or an initializer: it follows a parameter list, which is not an
 * attribute's (`struct foo __aligned(8) {`, `struct __attribute__((packed)) {`) — a function
 * may return a struct by value (`static enum s_alloc __visit_domain_allocation_hell(…) {`).
 */
function opensFunctionBody(pending: readonly string[]): boolean {
  let i = pending.length - 2;
  if (pending[i] !== ')') return false;
  let depth = 0;
  for (; i >= 0; i--) {
    if (pending[i] === ')') depth++;
    else if (pending[i] === '(') depth--;
    if (depth === 0) break;
  }
  const owner = pending[i - 1] ?? '';
  if (owner === '__attribute__' || owner === '__attribute') return false;
  let identifiers = 0;
  for (let k = i - 1; k >= 0; k--) {
    const t = pending[k] ?? '';
    if (t === 'struct' || t === 'union' || t === 'enum') return !(identifiers === 1 || ATTRIBUTE_MACROS.has(owner));
    if (!IDENTIFIER.test(t) || KEYWORDS.has(t)) return true;
    identifiers++;
  }
  return true;
}

function normalize(text: string): string {
  return tokenize(text).join(' ');
}

/** The `##` paste chains of a macro body that have a literal operand. */
function pasteFragments(body: readonly string[], params: ReadonlySet<string>): Fragment[] {
  const out: Fragment[] = [];
  for (let i = 0; i < body.length; i++) {
    if (body[i + 1] !== '##' || body[i - 1] === '##') continue;
    const operands: (string | null)[] = [];
    let j = i;
    for (; ; j += 2) {
      const t = body[j] ?? '';
      operands.push(params.has(t) || t === '__VA_ARGS__' || !/^[\w$]+$/.test(t) ? null : t);
      if (body[j + 1] !== '##') break;
    }
    if (operands.some((o) => o !== null)) out.push({ operands });
    i = j;
  }
  return out;
}

/**
 * The index key of a paste: its literal first operand as a prefix (`<dev_`) or else its
 * literal last operand as a suffix (`>_show`). A chain with parameters at both ends
 * (`a##_is_##b`) has none and is not followed: it would tie the body to any name holding
 * `_is_` (see docs/create.md, limits).
 */
function fragmentKey(f: Fragment): string | undefined {
  const first = f.operands[0];
  const last = f.operands.at(-1);
  const usable = (t: string | null | undefined): t is string => typeof t === 'string' && t.length >= 3 && /[A-Za-z].*[A-Za-z]/.test(t);
  if (usable(first)) return `<${first}`;
  if (usable(last)) return `>${last}`;
  return undefined;
}

/** Whether the paste can build `name`: its literals in order, anything for the parameters. */
function fragmentMatches(f: Fragment, name: string): boolean {
  const source = f.operands.map((o) => (o === null ? '[\\w$]*' : o.replace(/\$/g, '\\$'))).join('');
  return new RegExp(`^${source}$`).test(name);
}

/**
 * For a paste of one literal and one parameter (`X86_FEATURE_##name`), the rest of `name`
 * the argument must be (`ZEN1`); a use that builds the name writes that rest out.
 */
function fragmentRest(f: Fragment, name: string): string | undefined {
  if (f.operands.length !== 2) return undefined;
  const [a, b] = f.operands;
  const rest = typeof a === 'string' && b === null ? name.slice(a.length) : a === null && typeof b === 'string' ? name.slice(0, name.length - b.length) : undefined;
  return rest !== undefined && IDENTIFIER.test(rest) ? rest : undefined;
}

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

/** Per name (tails as `*tail*`), the keys of the items that define it, in order. */
function keyed(items: readonly Item[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (name: string, key: string): void => {
    const list = out.get(name);
    if (list) list.push(key);
    else out.set(name, [key]);
  };
  for (const item of items) {
    for (const name of item.names) add(name, item.keys.get(name) ?? item.text);
    for (const tail of item.tails) add(tailName(tail), item.text);
  }
  return out;
}

/** How a tail is written among names: `*ready_to_probe*`. */
export function tailName(tail: string): string {
  return `*${tail}*`;
}

export function isTailName(name: string): boolean {
  return name.startsWith('*');
}

export interface HeaderChange {
  header: string;
  /** The names (tails as `*tail*`) whose definition changed, was added or was removed. */
  names: string[];
  /** `#include` lines added or removed, as written. */
  includesAdded: string[];
  includesRemoved: string[];
  /** Changes no name carries (an `asm`, a `#pragma`, code or data emitted in every includer, an item nothing is found in): they reach every includer. */
  unnamed: string[];
  /** Macros whose top-level invocations changed: a unit that defines one itself expands them (X-macros). */
  invokes: string[];
  /** The header is a trace-event header and its events changed: the units that define CREATE_TRACE_POINTS instantiate them. */
  traceEvents: boolean;
}

function multiset(items: readonly Item[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const item of items) out.set(item.text, (out.get(item.text) ?? 0) + 1);
  return out;
}

function describe(item: Item, side: 'pre' | 'post'): string {
  const text = item.text.replace(/^.* :: /, '');
  return `${side === 'pre' ? 'removed' : 'changed'} at line ${item.line}: ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`;
}

/** What changed between a header's pre and post text, item by item. */
export function headerChange(header: string, pre: string, post: string): HeaderChange {
  const before = parseItems(pre);
  const after = parseItems(post);
  const preKeys = keyed(before);
  const postKeys = keyed(after);
  const names = new Set<string>();
  for (const name of new Set([...preKeys.keys(), ...postKeys.keys()])) {
    if ((preKeys.get(name) ?? []).join('\u0000') !== (postKeys.get(name) ?? []).join('\u0000')) names.add(name);
  }
  const preSet = multiset(before);
  const postSet = multiset(after);
  const change: HeaderChange = { header, names: [], includesAdded: [], includesRemoved: [], unnamed: [], invokes: [], traceEvents: false };
  const invokes = new Set<string>();
  const unnamed: { pre: Item[]; post: Item[] } = { pre: [], post: [] };
  const visit = (item: Item, side: 'pre' | 'post', other: Map<string, number>): void => {
    const left = other.get(item.text) ?? 0;
    if (left > 0) {
      other.set(item.text, left - 1);
      return;
    }
    if (item.kind === 'include' && item.include !== undefined) {
      (side === 'pre' ? change.includesRemoved : change.includesAdded).push(item.include);
      return;
    }
    for (const m of item.invokes) if (m !== 'asm') invokes.add(m);
    if (item.emits || (item.names.length === 0 && item.tails.length === 0 && !item.inert)) unnamed[side].push(item);
  };
  // Each side's items matched against the other's, one for one.
  const postLeft = new Map(postSet);
  for (const item of before) visit(item, 'pre', postLeft);
  const preLeft = new Map(preSet);
  for (const item of after) visit(item, 'post', preLeft);
  // A changed item is one left over on each side: named once, by its new text.
  const changedLines = new Set(unnamed.post.map((i) => i.line));
  change.unnamed = [...unnamed.post.map((i) => describe(i, 'post')), ...unnamed.pre.filter((i) => !changedLines.has(i.line)).map((i) => describe(i, 'pre'))];
  change.names = [...names].sort();
  change.invokes = [...invokes].sort();
  change.traceEvents = invokes.size > 0 && /#\s*include\s*<trace\/define_trace\.h>/.test(pre + post);
  return change;
}

/** Whether the identifier `id` may be a name a paste built around `tail`. */
export function tailMatches(id: string, tail: string): boolean {
  for (const run of segmentRuns(id)) if (run === tail) return true;
  return false;
}

/** The runs of `_`-separated parts of an identifier (`a_b_c`: a, a_b, a_b_c, b, b_c, c): the tails it matches. */
function* segmentRuns(id: string): Generator<string> {
  const parts = id.split('_');
  if (parts.length > 12) {
    yield id;
    return;
  }
  for (let i = 0; i < parts.length; i++) {
    let run = '';
    for (let j = i; j < parts.length; j++) {
      run = j === i ? (parts[j] ?? '') : `${run}_${parts[j] ?? ''}`;
      if (run) yield run;
    }
  }
}


/** A name's prefixes (`<ab…`) and suffixes (`>…yz`) of three characters or more, as paste keys. */
function* affixes(name: string): Generator<string> {
  for (let n = 3; n < name.length; n++) {
    yield `<${name.slice(0, n)}`;
    yield `>${name.slice(name.length - n)}`;
  }
}

/** The paste keys a text may hold, read without parsing it (a parameter taken for a literal only costs a parse). */
function pasteKeysOf(text: string): Set<string> {
  const keys = new Set<string>();
  for (const m of text.matchAll(/([\w$]+)\s*##|##\s*([\w$]+)/g)) {
    if (m[1]) keys.add(`<${m[1]}`);
    if (m[2]) keys.add(`>${m[2]}`);
  }
  return keys;
}

interface Paste {
  key: string;
  fragment: Fragment;
  item: Item;
}

/** One file the closure reads: its identifiers first, its items only when it names something changed. */
interface FileFacts {
  ids: Set<string>;
  text: string;
  pasteKeys: Set<string>;
  /** Identifier -> the items that mention it. */
  byId?: Map<string, Item[]>;
  pastes?: Paste[];
}

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
  const facts = cache.files;
  const factsOf = (file: string): FileFacts => {
    let f = facts.get(file);
    if (!f) {
      const text = stripComments(input.read(file));
      f = { ids: new Set(text.match(IDENTIFIERS) ?? []), text, pasteKeys: text.includes('##') ? pasteKeysOf(text) : new Set() };
      facts.set(file, f);
    }
    return f;
  };
  const parsed = (f: FileFacts): { byId: Map<string, Item[]>; pastes: Paste[] } => {
    if (!f.byId || !f.pastes) {
      f.byId = new Map();
      f.pastes = [];
      for (const item of parseItems(f.text)) {
        for (const id of item.mentions) {
          const list = f.byId.get(id);
          if (list) list.push(item);
          else f.byId.set(id, [item]);
        }
        for (const fragment of item.fragments) {
          const key = fragmentKey(fragment);
          if (key) f.pastes.push({ key, fragment, item });
        }
      }
    }
    return { byId: f.byId, pastes: f.pastes };
  };

  // Each changed name, with the header's own changed names it stands for (its roots).
  const roots = new Map<string, Set<string>>();
  const exact = new Set<string>();
  const tails = new Set<string>();
  // Prefix and suffix -> the exact changed names that have it, for pastes.
  const affixIndex = new Map<string, string[]>();
  let fresh: string[] = [];
  // A changed tag counts wherever its identifier is written (a macro may put `struct` in front).
  const tagsByIdent = new Map<string, string[]>();
  const addName = (name: string, from: Iterable<string>): void => {
    let set = roots.get(name);
    let grew = false;
    if (!set) {
      set = new Set();
      roots.set(name, set);
      if (isTailName(name)) {
        tails.add(name.slice(1, -1));
      } else {
        exact.add(name);
        const ident = identOf(name);
        if (ident !== name) tagsByIdent.set(ident, [...(tagsByIdent.get(ident) ?? []), name]);
        for (const a of affixes(ident)) {
          const list = affixIndex.get(a);
          if (list) list.push(name);
          else affixIndex.set(a, [name]);
        }
      }
      grew = true;
    }
    for (const r of from) {
      if (!set.has(r)) {
        set.add(r);
        grew = true;
      }
    }
    if (grew) fresh.push(name);
  };
  for (const name of change.names) addName(name, [name]);
  for (const [name, root] of input.seeds ?? []) addName(name, [root]);

  let everything: string | undefined = change.unnamed[0] ? `${change.header}: ${change.unnamed[0]}` : undefined;
  if (everything && change.unnamed.length > 1) everything = `${everything} (and ${change.unnamed.length - 1} more such change${change.unnamed.length > 2 ? 's' : ''})`;

  // The roots of the changed names among `ids` and of those `fragments` can paste; with
  // `rests`, a paste of one literal and one parameter counts only where the rest of the name
  // is among `ids` too (see `fragmentRest`).
  const named = (ids: Set<string> | readonly string[], fragments: readonly Fragment[], rests: boolean): Set<string> => {
    const hit = new Set<string>();
    const consider = (name: string): void => {
      for (const r of roots.get(name) ?? []) hit.add(r);
    };
    for (const id of ids) {
      if (exact.has(id)) consider(id);
      const ident = identOf(id);
      for (const tag of tagsByIdent.get(ident) ?? []) consider(tag);
      if (tails.size > 0) for (const run of segmentRuns(ident)) if (tails.has(run)) consider(tailName(run));
    }
    for (const f of fragments) {
      const key = fragmentKey(f);
      for (const name of key ? (affixIndex.get(key) ?? []) : []) {
        if (!fragmentMatches(f, identOf(name))) continue;
        const rest = fragmentRest(f, identOf(name));
        if (rest === undefined || (rests && (Array.isArray(ids) ? ids.includes(rest) : (ids as Set<string>).has(rest)))) consider(name);
      }
    }
    return hit;
  };

  // Items of other files that emit code and use a changed name reach every unit including that file.
  const emitting = new Map<string, Set<string>>();

  let truncated = false;
  if (!everything) {
    while (fresh.length > 0 && !truncated) {
      const batchExact = fresh.filter((n) => !isTailName(n));
      // Identifiers to look for in the files: a name, or a tag's identifier.
      const batchIdents = new Set(batchExact.map(identOf));
      const batchTails = new Set(fresh.filter(isTailName).map((n) => n.slice(1, -1)));
      const batchAffixes = new Map<string, string[]>();
      for (const n of batchExact) {
        for (const a of affixes(identOf(n))) {
          const list = batchAffixes.get(a);
          if (list) list.push(n);
          else batchAffixes.set(a, [n]);
        }
      }
      fresh = [];
      for (const file of input.files) {
        if (roots.size > limit) {
          truncated = true;
          break;
        }
        const f = factsOf(file);
        const hitIds: string[] = [];
        if (batchIdents.size < f.ids.size) {
          for (const name of batchIdents) if (f.ids.has(name)) hitIds.push(name);
        } else {
          for (const id of f.ids) if (batchIdents.has(id)) hitIds.push(id);
        }
        if (batchTails.size > 0) {
          for (const id of f.ids) {
            for (const run of segmentRuns(id)) {
              if (batchTails.has(run)) {
                hitIds.push(id);
                break;
              }
            }
          }
        }
        let pasting = false;
        for (const key of f.pasteKeys) if (batchAffixes.has(key)) pasting = true;
        if (hitIds.length === 0 && !pasting) continue;
        const { byId, pastes } = parsed(f);
        const affected = new Set<Item>();
        for (const id of hitIds) {
          for (const form of [id, `struct ${id}`, `union ${id}`, `enum ${id}`]) for (const item of byId.get(form) ?? []) affected.add(item);
        }
        for (const p of pastes) {
          for (const name of batchAffixes.get(p.key) ?? []) {
            if (!fragmentMatches(p.fragment, identOf(name))) continue;
            const rest = fragmentRest(p.fragment, identOf(name));
            // The rest, wherever it is written, may build the name through this paste.
            if (rest !== undefined) addName(rest, roots.get(name) ?? []);
            else affected.add(p.item);
          }
        }
        for (const item of affected) {
          // The roots of every changed name it mentions, not only this round's.
          const all = named(item.mentions, item.fragments, false);
          if (all.size === 0) continue;
          for (const n of item.names) addName(n, all);
          for (const t of item.tails) addName(tailName(t), all);
          if (item.emits) {
            const set = emitting.get(file) ?? new Set<string>();
            for (const r of all) set.add(r);
            emitting.set(file, set);
          }
        }
      }
    }
  }

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
    const why = named(u.ids, u.fragments, true);
    for (const macro of change.invokes) if (defined.has(macro)) why.add(`${macro} invocations (the unit defines ${macro})`);
    if (change.traceEvents && defined.has('CREATE_TRACE_POINTS')) why.add('its trace events (the unit defines CREATE_TRACE_POINTS)');
    reach(unit, why);
  }
  for (const [file, why] of emitting) {
    for (const unit of input.unitsIncluding?.(file) ?? input.units) reach(unit, why);
  }
  if (truncated) {
    everything = `what ${change.header} changes is used by more than ${limit} names of the headers its including units see`;
    // Every unit counts; those the names found so far reach keep them, for the message.
    for (const unit of input.units) if (!unitsReached.has(unit)) reach(unit, [everything]);
  }
  const units = new Map([...unitsReached].map(([u, why]) => [u, [...why].sort()] as [string, string[]]).sort((a, b) => a[0].localeCompare(b[0])));
  return { units, ...(everything ? { everything } : {}), closureSize: roots.size };
}
