// Canonical type spellings: what a C programmer would write for the abstract declarator.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readTypeLayouts } from './index.js';
import { compileDwarf } from './test-helpers.js';

const SOURCE = `
struct n { int x; };
typedef struct n n_t;
struct names {
  struct n *p;
  unsigned int arr[4];
  char *const cp;
  const char *pc;
  int (*pa)[4];
  char *ap[2];
  void (*fn)(struct n *, int);
  int (*vfn)(const char *, ...);
  int (*nofn)(void);
  int m[2][3];
  volatile const int cv;
  const struct n *const *cpp;
  void *vp;
  n_t *tp;
  _Atomic int at;
  char *restrict rp;
  int zero[0];
  int flex[];
};
int use(struct names *s) { return s->p->x + s->cv; }
`;

test('member types are spelled as C abstract declarators', () => {
  const names = readTypeLayouts(compileDwarf(SOURCE)).types.get('struct names');
  assert.ok(names);
  assert.deepEqual(Object.fromEntries(names.members.map((m) => [m.name, m.type])), {
    p: 'struct n *',
    arr: 'unsigned int[4]',
    cp: 'char *const',
    pc: 'const char *',
    pa: 'int (*)[4]',
    ap: 'char *[2]',
    fn: 'void (*)(struct n *, int)',
    vfn: 'int (*)(const char *, ...)',
    nofn: 'int (*)(void)',
    m: 'int[2][3]',
    cv: 'const volatile int',
    cpp: 'const struct n *const *',
    vp: 'void *',
    tp: 'n_t *',
    at: '_Atomic int',
    rp: 'char *restrict',
    zero: 'int[0]',
    flex: 'int[]',
  });
});

test('spellings do not depend on the DWARF version', () => {
  // DW_TAG_atomic_type is new in DWARF 5: gcc drops _Atomic from DWARF 4, so skip that member.
  const spell = (flags: string[]) =>
    readTypeLayouts(compileDwarf(SOURCE, flags))
      .types.get('struct names')
      ?.members.filter((m) => m.name !== 'at')
      .map((m) => `${m.name}: ${m.type}`);
  const five = spell(['-O2']);
  assert.equal(five?.length, 17);
  assert.deepEqual(spell(['-O2', '-gdwarf-4']), five);
});

test('a variable-length array member (GNU C, struct local to a function) is spelled [*], its size unknown', () => {
  const layouts = readTypeLayouts(
    compileDwarf('extern void take(void *);\nint vla(int n) { struct v { int len; char data[n]; } s; s.len = n; take(&s); return s.len; }\n', ['-O0']),
  );
  const v = layouts.types.get('vla::struct v');
  assert.ok(v, [...layouts.types.keys()].join(', '));
  assert.deepEqual(
    v.members.map((m) => [m.name, m.type]),
    [
      ['len', 'int'],
      ['data', 'char[*]'],
    ],
  );
  assert.equal(v.size, undefined);
});
