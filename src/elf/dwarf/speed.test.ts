// A kernel-sized input: a large synthetic unit (many structs in one big pointer cycle,
// bit-fields, anonymous unions, enums, inlined helpers). Prints the time taken; asserts
// only that the result is right, since machines differ.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareLayouts, readDwarf } from './index.js';
import { compileDwarf, syntheticKernelC } from './test-helpers.js';

const N = 700;

test(`a large unit (${N} structs, ${N} functions) parses, with the right answers`, () => {
  const sections = compileDwarf(syntheticKernelC(N));
  const start = performance.now();
  const dwarf = readDwarf(sections);
  const parsed = performance.now();
  let reached = 0;
  for (const use of dwarf.functions.values()) reached += use.types.size;
  const done = performance.now();
  const mb = (sections.info.length / 1e6).toFixed(2);
  console.log(
    `${mb} MB .debug_info: readDwarf ${(parsed - start).toFixed(0)} ms; types of all ${dwarf.functions.size} functions ${(done - parsed).toFixed(0)} ms`,
  );

  // Per struct: the struct, its typedef, its enum, its anonymous union and the struct in that union.
  assert.equal(dwarf.layouts.types.size, N * 5 + 2);
  assert.deepEqual(dwarf.layouts.conflicts, []);
  const s7 = dwarf.layouts.types.get('struct s7');
  assert.deepEqual(
    s7?.members.map((m) => m.name),
    ['next', 'other', 'a7', 'b7', 'f0', 'f1', 'f2', 'arr', '', 'state', 'name', 'cb'],
  );
  assert.equal(dwarf.layouts.types.get('enum e7')?.enumerators.at(-1)?.value, 13n);
  assert.equal(dwarf.functions.size, N);
  // Every struct points to the next one: each function reaches every struct, and the
  // typedefs of the helpers it inlined.
  const fn3 = dwarf.functions.get('fn3');
  assert.ok(fn3);
  assert.equal(fn3.types.has(`struct s${N - 1}`), true);
  assert.equal(fn3.types.has('s3_t'), true, 'typedef of an inlined helper parameter');
  assert.equal(fn3.types.has('s4_t'), false, 'typedef used by no helper inlined into fn3');
  assert.ok(reached > N * N);
  assert.deepEqual(compareLayouts(dwarf.layouts, dwarf.layouts), []);
});
