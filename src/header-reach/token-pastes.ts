/**
 * Names that `##` token pasting may build, which no text writes out whole: the paste chains
 * of a macro body (fragments), the name parts a macro invocation passes in (tails), and how a
 * written identifier or a changed name is matched against either. The header reach follows
 * them so that a name built by a paste is not missed (see docs/create.md, "Header reach").
 */
import { IDENTIFIER } from './c-tokens.js';

/**
 * A `##` paste chain of a macro body, operand by operand: a literal (`dev_`), or `null` for
 * a macro parameter. `dev_##accessor_name` is `['dev_', null]`.
 */
export interface Fragment {
  operands: (string | null)[];
}

/** The `##` paste chains of a macro body that have a literal operand. */
export function pasteFragments(body: readonly string[], params: ReadonlySet<string>): Fragment[] {
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
export function fragmentKey(f: Fragment): string | undefined {
  const first = f.operands[0];
  const last = f.operands.at(-1);
  const usable = (t: string | null | undefined): t is string => typeof t === 'string' && t.length >= 3 && /[A-Za-z].*[A-Za-z]/.test(t);
  if (usable(first)) return `<${first}`;
  if (usable(last)) return `>${last}`;
  return undefined;
}

/** Whether the paste can build `name`: its literals in order, anything for the parameters. */
export function fragmentMatches(f: Fragment, name: string): boolean {
  const source = f.operands.map((o) => (o === null ? '[\\w$]*' : o.replace(/\$/g, '\\$'))).join('');
  return new RegExp(`^${source}$`).test(name);
}

/**
 * For a paste of one literal and one parameter (`X86_FEATURE_##name`), the rest of `name`
 * the argument must be (`ZEN1`); a use that builds the name writes that rest out.
 */
export function fragmentRest(f: Fragment, name: string): string | undefined {
  if (f.operands.length !== 2) return undefined;
  const [a, b] = f.operands;
  const rest = typeof a === 'string' && b === null ? name.slice(a.length) : a === null && typeof b === 'string' ? name.slice(0, name.length - b.length) : undefined;
  return rest !== undefined && IDENTIFIER.test(rest) ? rest : undefined;
}

/** How a tail is written among names: `*ready_to_probe*`. */
export function tailName(tail: string): string {
  return `*${tail}*`;
}

/** Whether a changed name is a tail (`*ready_to_probe*`) rather than a whole name. */
export function isTailName(name: string): boolean {
  return name.startsWith('*');
}

/** Whether the identifier `id` may be a name a paste built around `tail`. */
export function tailMatches(id: string, tail: string): boolean {
  for (const run of segmentRuns(id)) if (run === tail) return true;
  return false;
}

/** The runs of `_`-separated parts of an identifier (`a_b_c`: a, a_b, a_b_c, b, b_c, c): the tails it matches. */
export function* segmentRuns(id: string): Generator<string> {
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
export function* affixes(name: string): Generator<string> {
  for (let n = 3; n < name.length; n++) {
    yield `<${name.slice(0, n)}`;
    yield `>${name.slice(name.length - n)}`;
  }
}

/** The paste keys a text may hold, read without parsing it (a parameter taken for a literal only costs a parse). */
export function pasteKeysOf(text: string): Set<string> {
  const keys = new Set<string>();
  for (const m of text.matchAll(/([\w$]+)\s*##|##\s*([\w$]+)/g)) {
    if (m[1]) keys.add(`<${m[1]}`);
    if (m[2]) keys.add(`>${m[2]}`);
  }
  return keys;
}
