/**
 * The names one top-level C declaration defines, read from its tokens: functions, variables,
 * typedefs, struct/union/enum tags and enumerators, and the name parts a macro invocation may
 * paste. Split out of header-items.ts because C declarator syntax (attributes, function
 * pointers, bodies after tags) is most of the parsing and none of the item bookkeeping.
 */
import { IDENTIFIER, isIdentifier, KEYWORDS } from './c-tokens.js';

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
export function declarationNames(tokens: readonly string[]): Names {
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
export function opensFunctionBody(pending: readonly string[]): boolean {
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
