/**
 * The lexical reading of C text the header reach works on: comments dropped, continuation
 * lines joined, tokens split out. Not a C front end: whitespace is normalised away so that a
 * change in layout or comments is no change (see header-items.ts).
 */

/** C's keywords and GNU C's spellings of them: never a name an item defines. */
export const KEYWORDS = new Set(
  (
    'auto break case char const continue default do double else enum extern float for goto if inline int long register restrict return short ' +
    'signed sizeof static struct switch typedef union unsigned void volatile while _Bool _Complex _Alignas _Alignof _Atomic ' +
    '_Generic _Noreturn _Thread_local __attribute__ __attribute __asm__ __asm asm __inline__ __inline __volatile__ __volatile __restrict ' +
    '__restrict__ typeof __typeof__ __typeof __extension__ __signed__ __const__ __const __auto_type'
  ).split(' '),
);

const TOKEN = /[A-Za-z_$][\w$]*|\.?\d(?:[\w.]|[eEpP][+-])*|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|##|->|<<=|>>=|\.\.\.|[-+*/%&|^<>=!]=|<<|>>|&&|\|\||\+\+|--|\S/g;
/** A whole token that is an identifier (or a keyword). */
export const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
/** Every identifier in a text: a global pattern for `match` and `matchAll`. */
export const IDENTIFIERS = /[A-Za-z_$][\w$]*/g;

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

/** The tokens of a C text, comments already removed: identifiers, numbers, literals, punctuators. */
export function tokenize(text: string): string[] {
  return text.match(TOKEN) ?? [];
}

/** The identifiers of a text, after comments are removed. */
export function identifiersOf(text: string): Set<string> {
  return new Set(stripComments(text).match(IDENTIFIERS) ?? []);
}

/** An identifier that is no keyword: something a declaration may name. */
export function isIdentifier(token: string | undefined): token is string {
  return token !== undefined && IDENTIFIER.test(token) && !KEYWORDS.has(token);
}

/** The tokens of a text joined by single spaces: two texts that differ only in layout compare equal. */
export function normalize(text: string): string {
  return tokenize(text).join(' ');
}
