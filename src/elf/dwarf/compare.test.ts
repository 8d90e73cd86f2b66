// Pre/post pairs compiled from C: each layout change must be reported, naming the type
// and the member or enumerator; changes that leave layouts alone must report nothing.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compareLayouts, compareTypeLayout, readDwarf, readTypeLayouts, type LayoutChange, type TypeLayout, type TypeLayouts } from './index.js';
import { compileDwarf } from './test-helpers.js';

function diff(pre: string, post: string, keys?: string[]): LayoutChange[] {
  return compareLayouts(readTypeLayouts(compileDwarf(pre)), readTypeLayouts(compileDwarf(post)), keys);
}
const messages = (changes: LayoutChange[]) => changes.map((c) => c.message).sort();

describe('struct changes', () => {
  const user = 'long f(struct device *d) { return d->links.next != 0; }\n';
  const list = 'struct list_head { struct list_head *next, *prev; };\n';

  test('a member inserted in the middle: size, the shifted members, the new member', () => {
    const changes = diff(
      `${list}struct device { void *parent; struct list_head links; int id; };\n${user}`,
      `${list}struct device { void *parent; unsigned long flags; struct list_head links; int id; };\n${user}`,
    );
    assert.deepEqual(messages(changes), [
      'struct device: member \'flags\' added at offset 0x8',
      "struct device: member 'id' offset 0x18 -> 0x20",
      "struct device: member 'links' offset 0x8 -> 0x10",
      'struct device: size 32 -> 40',
    ]);
    const moved = changes.find((c) => c.member === 'links');
    assert.deepEqual([moved?.change, moved?.key, moved?.before, moved?.after, moved?.shiftsExisting], ['member moved', 'struct device', '0x8', '0x10', true]);
  });

  test('a member appended at the end: a size change (live objects are smaller) and nothing moved', () => {
    const changes = diff(`${list}struct device { void *parent; struct list_head links; };\n${user}`, `${list}struct device { void *parent; struct list_head links; long tail; };\n${user}`);
    assert.deepEqual(messages(changes), ["struct device: member 'tail' added at offset 0x18", 'struct device: size 24 -> 32']);
    assert.ok(changes.every((c) => c.shiftsExisting));
  });

  test('a member removed, a member type changed, a bit-field moved', () => {
    const changes = diff(
      'struct s { int a; int gone; unsigned f:3, g:2; int t; };\nint f(struct s *p) { return p->a + p->g + p->t; }\n',
      'struct s { int a; unsigned f:4, g:2; long t; };\nint f(struct s *p) { return p->a + p->g + p->t; }\n',
    );
    assert.deepEqual(messages(changes), [
      "struct s: member 'f' offset 0x8 bit 0 width 3 -> 0x4 bit 0 width 4",
      "struct s: member 'g' offset 0x8 bit 3 width 2 -> 0x4 bit 4 width 2",
      "struct s: member 'gone' removed (was at offset 0x4)",
      "struct s: member 't' offset 0xc -> 0x8",
      "struct s: member 't' type int -> long int",
    ]);
    // Both are 16 bytes: no size change.
    assert.equal(changes.filter((c) => c.change === 'size changed').length, 0);
  });
});

describe('enum changes', () => {
  const use = 'int f(enum cpuhp_state s) { return s == CPUHP_ONLINE; }\n';

  test('an enumerator removed: the enum, the removed name, every shifted value', () => {
    const changes = diff(
      `enum cpuhp_state { CPUHP_INVALID = -1, CPUHP_OFFLINE = 0, CPUHP_PADATA_DEAD, CPUHP_NET_DEV_DEAD, CPUHP_ONLINE };\n${use}`,
      `enum cpuhp_state { CPUHP_INVALID = -1, CPUHP_OFFLINE = 0, CPUHP_NET_DEV_DEAD, CPUHP_ONLINE };\n${use}`,
    );
    assert.deepEqual(messages(changes), [
      'enum cpuhp_state: enumerator CPUHP_NET_DEV_DEAD value 2 -> 1',
      'enum cpuhp_state: enumerator CPUHP_ONLINE value 3 -> 2',
      'enum cpuhp_state: enumerator CPUHP_PADATA_DEAD removed',
    ]);
    assert.ok(changes.every((c) => c.key === 'enum cpuhp_state' && c.shiftsExisting && c.enumerator !== undefined));
  });

  test('an enumerator appended at the end: reported, marked as not shifting anything', () => {
    const changes = diff(
      `enum cpuhp_state { CPUHP_OFFLINE, CPUHP_ONLINE };\n${use}`,
      `enum cpuhp_state { CPUHP_OFFLINE, CPUHP_ONLINE, CPUHP_NEW };\n${use}`,
    );
    assert.deepEqual(
      changes.map((c) => [c.change, c.enumerator, c.after, c.shiftsExisting, c.message]),
      [['enumerator added', 'CPUHP_NEW', '2', false, 'enum cpuhp_state: enumerator CPUHP_NEW added with value 2']],
    );
  });

  test('an enumerator inserted in the middle shifts the ones after it', () => {
    const changes = diff(
      `enum cpuhp_state { CPUHP_OFFLINE, CPUHP_ONLINE };\n${use}`,
      `enum cpuhp_state { CPUHP_OFFLINE, CPUHP_NEW, CPUHP_ONLINE };\n${use}`,
    );
    assert.deepEqual(messages(changes), [
      'enum cpuhp_state: enumerator CPUHP_NEW added with value 1',
      'enum cpuhp_state: enumerator CPUHP_ONLINE value 1 -> 2',
    ]);
    assert.ok(changes.every((c) => c.shiftsExisting));
  });
});

describe('changes that leave layouts alone', () => {
  const types = `
struct dev { int id; struct dev *parent; unsigned flags:4; };
enum mode { MODE_A, MODE_B };
`;

  test('a changed function body and a changed unrelated inline helper report nothing', () => {
    const pre = readDwarf(
      compileDwarf(`${types}
static inline int helper(int x) { return x * 3; }
int probe(struct dev *d) { return d->id + helper(d->flags) + MODE_B; }
`),
    );
    const post = readDwarf(
      compileDwarf(`${types}
static inline int helper(int x) { return x * 5 + 1; }
int probe(struct dev *d) { if (d->parent) return -1; return d->id - helper(d->flags) + MODE_A; }
`),
    );
    assert.deepEqual(compareLayouts(pre.layouts, post.layouts), []);
    // And with the keys the changed function uses, as tsplice will call it.
    const probe = post.functions.get('probe');
    assert.ok(probe);
    const keys = [...probe.types, ...probe.enumsInScope];
    assert.deepEqual(keys.sort(), ['enum mode', 'struct dev']);
    assert.deepEqual(compareLayouts(pre.layouts, post.layouts, keys), []);
  });

  test('a new type is not a change of existing data', () => {
    assert.deepEqual(diff(`${types}int f(struct dev *d) { return d->id; }\n`, `${types}struct fresh { long x; };\nint f(struct dev *d, struct fresh *n) { return d->id + n->x; }\n`), []);
  });
});

describe('keys and definitions', () => {
  const layout = (key: string, size: number, members: [string, number, string][]): TypeLayout => ({
    key,
    kind: 'struct',
    name: key.slice(7),
    size,
    members: members.map(([name, offset, type]) => ({ name, offset, type })),
    enumerators: [],
    target: undefined,
    unit: 't.c',
  });
  const layouts = (types: TypeLayout[], declared: string[] = []): TypeLayouts => ({
    types: new Map(types.map((t) => [t.key, t])),
    declarations: new Map(declared.map((k) => [k, { key: k, kind: 'struct', name: k.slice(7), units: ['t.c'] }])),
    conflicts: [],
  });
  const a1 = layout('struct a', 8, [['x', 0, 'long int']]);
  const a2 = layout('struct a', 16, [['x', 8, 'long int']]);
  const b1 = layout('struct b', 4, [['y', 0, 'int']]);
  const b2 = layout('struct b', 8, [['y', 0, 'long int']]);

  test('only the keys asked about are compared', () => {
    const pre = layouts([a1, b1]);
    const post = layouts([a2, b2]);
    assert.equal(compareLayouts(pre, post).length, 4);
    assert.deepEqual(messages(compareLayouts(pre, post, ['struct b'])), ["struct b: member 'y' type int -> long int", 'struct b: size 4 -> 8']);
    assert.deepEqual(compareLayouts(pre, post, ['struct nowhere']), []);
  });

  test('a definition that became a declaration (or the reverse) cannot be checked and says so', () => {
    const lost = compareLayouts(layouts([a1]), layouts([], ['struct a']));
    assert.deepEqual(lost.map((c) => [c.change, c.shiftsExisting]), [['definition lost', true]]);
    const gained = compareLayouts(layouts([], ['struct a']), layouts([a1]), ['struct a']);
    assert.deepEqual(gained.map((c) => [c.change, c.shiftsExisting]), [['definition gained', false]]);
    const removed = compareLayouts(layouts([a1]), layouts([]));
    assert.deepEqual(removed.map((c) => [c.change, c.message]), [['type removed', 'struct a: type removed']]);
  });

  test('a struct that became a union is a kind change', () => {
    const u: TypeLayout = { ...a1, kind: 'union' };
    assert.deepEqual(
      compareTypeLayout(a1, u).map((c) => c.message),
      ['struct a: kind struct -> union'],
    );
  });

  test('typedef targets and enum underlying types are compared', () => {
    const t1: TypeLayout = { key: 'pid_t', kind: 'typedef', name: 'pid_t', size: 4, members: [], enumerators: [], target: 'int', unit: 't.c' };
    const t2: TypeLayout = { ...t1, size: 8, target: 'long int' };
    assert.deepEqual(messages(compareTypeLayout(t1, t2)), ['pid_t: size 4 -> 8', 'pid_t: type int -> long int']);
  });

  test('an added enumerator reusing a value an old one had shifts existing meaning', () => {
    const e = (names: [string, bigint][]): TypeLayout => ({
      key: 'enum e',
      kind: 'enum',
      name: 'e',
      size: 4,
      members: [],
      enumerators: names.map(([name, value]) => ({ name, value })),
      target: 'unsigned int',
      unit: 't.c',
    });
    const changes = compareTypeLayout(e([['A', 0n], ['B', 1n]]), e([['A', 0n], ['B', 1n], ['C', 1n]]));
    assert.deepEqual(changes.map((c) => [c.change, c.shiftsExisting]), [['enumerator added', true]]);
  });
});

describe('spellings that name the same bytes', () => {
  const typedefs = 'typedef unsigned char __u8;\ntypedef __u8 u8;\n';

  test('a member re-spelled through a typedef of the same type is no change (6pack.c: unsigned char -> u8)', () => {
    const use = 'int f(struct sixpack *s) { return s->raw_buf[0] + s->status + (s->p != 0); }\n';
    const changes = diff(
      `${typedefs}struct sixpack { unsigned char raw_buf[4]; unsigned char status; const unsigned char *p; };\n${use}`,
      `${typedefs}struct sixpack { u8 raw_buf[4]; u8 status; u8 *p; };\n${use}`,
    );
    assert.deepEqual(messages(changes), []);
  });

  test('a re-spelling to a type of another size is still a change', () => {
    const use = 'int f(struct s *s) { return s->a; }\n';
    const changes = diff(`${typedefs}typedef unsigned short u16;\nstruct s { u8 a; u8 b; };\n${use}`, `${typedefs}typedef unsigned short u16;\nstruct s { u16 a; u8 b; };\n${use}`);
    assert.ok(changes.some((c) => c.change === 'member type changed' && c.shiftsExisting));
  });

  test('a member renamed in place (same offset, same type) is reported as a rename that moves nothing', () => {
    const changes = diff(
      'struct sched_entry { long start; long close_time; int index; };\nlong f(struct sched_entry *e) { return e->start; }\n',
      'struct sched_entry { long start; long end_time; int index; };\nlong f(struct sched_entry *e) { return e->start; }\n',
    );
    assert.deepEqual(
      changes.map((c) => [c.change, c.member, c.shiftsExisting, c.message]),
      [['member renamed', 'close_time', false, "struct sched_entry: member 'close_time' renamed 'end_time' in place (offset 0x8, long int)"]],
    );
  });

  test('a member replaced by one of another type at the same offset is not a rename', () => {
    const changes = diff(
      'struct f_ncm_opts { long a; _Bool bound; };\nlong f(struct f_ncm_opts *o) { return o->a; }\n',
      'struct f_ncm_opts { long a; int bind_count; };\nlong f(struct f_ncm_opts *o) { return o->a; }\n',
    );
    assert.deepEqual(messages(changes), ["struct f_ncm_opts: member 'bind_count' added at offset 0x8", "struct f_ncm_opts: member 'bound' removed (was at offset 0x8)"]);
    assert.ok(changes.every((c) => c.shiftsExisting));
  });
});
