/**
 * A unit of a loadable module, compiled by the host gcc as kbuild compiles one (`-DMODULE`,
 * KBUILD_MODNAME), with what that brings into its object: `.modinfo` strings, `init_module`
 * and `cleanup_module` aliases of its init and exit functions, references to `__this_module`.
 * A patch to one ordinary function gives exactly that function, recorded against the module,
 * and the payload's references to the module's statics and `__this_module` name the module and
 * cannot bind to the update module's own `__this_module`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePair } from '../diff/fixtures.js';
import { diffObjects } from '../diff/pipeline.js';
import { updatePartsFromDiff } from './from-diff.js';
import { buildPayload } from './payload.js';

const MODULE_FLAGS = ['-DMODULE', `-DKBUILD_MODNAME="demo"`, '-D__KBUILD_MODNAME=kmod_demo'];

// module.h in miniature: THIS_MODULE, MODULE_LICENSE's .modinfo string, module_init/module_exit.
const UNIT = `
struct module;
extern struct module __this_module;
#define THIS_MODULE (&__this_module)
extern int try_module_get(struct module *);
extern void module_put(struct module *);
extern void sink(int);
static const char __UNIQUE_ID_license101[] __attribute__((section(".modinfo"), used, aligned(1))) = "license=GPL";
static const char __UNIQUE_ID_name102[] __attribute__((section(".modinfo"), used, aligned(1))) = "name=" KBUILD_MODNAME;
static int opened;
static __attribute__((noinline)) int demo_helper(int x) { sink(x); return x * 3; }
__attribute__((noinline)) int demo_open(int x) { if (!try_module_get(THIS_MODULE)) return -1; opened++; sink(demo_helper(x)); return 0; }
__attribute__((noinline)) void demo_release(void) { opened--; module_put(THIS_MODULE); }
static __attribute__((section(".init.text"), noinline)) int demo_init(void) { sink(0); return 0; }
static __attribute__((section(".exit.text"), noinline)) void demo_exit(void) { sink(-1); }
int init_module(void) __attribute__((alias("demo_init")));
void cleanup_module(void) __attribute__((alias("demo_exit")));
`;
const PATCHED = UNIT.replace('sink(demo_helper(x)); return 0;', 'sink(demo_helper(x) + 1); return 0;');

describe('a unit of a loadable module', () => {
  const pair = compilePair(UNIT, PATCHED, 'demo', MODULE_FLAGS);
  const state = diffObjects(pair.pre, pair.post);

  it('differs in the one function the patch changes, recorded against the module', () => {
    assert.deepEqual(state.refused, []);
    assert.deepEqual(state.functions.map((f) => `${f.name}:${f.status}`), ['demo_open:changed']);
    assert.deepEqual(state.data, []);
    const parts = updatePartsFromDiff(state, 'drivers/demo/demo.c', 'demo');
    assert.deepEqual(parts.functions.map((f) => `${f.name}:${f.module ?? 'vmlinux'}`), ['demo_open:demo']);
  });

  it('refers to __this_module and the module statics as the module, never by the bare name', () => {
    const payload = buildPayload([{ unit: 'drivers/demo/demo.c', state, module: 'demo' }]);
    const externals = payload.externals.map((e) => `${e.name}${e.local ? ' (static)' : ''} [${e.module ?? 'vmlinux'}]`).sort();
    assert.deepEqual(externals, ['__this_module [demo]', 'demo_helper (static) [demo]', 'opened (static) [demo]', 'sink [demo]', 'try_module_get [demo]']);
    const thisModule = payload.externals.find((e) => e.name === '__this_module');
    assert.equal(thisModule?.symbol, '__this_module.tsplice.u0');
    assert.ok(!payload.model.symbols.some((s) => s.name === '__this_module'), 'the payload names __this_module, which the update module defines itself');
  });

  it('leaves the references of a vmlinux unit as they were', () => {
    const payload = buildPayload([{ unit: 'kernel/demo.c', state }]);
    assert.equal(payload.externals.find((e) => e.name === 'sink')?.symbol, 'sink');
    assert.ok(payload.externals.every((e) => e.module === undefined));
  });
});
