/**
 * Pre-post differencing on objects the host gcc compiles at test time, one case per kind of
 * change an update must handle or refuse.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePair } from './fixtures.js';
import { diffObjects, diffReport, type DiffReport } from './pipeline.js';

function diff(pre: string, post: string): DiffReport {
  const pair = compilePair(pre, post);
  return diffReport(diffObjects(pair.pre, pair.post));
}

const functionsOf = (r: DiffReport): string[] => r.functions.map((f) => `${f.name}:${f.status}`).sort();

const BASE = `
extern void sink(int);
extern void report(const char *);
int limit = 10;
__attribute__((noinline)) int get_value(int x) { sink(x); return x + 1; }
__attribute__((noinline)) int untouched(int x) { sink(x * 3); return x - 1; }
`;

describe('pre-post differencing', () => {
  it('finds nothing between identical objects', () => {
    const r = diff(BASE, BASE);
    assert.deepEqual(r.functions, []);
    assert.deepEqual(r.refused, []);
    assert.equal(r.ok, false);
  });

  it('compares a module\'s exit function under its own name, not its cleanup_module alias', () => {
    // What module_exit(fini) expands to: a global alias and a pointer kept addressable.
    const unit = (order: string): string => `
extern void unregister_a(void);
extern void unregister_b(void);
static void __attribute__((section(".exit.text"), used, noinline)) fini(void) { ${order} }
void cleanup_module(void) __attribute__((alias("fini")));
static void *__attribute__((section(".exit.data"), used)) addressable_cleanup_module = (void *)&cleanup_module;
`;
    const r = diff(unit('unregister_a(); unregister_b();'), unit('unregister_b(); unregister_a();'));
    assert.deepEqual(functionsOf(r), ['fini:changed']);
    assert.deepEqual(r.refused, []);
  });

  it('finds a changed function and only it', () => {
    const r = diff(BASE, BASE.replace('return x + 1;', 'return x + 2;'));
    assert.deepEqual(functionsOf(r), ['get_value:changed']);
    assert.equal(r.ok, true);
  });

  it('finds a new function and the caller that now calls it', () => {
    const post = BASE.replace(
      '__attribute__((noinline)) int get_value(int x) { sink(x); return x + 1; }',
      '__attribute__((noinline)) int clamp_value(int x) { sink(x); return x > 100 ? 100 : x; }\n__attribute__((noinline)) int get_value(int x) { sink(x); return clamp_value(x) + 1; }',
    );
    assert.deepEqual(functionsOf(diff(BASE, post)), ['clamp_value:new', 'get_value:changed']);
  });

  it('carries a new global and a new string literal as new data', () => {
    const post = `${BASE}\nint calls_seen = 5;\n__attribute__((noinline)) int counted(void) { report("counted called"); return ++calls_seen; }\n`;
    const pre = `${BASE}\n__attribute__((noinline)) int counted(void) { report("counted"); return 0; }\n`;
    const r = diff(pre, post);
    assert.deepEqual(functionsOf(r), ['counted:changed']);
    assert.deepEqual(r.data.map((d) => d.name).sort(), ['"counted called"', 'calls_seen']);
    assert.equal(r.ok, true);
  });

  it('refuses a changed initial value of existing data, naming it', () => {
    const r = diff(BASE, BASE.replace('int limit = 10;', 'int limit = 20;'));
    assert.equal(r.ok, false);
    assert.equal(r.refused.length, 1);
    assert.equal(r.refused[0]?.symbol, 'limit');
    assert.equal(r.refused[0]?.section, '.data.limit');
    assert.match(r.refused[0]?.reason ?? '', /^changed initial value of existing data/);
    assert.equal(r.refused[0]?.kind, 'changed-initializer');
    assert.equal(r.refused[0]?.offset, 0);
  });

  it('pairs a renumbered static local through the function that uses it', () => {
    const pre = `${BASE}\n__attribute__((noinline)) int tick(void) { static int count; return ++count; }\n`;
    const post = `${BASE}\n__attribute__((noinline)) int tock(void) { static int count; return count += 2; }\n__attribute__((noinline)) int tick(void) { static int count; return ++count; }\n`;
    const pair = compilePair(pre, post);
    const preLocal = pair.pre.dataObjects.find((p) => p.canonical === 'count.N');
    const postLocals = pair.post.dataObjects.filter((p) => p.canonical === 'count.N');
    assert.equal(postLocals.length, 2);
    const state = diffObjects(pair.pre, pair.post);
    const r = diffReport(state);
    // tick keeps its counter (live state); only tock and its own counter are new.
    assert.deepEqual(functionsOf(r), ['tock:new']);
    assert.equal(r.data.length, 1);
    assert.ok(preLocal);
    const tickCounter = state.correlation.preToPost.get(preLocal);
    assert.ok(tickCounter && r.data[0]?.name !== tickCounter.symbol.name);
    assert.deepEqual(r.refused, []);
  });

  it('follows .isra and .constprop clones and leaves their callers alone', () => {
    const source = `
extern void sink(int);
struct ctx { int a; int b; long pad[8]; };
static __attribute__((noinline)) int use_b(struct ctx *c) { return c->b * 3 + 1; }
int caller1(struct ctx *c) { return use_b(c) + 2; }
int caller2(struct ctx *c) { return use_b(c) + 5; }
static __attribute__((noinline)) int scale(int x, int k) { sink(x); return x * k + k; }
int cp1(int x) { return scale(x, 7); }
int cp2(int x) { return scale(x + 1, 7); }
`;
    const pair = compilePair(source, source.replace('c->b * 3 + 1', 'c->b * 3 + 4').replace('x * k + k', 'x * k - k'));
    assert.ok(pair.pre.functions.some((f) => /^use_b\.isra\.\d+$/.test(f.symbol.name)));
    assert.ok(pair.pre.functions.some((f) => /^scale\.constprop\.\d+$/.test(f.symbol.name)));
    const r = diffReport(diffObjects(pair.pre, pair.post));
    assert.deepEqual(
      functionsOf(r).map((n) => n.replace(/\.\d+:/, '.N:')),
      ['scale.constprop.N:changed', 'use_b.isra.N:changed'],
    );
  });

  it('treats a .cold part as its own function, and carries it when the hot part moves under it', () => {
    const source = `
extern void report(const char *, int);
extern void __attribute__((cold)) warn_cold(const char *);
int checked(int x, int y) {
	if (__builtin_expect(x < 0, 0)) {
		warn_cold("negative");
		report("x", x);
		report("y", y);
		return -1;
	}
	return x * 2 + y;
}
`;
    const coldOnly = diff(source, source.replace('report("y", y);', 'report("y was", y);'));
    assert.deepEqual(functionsOf(coldOnly), ['checked.cold:changed']);
    const hot = diff(source, source.replace('return x * 2 + y;', 'return x * 4 + y * 3 + 1;'));
    assert.deepEqual(functionsOf(hot), ['checked.cold:changed', 'checked:changed']);
  });

  it('marks the callers of a changed inline helper changed', () => {
    const source = `
extern void sink(int);
static inline int helper(int x) { return x * 5 + 3; }
int first(int x) { sink(x); return helper(x); }
int second(int x) { sink(x); return helper(x + 1); }
int third(int x) { sink(x); return x; }
`;
    assert.deepEqual(functionsOf(diff(source, source.replace('x * 5 + 3', 'x * 5 + 4'))), ['first:changed', 'second:changed']);
  });

  it('calls a shifted __LINE__ no change, and a patch left with none is not ok', () => {
    const source = `
extern void __might_sleep(const char *file, int line);
extern void sink(int);
int sleepy(int x)
{
	__might_sleep(__FILE__, __LINE__);
	sink(x);
	return x;
}
`;
    const r = diff(source, source.replace('int sleepy', '\n\n\nint sleepy'));
    assert.deepEqual(r.functions, []);
    assert.deepEqual(r.lineNumbersOnly, ['sleepy']);
    assert.equal(r.ok, false);
    // A real change next to the shifted line is still a change.
    const changed = diff(source, source.replace('int sleepy', '\n\n\nint sleepy').replace('return x;', 'return x + 1;'));
    assert.deepEqual(functionsOf(changed), ['sleepy:changed']);
  });

  it('compares a __sched function symbol by symbol inside .sched.text', () => {
    const source = `
extern void sink(int);
__attribute__((section(".sched.text"), noinline)) int sched_one(int x) { sink(x); return x + 1; }
__attribute__((section(".sched.text"), noinline)) int sched_two(int x) { sink(x); return x + 2; }
`;
    const r = diff(source, source.replace('return x + 2;', 'return x + 3;'));
    assert.deepEqual(functionsOf(r), ['sched_two:changed']);
  });

  it('refuses a changed __init function', () => {
    const source = `
extern void sink(int);
__attribute__((section(".init.text"), noinline)) int setup_thing(int x) { sink(x); return x + 1; }
`;
    const r = diff(source, source.replace('x + 1', 'x + 9'));
    assert.equal(r.ok, false);
    assert.deepEqual(r.refused.map((x) => [x.symbol, x.section]), [['setup_thing', '.init.text']]);
    assert.match(r.refused[0]?.reason ?? '', /__init function/);
    assert.equal(r.refused[0]?.kind, 'init-change');
    assert.equal(r.refused[0]?.function, 'setup_thing');
  });

  it('refuses a struct that gains a member, naming the type and the shifted member', () => {
    const source = `
extern void sink(long);
struct device_like { long id; int flags; long parent; };
__attribute__((noinline)) long read_parent(struct device_like *d) { sink(d->id); return d->parent; }
__attribute__((noinline)) long unrelated(long x) { sink(x); return x * 2; }
`;
    const post = source.replace('int flags; long parent;', 'int flags; long extra; long parent;').replace('return d->parent;', 'return d->parent + 1;');
    const r = diff(source, post);
    assert.equal(r.ok, false);
    const layout = r.refused.find((x) => x.section === '.debug_info');
    assert.ok(layout, JSON.stringify(r.refused));
    assert.equal(layout.symbol, 'struct device_like');
    assert.match(layout.reason, /member 'parent' offset 0x10 -> 0x18/);
    assert.match(layout.reason, /used by read_parent/);
    assert.equal(layout.kind, 'layout-change');
    assert.equal(layout.function, 'read_parent');
  });

  it('refuses an enum that loses an enumerator, naming the type and the shifted constants', () => {
    const source = `
extern void sink(int);
enum hp_state { HP_OFFLINE, HP_PREPARE, HP_PADATA_DEAD, HP_ONLINE };
__attribute__((noinline)) int is_online(int s) { sink(s); return s == HP_ONLINE; }
`;
    const post = source.replace(' HP_PADATA_DEAD,', '');
    const r = diff(source, post);
    assert.deepEqual(functionsOf(r), ['is_online:changed']);
    assert.equal(r.ok, false);
    assert.equal(r.refused[0]?.symbol, 'enum hp_state');
    assert.equal(r.refused[0]?.kind, 'layout-change');
    assert.match(r.refused[0]?.reason ?? '', /HP_PADATA_DEAD removed/);
    assert.match(r.refused[0]?.reason ?? '', /HP_ONLINE value 3 -> 2/);
  });

  it('accepts a change that leaves layouts alone (a new inline helper)', () => {
    const source = `
extern void sink(long);
struct device_like { long id; int flags; long parent; };
__attribute__((noinline)) long read_parent(struct device_like *d) { sink(d->id); return d->parent; }
`;
    const post = source.replace('__attribute__((noinline)) long read_parent', 'static inline long bump(long v) { return v + 1; }\n__attribute__((noinline)) long read_parent').replace('return d->parent;', 'return bump(d->parent);');
    const r = diff(source, post);
    assert.deepEqual(r.refused, []);
    assert.deepEqual(functionsOf(r), ['read_parent:changed']);
  });

  // A pr_debug call site's descriptor (struct _ddebug of include/linux/dynamic_debug.h: four
  // pointers, then lineno:18, class_id:6, flags:8, then the static key), in __dyndbg.
  const DYNDBG = `
struct ddebug { const char *modname, *function, *filename, *format; unsigned int lineno:18, class_id:6, flags:8; long key[2]; } __attribute__((aligned(8)));
extern void debug_print(struct ddebug *, int);
#define pr_debug_like(fmt, v) ({ static struct ddebug __attribute__((used, section("__dyndbg"))) descriptor = { "m", __func__, "unit.c", fmt, __LINE__, 63, 0, {0, 0} }; debug_print(&descriptor, v); })
`;

  it('takes a pr_debug descriptor whose only change is its line number as a line-number change', () => {
    const body = `__attribute__((noinline)) int probe_dev(int v) { pr_debug_like("probing %d\\n", v); return v + 1; }\n`;
    const r = diff(`${DYNDBG}${body}`, `${DYNDBG}\n\n\n${body}`);
    assert.deepEqual(r.refused, []);
    assert.deepEqual(r.functions, []);
  });

  it('gives a changed pr_debug message a new descriptor, and refuses a descriptor whose flags changed', () => {
    const body = `__attribute__((noinline)) int probe_dev(int v) { pr_debug_like("probing %d\\n", v); return v + 1; }\n`;
    const message = diff(`${DYNDBG}${body}`, `${DYNDBG}${body.replace('probing', 'probed')}`);
    assert.deepEqual(message.refused, []);
    assert.deepEqual(functionsOf(message), ['probe_dev:changed']);
    assert.equal(message.data.filter((d) => d.name.startsWith('descriptor')).length, 1);
    const flags = diff(`${DYNDBG}${body}`, `${DYNDBG.replace('63, 0,', '63, 1,')}\n${body}`);
    assert.equal(flags.refused.length, 1);
    assert.match(flags.refused[0]?.reason ?? '', /changed initial value/);
  });

  // NL_SET_ERR_MSG's `static const char __msg[] = msg;`: gcc names each one __msg.N in order.
  const MSG = `
extern void set_err(const char *);
#define set_err_msg(m) ({ static const char __msg[] = m; set_err(__msg); })
`;
  const replaceRoute = `__attribute__((noinline)) int replace_route(int v) { if (v < 0) set_err_msg("bad route"); return v; }\n`;
  const deleteRoute = `__attribute__((noinline)) int delete_route(int v) { if (v > 9) set_err_msg("no such route"); return v; }\n`;

  it('compares renumbered constant labels (__msg.N) by contents', () => {
    const added = `__attribute__((noinline)) int check_route(int v) { if (v == 3) set_err_msg("route is busy"); return v; }\n`;
    const r = diff(`${MSG}${replaceRoute}${deleteRoute}`, `${MSG}${added}${replaceRoute}${deleteRoute}`);
    assert.deepEqual(r.refused, []);
    assert.deepEqual(functionsOf(r), ['check_route:new']);
  });

  it('carries the user of a constant label whose text changed, and refuses nothing', () => {
    const r = diff(`${MSG}${replaceRoute}${deleteRoute}`, `${MSG}${replaceRoute.replace('bad route', 'invalid route')}${deleteRoute}`);
    assert.deepEqual(r.refused, []);
    assert.deepEqual(functionsOf(r), ['replace_route:changed']);
  });

  it('pairs pr_debug descriptors by message when one is added between others', () => {
    const pre = `${DYNDBG}__attribute__((noinline)) int probe_dev(int v) { pr_debug_like("start %d\\n", v); v++; pr_debug_like("done %d\\n", v); return v; }\n`;
    const post = pre.replace('v++;', 'v++; pr_debug_like("middle %d\\n", v);');
    const r = diff(pre, post);
    assert.deepEqual(r.refused, []);
    assert.deepEqual(functionsOf(r), ['probe_dev:changed']);
    assert.equal(r.data.filter((d) => d.name.startsWith('descriptor')).length, 1);
  });
});
