/**
 * The payload object (the update module's code) built from units the host gcc compiles at test
 * time: what it refers to in the running kernel, and how it names what it carries.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePair } from '../diff/fixtures.js';
import { diffObjects } from '../diff/pipeline.js';
import { buildPayload } from './payload.js';

// `has_cap` is a static_cpu_has() in miniature: a block in .altinstr_aux that jumps back into
// the function it belongs to. `carried` changes; `other` does not.
const UNIT = `
extern char caps[8];
extern void sink(int);
static __attribute__((noinline)) int helper(int x) { sink(x); return x * 7; }
static inline __attribute__((always_inline)) int has_cap(void) {
  asm goto(".pushsection .altinstr_aux,\\"ax\\"\\n6: testb $1, caps+2(%%rip)\\n jnz %l[yes]\\n jmp %l[no]\\n.popsection\\n jmp 6b" :::: yes, no);
  return 0;
yes: return 1;
no: return 0;
}
__attribute__((noinline)) int carried(int x) { if (has_cap()) sink(1); return helper(x) + 1; }
__attribute__((noinline)) int other(int x) { if (has_cap()) sink(2); return x; }
`;
const PATCHED = UNIT.replace('sink(1); return helper(x) + 1;', 'sink(3); return helper(x) + 1;');

describe('update payload', () => {
  const pair = compilePair(UNIT, PATCHED);
  const state = diffObjects(pair.pre, pair.post);

  it('refers to the running kernel only for what the carried code uses', () => {
    const payload = buildPayload([{ unit: 'kernel/a.c', state }]);
    const externals = payload.externals.map((e) => `${e.name}${e.local ? ' (static)' : ''}`).sort();
    // `other` is reached only from its own static_cpu_has block: that block is dead in the
    // module, so the module must not ask for `other` (a static the kernel may have many times).
    assert.deepEqual(externals, ['caps', 'helper (static)', 'sink']);
    assert.deepEqual(payload.renamedFunctions, []);
  });

  it('gives a function carried from two units a name of its own in each', () => {
    // compat_binfmt_elf.c #includes binfmt_elf.c: two objects with the same statics.
    const compat = compilePair(UNIT, PATCHED);
    const payload = buildPayload([
      { unit: 'fs/binfmt_elf.c', state },
      { unit: 'fs/compat_binfmt_elf.c', state: diffObjects(compat.pre, compat.post) },
    ]);
    assert.deepEqual(
      payload.renamedFunctions.map((r) => `${r.unit}:${r.name}->${r.symbol}`),
      ['fs/binfmt_elf.c:carried->carried.tsplice.u0', 'fs/compat_binfmt_elf.c:carried->carried.tsplice.u1'],
    );
    const names = payload.model.symbols.filter((s) => s.name.startsWith('carried')).map((s) => s.name).sort();
    assert.deepEqual(names, ['carried.tsplice.u0', 'carried.tsplice.u1']);
  });
});
