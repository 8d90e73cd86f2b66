// Layouts read from gcc's DWARF must agree with what the compiler itself says:
// offsetof/sizeof and the bits a bit-field assignment sets, printed by a compiled helper.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compareLayouts, readTypeLayouts, type TypeLayouts } from './index.js';
import { compileDwarf, compileDwo, runC } from './test-helpers.js';

const TYPES = `
struct b { int x; };
struct a {
  struct b *pb;
  unsigned int arr[4];
  unsigned f1:3, f2:5;
  int g:7;
  unsigned long long big:40;
  union { int u1; long u2; };
  struct { char c; short s; } named;
  char tail;
  struct { int deep1; union { char dc; int di; }; };
};
typedef struct { int q; char r[3]; } anon_t;
union un { char c[5]; int i; double d; };
enum e { E_NEG = -3, E_ZERO = 0, E_BIG = 100000 };
enum wide { W_A = 1, W_HUGE = 0x100000000 };
enum uwide { U_SMALL = 1, U_MAX = 0xffffffffffffffffULL };
struct use_all { struct a a; anon_t t; union un u; enum e e; enum wide w; enum uwide uw; };
`;
const USE = 'int touch(struct use_all *p) { return p->a.pb->x + p->t.q + p->u.i + p->e + (int)p->w + (int)p->uw; }\n';

/** Members whose position the helper prints: [type key for the test, C type, member designator]. */
const MEMBERS: [string, string, string][] = [
  ['struct a', 'struct a', 'pb'],
  ['struct a', 'struct a', 'arr'],
  ['struct a', 'struct a', 'u1'],
  ['struct a', 'struct a', 'u2'],
  ['struct a', 'struct a', 'named'],
  ['struct a', 'struct a', 'named.s'],
  ['struct a', 'struct a', 'tail'],
  ['struct a', 'struct a', 'deep1'],
  ['struct a', 'struct a', 'dc'],
  ['struct a', 'struct a', 'di'],
  ['anon_t', 'anon_t', 'r'],
  ['union un', 'union un', 'd'],
  ['struct use_all', 'struct use_all', 't'],
  ['struct use_all', 'struct use_all', 'uw'],
];
const BITFIELDS: [string, string, string][] = [
  ['struct a', 'struct a', 'f1'],
  ['struct a', 'struct a', 'f2'],
  ['struct a', 'struct a', 'g'],
  ['struct a', 'struct a', 'big'],
];
const SIZES: [string, string][] = [
  ['struct a', 'struct a'],
  ['struct b', 'struct b'],
  ['anon_t', 'anon_t'],
  ['union un', 'union un'],
  ['struct use_all', 'struct use_all'],
  ['enum wide', 'enum wide'],
];
const ENUMERATORS = ['E_NEG', 'E_ZERO', 'E_BIG', 'W_A', 'W_HUGE', 'U_SMALL', 'U_MAX'];

/** What the compiler says, as `key|member|...` lines. */
const truth = new Map(
  runC(`#include <stdio.h>
#include <stddef.h>
#include <string.h>
${TYPES}
static void bits(const char *key, const char *m, const unsigned char *p, size_t n) {
  int first = -1, count = 0;
  for (size_t i = 0; i < n * 8; i++) if (p[i / 8] >> (i % 8) & 1) { if (first < 0) first = (int)i; count++; }
  printf("%s|%s|%d|%d\\n", key, m, first, count);
}
int main(void) {
${MEMBERS.map(([k, t, m]) => `  printf("%s|%s|%zu\\n", "${k}", "${m}", offsetof(${t}, ${m}));`).join('\n')}
${BITFIELDS.map(([k, t, m]) => `  { ${t} v; memset(&v, 0, sizeof v); v.${m} = -1; bits("${k}", "${m}", (const unsigned char *)&v, sizeof v); }`).join('\n')}
${SIZES.map(([k, t]) => `  printf("%s|size|%zu\\n", "${k}", sizeof(${t}));`).join('\n')}
${ENUMERATORS.map((e) => `  printf("enum|${e}|%s\\n", ${e} < 0 ? "-" : "+"); printf("value|${e}|%llu\\n", ${e} < 0 ? 0ULL - (unsigned long long)${e} : (unsigned long long)${e});`).join('\n')}
  return 0;
}
`)
    .trim()
    .split('\n')
    .map((line) => {
      const parts = line.split('|');
      return [`${parts[0]}|${parts[1]}`, parts.slice(2)] as const;
    }),
);

function expected(key: string, what: string): string[] {
  const v = truth.get(`${key}|${what}`);
  assert.ok(v !== undefined, `helper printed ${key}|${what}`);
  return v;
}

/**
 * Find a member by a C designator (`named.s`, or `u1` inside an anonymous union),
 * adding offsets down through named and unnamed members: the way C resolves it.
 */
function locate(layouts: TypeLayouts, key: string, designator: string): { bit: number; bitSize?: number } | undefined {
  const layout = layouts.types.get(key);
  assert.ok(layout !== undefined, `layout for ${key}`);
  const [head, ...rest] = designator.split('.');
  for (const m of layout.members) {
    const base = m.offset * 8 + (m.bitOffset ?? 0);
    if (m.name === head) {
      if (rest.length === 0) return { bit: base, bitSize: m.bitSize };
      const inner = locate(layouts, m.type, rest.join('.'));
      return inner && { ...inner, bit: base + inner.bit };
    }
    if (m.name === '') {
      const inner = locate(layouts, m.type, designator);
      if (inner !== undefined) return { ...inner, bit: base + inner.bit };
    }
  }
  return undefined;
}

function checkAgainstCompiler(layouts: TypeLayouts): void {
  for (const [key, , m] of MEMBERS) {
    const found = locate(layouts, key, m);
    assert.ok(found !== undefined, `${key}: member ${m} found`);
    assert.equal(found.bit, Number(expected(key, m)[0]) * 8, `${key}: offset of ${m}`);
  }
  for (const [key, , m] of BITFIELDS) {
    const found = locate(layouts, key, m);
    const [first, count] = expected(key, m);
    assert.ok(found !== undefined, `${key}: bit-field ${m} found`);
    assert.equal(found.bit, Number(first), `${key}: first bit of ${m}`);
    assert.equal(found.bitSize, Number(count), `${key}: width of ${m}`);
  }
  for (const [key] of SIZES) {
    assert.equal(layouts.types.get(key)?.size, Number(expected(key, 'size')[0]), `sizeof(${key})`);
  }
  const values = new Map<string, bigint>();
  for (const l of layouts.types.values()) for (const e of l.enumerators) values.set(e.name, e.value);
  for (const e of ENUMERATORS) {
    const magnitude = BigInt(expected('value', e)[0]!);
    const want = expected('enum', e)[0] === '-' ? -magnitude : magnitude;
    assert.equal(values.get(e), want, `value of ${e}`);
  }
}

describe('layouts agree with the compiler', () => {
  const dwarf5 = readTypeLayouts(compileDwarf(TYPES + USE));

  test('DWARF 5 (gcc 12 default): offsets, bit-fields, sizes, enumerator values', () => {
    checkAgainstCompiler(dwarf5);
  });

  test('DWARF 4 (DW_AT_bit_offset bit-fields): same answers, and no layout differs from DWARF 5', () => {
    const dwarf4 = readTypeLayouts(compileDwarf(TYPES + USE, ['-O2', '-gdwarf-4']));
    checkAgainstCompiler(dwarf4);
    assert.deepEqual(compareLayouts(dwarf5, dwarf4), []);
    assert.equal(dwarf4.types.size, dwarf5.types.size);
  });

  test('split DWARF (.dwo: strx forms through .debug_str_offsets) reads the same', () => {
    const split = readTypeLayouts(compileDwo(TYPES + USE));
    checkAgainstCompiler(split);
    assert.deepEqual(compareLayouts(dwarf5, split), []);
  });

  test('type units (-fdebug-types-section, DW_FORM_ref_sig8) read the same', () => {
    const units = readTypeLayouts(compileDwarf(TYPES + USE, ['-O2', '-fdebug-types-section']));
    checkAgainstCompiler(units);
    assert.deepEqual(compareLayouts(dwarf5, units), []);
    assert.deepEqual(units.conflicts, []);
    // Unnamed stubs that stand for type-unit types (usage.test.ts has some) are keyed as those types.
    for (const key of units.declarations.keys()) assert.ok(units.types.has(key), `stub key ${key} names a defined type`);
  });

  test('-O0 code reads the same', () => {
    assert.deepEqual(compareLayouts(dwarf5, readTypeLayouts(compileDwarf(TYPES + USE, ['-O0']))), []);
  });
});

describe('layout shape', () => {
  const layouts = readTypeLayouts(compileDwarf(TYPES + USE));

  test('struct members in order, with canonical types and bit-field positions', () => {
    const a = layouts.types.get('struct a');
    assert.ok(a);
    assert.equal(a.kind, 'struct');
    assert.equal(a.name, 'a');
    assert.deepEqual(
      a.members.map((m) => [m.name, m.type]),
      [
        ['pb', 'struct b *'],
        ['arr', 'unsigned int[4]'],
        ['f1', 'unsigned int'],
        ['f2', 'unsigned int'],
        ['g', 'int'],
        ['big', 'long long unsigned int'],
        ['', 'union a.<anon1>'],
        ['named', 'struct a.named'],
        ['tail', 'char'],
        ['', 'struct a.<anon2>'],
      ],
    );
    const f2 = a.members[3]!;
    assert.deepEqual([f2.offset, f2.bitOffset, f2.bitSize], [24, 3, 5]);
    assert.equal(a.members[0]!.bitSize, undefined, 'ordinary members carry no bit-field data');
  });

  test('anonymous types are keyed by their context: typedef, member path, nesting', () => {
    assert.equal(layouts.types.get('anon_t')?.kind, 'struct');
    assert.equal(layouts.types.get('anon_t')?.name, undefined);
    assert.equal(layouts.types.get('union a.<anon1>')?.kind, 'union');
    assert.equal(layouts.types.get('struct a.named')?.kind, 'struct');
    assert.deepEqual(
      layouts.types.get('struct a.<anon2>')?.members.map((m) => [m.name, m.type]),
      [
        ['deep1', 'int'],
        ['', 'union a.<anon2>.<anon1>'],
      ],
    );
    assert.equal(layouts.types.get('union a.<anon2>.<anon1>')?.size, 4);
  });

  test('unions put every member at offset 0', () => {
    const u = layouts.types.get('union un');
    assert.ok(u);
    assert.equal(u.kind, 'union');
    assert.deepEqual(
      u.members.map((m) => [m.name, m.offset, m.type]),
      [
        ['c', 0, 'char[5]'],
        ['i', 0, 'int'],
        ['d', 0, 'double'],
      ],
    );
  });

  test('enums: size, underlying type and signed values in order', () => {
    const e = layouts.types.get('enum e');
    assert.ok(e);
    assert.equal(e.size, 4);
    assert.equal(e.target, 'int');
    assert.deepEqual(
      e.enumerators.map((x) => [x.name, x.value]),
      [
        ['E_NEG', -3n],
        ['E_ZERO', 0n],
        ['E_BIG', 100000n],
      ],
    );
    assert.equal(layouts.types.get('enum uwide')?.enumerators[1]?.value, 0xffffffffffffffffn);
  });

  test('a definition seen in every unit is kept once; declarations are kept apart', () => {
    const two = readTypeLayouts(
      compileDwarf([
        'struct shared { int a; }; struct opaque; int f(struct shared *s, struct opaque *o) { return s->a + (o != 0); }\n',
        'struct shared { int a; }; int g(struct shared *s) { return s->a; }\n',
      ]),
    );
    assert.equal(two.types.get('struct shared')?.unit, 'cu0.c');
    assert.deepEqual(two.conflicts, []);
    assert.equal(two.types.has('struct opaque'), false);
    assert.deepEqual(two.declarations.get('struct opaque'), { key: 'struct opaque', kind: 'struct', name: 'opaque', units: ['cu0.c'] });
  });

  test('the same type defined differently in two units is reported', () => {
    const two = readTypeLayouts(
      compileDwarf([
        'struct clash { int a; int b; }; int f(struct clash *s) { return s->a; }\n',
        'struct clash { int a; long b; }; int g(struct clash *s) { return s->a; }\n',
      ]),
    );
    assert.equal(two.conflicts.length, 1);
    const c = two.conflicts[0]!;
    assert.equal(c.key, 'struct clash');
    assert.deepEqual(c.units, ['cu0.c', 'cu1.c']);
    assert.ok(c.differences.includes('struct clash: size 8 -> 16'), c.differences.join('; '));
    assert.ok(c.differences.includes("struct clash: member 'b' offset 0x4 -> 0x8"), c.differences.join('; '));
  });

  test('more anonymous contexts: file-scope anonymous enum, variable, function-local types, typedefs', () => {
    const l = readTypeLayouts(
      compileDwarf(`
enum { ANON_A = 1, ANON_B };
static struct { int hits; } counters;
typedef unsigned int myint;
typedef struct named_s { myint v; } named_t;
int bump(named_t *n) {
  struct local { int l; } loc = { n->v };
  counters.hits++;
  return ANON_B + loc.l + counters.hits;
}
`),
    );
    assert.deepEqual(
      l.types.get('enum {ANON_A, ...}')?.enumerators.map((e) => e.name),
      ['ANON_A', 'ANON_B'],
    );
    assert.equal(l.types.get('struct <var counters>')?.members[0]?.name, 'hits');
    assert.equal(l.types.get('bump::struct local')?.size, 4);
    assert.deepEqual(
      [l.types.get('named_t')?.kind, l.types.get('named_t')?.target, l.types.get('named_t')?.size],
      ['typedef', 'struct named_s', 4],
    );
    assert.deepEqual([l.types.get('myint')?.target, l.types.get('struct named_s')?.members[0]?.type], ['unsigned int', 'myint']);
  });
});
