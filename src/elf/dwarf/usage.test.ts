// Which types each function uses.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readDwarf } from './index.js';
import { compileDwarf } from './test-helpers.js';

const SOURCE = `
struct b { int x; };
struct a { struct b *pb; int y; };
struct c { int c1, c2; };
struct d { long d1; };
struct e { int e1; };
struct g { struct g *self; struct b *bb; };
enum mode { MODE_X = 5, MODE_Y };
typedef struct a a_t;
extern int ext(void *);

int takes_a(struct a *p) { return p->y; }
int via_typedef(a_t *p) { return p->y + 1; }

static inline __attribute__((always_inline)) int helper_c(int v) {
  struct c tmp = { v, v + 1 };
  return ext(&tmp) + tmp.c2;
}
int only_inlines(int v) { return helper_c(v) + 1; }

int touches_d(struct d *p) { return (int)p->d1; }
int no_d(int x) { return ext(0) + x + MODE_Y; }

/* Inlined into call_clone and also emitted out of line (its address is taken): the
   out-of-line copy is a concrete DIE with only DW_AT_abstract_origin. */
static int clone_me(struct e *p) { return p->e1 + 7; }
int call_clone(struct e *p) { return clone_me(p); }
int (*clone_ptr)(struct e *) = clone_me;

int cyclic(struct g *p) { return p->self == p; }
`;

describe('per-function type use', () => {
  const dwarf = readDwarf(compileDwarf(SOURCE));
  const types = (fn: string): string[] => {
    const use = dwarf.functions.get(fn);
    assert.ok(use, `function ${fn} found`);
    return [...use.types].sort();
  };

  test('a function taking struct a * uses struct a and, through its pointer member, struct b', () => {
    assert.deepEqual(types('takes_a'), ['struct a', 'struct b']);
  });

  test('through a typedef: the typedef, the struct, and what it points to', () => {
    assert.deepEqual(types('via_typedef'), ['a_t', 'struct a', 'struct b']);
  });

  test('a function that only inlines a helper using struct c uses struct c', () => {
    assert.deepEqual(types('only_inlines'), ['struct c']);
  });

  test('a function not touching struct d does not list it; one that does, does', () => {
    assert.deepEqual(types('touches_d'), ['struct d']);
    assert.equal(dwarf.functions.get('no_d')?.types.has('struct d'), false);
    assert.deepEqual(types('no_d'), []);
  });

  test('an inlined static and its out-of-line copy both lead to the static\'s types', () => {
    assert.deepEqual(types('call_clone'), ['struct e']);
    assert.deepEqual(types('clone_me'), ['struct e']);
  });

  test('pointer cycles terminate and keep everything reachable', () => {
    assert.deepEqual(types('cyclic'), ['struct b', 'struct g']);
  });

  test('enums: every enum of the unit is in scope of every function (constants leave no trace in DWARF)', () => {
    for (const fn of ['no_d', 'takes_a', 'only_inlines']) {
      assert.deepEqual([...(dwarf.functions.get(fn)?.enumsInScope ?? [])], ['enum mode'], fn);
    }
  });

  test('every key a function uses has a layout or a declaration', () => {
    for (const use of dwarf.functions.values()) {
      for (const k of use.types) assert.ok(dwarf.layouts.types.has(k) || dwarf.layouts.declarations.has(k), `${use.name}: ${k}`);
    }
  });

  test('functions are listed by name with their unit; inline-only helpers without code are not', () => {
    const names = [...dwarf.functions.keys()].sort();
    assert.deepEqual(names, ['call_clone', 'clone_me', 'cyclic', 'no_d', 'only_inlines', 'takes_a', 'touches_d', 'via_typedef']);
    assert.deepEqual(dwarf.functions.get('takes_a')?.units, ['cu0.c']);
    assert.deepEqual(dwarf.functions.get('takes_a')?.linkageNames, []);
  });

  test('the KeySet answers has() and size like a Set', () => {
    const use = dwarf.functions.get('takes_a');
    assert.ok(use);
    assert.equal(use.types.size, 2);
    assert.equal(use.types.has('struct b'), true);
    assert.equal(use.types.has('struct c'), false);
    assert.equal(use.types.has('no such key'), false);
    const seen: string[] = [];
    use.types.forEach((k) => seen.push(k));
    assert.deepEqual(seen.sort(), ['struct a', 'struct b']);
  });
});

describe('type use across units and through declarations', () => {
  test('a declaration leads to the definition another unit has (struct device passed through)', () => {
    const dwarf = readDwarf(
      compileDwarf([
        'struct device; extern int put(struct device *); int pass(struct device *d) { return put(d); }\n',
        'struct bus { int n; }; struct device { struct bus *bus; long id; }; int put(struct device *d) { return d->bus->n; }\n',
      ]),
    );
    assert.deepEqual([...(dwarf.functions.get('pass')?.types ?? [])].sort(), ['struct bus', 'struct device']);
    assert.deepEqual(dwarf.functions.get('pass')?.units, ['cu0.c']);
  });

  test('with type units (DW_FORM_ref_sig8) the same types are found', () => {
    const dwarf = readDwarf(compileDwarf(SOURCE, ['-O2', '-fdebug-types-section']));
    assert.deepEqual([...(dwarf.functions.get('takes_a')?.types ?? [])].sort(), ['struct a', 'struct b']);
    assert.deepEqual([...(dwarf.functions.get('only_inlines')?.types ?? [])].sort(), ['struct c']);
    // typedef struct a a_t makes gcc emit an unnamed stub with DW_AT_signature for struct a.
    assert.deepEqual([...(dwarf.functions.get('via_typedef')?.types ?? [])].sort(), ['a_t', 'struct a', 'struct b']);
    assert.deepEqual([...dwarf.layouts.declarations.keys()], ['struct a']);
    assert.equal(dwarf.layouts.types.get('a_t')?.target, 'struct a');
  });

  test('at -O0 (no inlining) a caller of a helper does not use the helper\'s types', () => {
    const dwarf = readDwarf(compileDwarf(SOURCE.replace('__attribute__((always_inline))', ''), ['-O0']));
    assert.deepEqual([...(dwarf.functions.get('only_inlines')?.types ?? [])], []);
    assert.deepEqual([...(dwarf.functions.get('helper_c')?.types ?? [])], ['struct c']);
  });
});
