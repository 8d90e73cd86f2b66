/**
 * Hooks and declarations written with the real <linux/tsplice.h> (kmod/include), compiled by the
 * host gcc against three stand-ins for the kernel headers it includes: the hooks are found in
 * the patch's order and their functions carried, the pointers are not data, a declaration takes
 * away exactly the refusal it answers, and one that answers nothing is refused.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { authorIncludeDir } from '../host/project.js';
import { compilePair } from './fixtures.js';
import { diffObjects, diffReport, type DiffReport } from './pipeline.js';

/** linux/compiler.h, types.h and gfp.h as far as <linux/tsplice.h> needs them. */
function kernelStandIns(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsplice-hooks-'));
  mkdirSync(join(dir, 'linux'));
  writeFileSync(
    join(dir, 'linux', 'compiler.h'),
    '#define __used __attribute__((__used__))\n#define __section(s) __attribute__((__section__(s)))\n#define __aligned(x) __attribute__((__aligned__(x)))\n',
  );
  writeFileSync(join(dir, 'linux', 'types.h'), '#include <stddef.h>\ntypedef unsigned int gfp_t;\n');
  writeFileSync(join(dir, 'linux', 'gfp.h'), '');
  return dir;
}

const FLAGS = ['-I', kernelStandIns(), '-idirafter', authorIncludeDir()];

function diff(pre: string, post: string): DiffReport {
  const pair = compilePair(pre, post, 'unit', FLAGS);
  return diffReport(diffObjects(pair.pre, pair.post));
}

const PRE = `
int limit = 4;
__attribute__((noinline)) int over(int n) { return n > limit; }
`;

describe('hooks and declarations', () => {
  it('finds each hook in the order of the patch and carries its functions', () => {
    const report = diff(
      PRE,
      `#include <linux/tsplice.h>
int limit = 4;
__attribute__((noinline)) int over(int n) { return n >= limit; }
static int saved;
static void remember(void) { saved = limit; }
static int refuse_if_odd(void) { return saved & 1; }
static void lower(void) { limit = 3; }
static void restore(void) { limit = saved; }
tsplice_pre_apply(remember);
tsplice_check_apply(refuse_if_odd);
tsplice_apply(lower);
tsplice_reverse(restore);
`,
    );
    assert.deepEqual(report.refused, []);
    assert.deepEqual(report.hooks, [
      { kind: 'pre_apply', function: 'remember' },
      { kind: 'check_apply', function: 'refuse_if_odd' },
      { kind: 'apply', function: 'lower' },
      { kind: 'reverse', function: 'restore' },
    ]);
    const carried = new Map(report.functions.map((f) => [f.name, f.status]));
    assert.equal(carried.get('over'), 'changed');
    for (const hook of ['remember', 'refuse_if_odd', 'lower', 'restore']) assert.equal(carried.get(hook), 'new', hook);
    // The pointers are what create is told, not data the update carries.
    assert.ok(!report.data.some((d) => d.name.startsWith('__tsplice_')), JSON.stringify(report.data));
    assert.ok(report.ok);
  });

  it('lists the shadow ids the carried code passes as constants', () => {
    const report = diff(
      PRE,
      `#include <linux/tsplice.h>
int limit = 4;
__attribute__((noinline)) int over(int n)
{
	int *seen = tsplice_shadow_get_or_alloc(&limit, 0x7e51, sizeof(int), 0);
	if (seen)
		(*seen)++;
	return n > limit;
}
static void forget(void) { tsplice_shadow_free_all(0x7e51); }
tsplice_reverse(forget);
`,
    );
    assert.deepEqual(report.refused, []);
    const uses = report.shadowIds.map((u) => `${u.function} ${u.call} ${u.id}`).sort();
    assert.deepEqual(uses, ['forget tsplice_shadow_free_all 0x7e51', 'over tsplice_shadow_get_or_alloc 0x7e51']);
  });

  it('refuses a changed initial value naming the declaration that would answer it', () => {
    const report = diff(PRE, PRE.replace('limit = 4', 'limit = 3'));
    assert.equal(report.refused.length, 1);
    assert.equal(report.refused[0]?.kind, 'changed-initializer');
    assert.equal(report.refused[0]?.symbol, 'limit');
    assert.match(report.refused[0]?.reason ?? '', /declare tsplice_data_change_handled\(limit\)/);
  });

  it('says a read-only table cannot be written by a hook, and no declaration answers a size change', () => {
    const table = (rows: string): string => `
struct row { int a, b; };
const struct row rows[] = { ${rows} };
__attribute__((noinline)) int sum(int i) { return rows[i].a + rows[i].b; }
int (*reader)(int) = sum;
`;
    const readOnly = diff(table('{1, 2}, {3, 4}'), table('{1, 2}, {3, 5}'));
    assert.equal(readOnly.refused[0]?.kind, 'changed-initializer');
    assert.match(readOnly.refused[0]?.reason ?? '', /read-only, so no hook can write it/);
    assert.doesNotMatch(readOnly.refused[0]?.reason ?? '', /declare tsplice_data_change_handled/);
    const grown = diff(PRE.replace('int limit = 4;', 'int limit[2] = { 4 };').replace('n > limit', 'n > limit[0]'), PRE.replace('int limit = 4;', 'int limit[3] = { 4 };').replace('n > limit', 'n > limit[0]'));
    const grownRefusal = grown.refused.find((r) => r.symbol === 'limit');
    assert.equal(grownRefusal?.kind, 'changed-initializer');
    assert.match(grownRefusal?.reason ?? '', /size 8 -> 12.*no hook can give existing data another size/);
    const declared = diff(
      PRE.replace('int limit = 4;', 'int limit[2] = { 4 };').replace('n > limit', 'n > limit[0]'),
      `#include <linux/tsplice.h>\n${PRE.replace('int limit = 4;', 'int limit[3] = { 4 };').replace('n > limit', 'n > limit[0]')}\ntsplice_data_change_handled(limit);\n`,
    );
    assert.deepEqual(
      declared.refused.map((r) => r.kind).sort(),
      ['changed-initializer', 'unused-declaration'],
      'a declaration does not answer a size change',
    );
  });

  it('takes that refusal away when the author declares it handled', () => {
    const report = diff(
      PRE,
      `#include <linux/tsplice.h>
${PRE.replace('limit = 4', 'limit = 3')}
static void lower(void) { limit = 3; }
static void restore(void) { limit = 4; }
tsplice_apply(lower);
tsplice_reverse(restore);
tsplice_data_change_handled(limit);
`,
    );
    assert.deepEqual(report.refused, []);
    assert.deepEqual(report.declarations, [{ kind: 'data_change_handled', symbol: 'limit' }]);
    assert.deepEqual(
      report.hooks.map((h) => h.kind),
      ['apply', 'reverse'],
    );
  });

  it('refuses a declaration that answers nothing, by the name it gives', () => {
    const report = diff(
      PRE,
      `#include <linux/tsplice.h>
${PRE.replace('n > limit', 'n >= limit')}
tsplice_data_change_handled(limt);
`,
    );
    assert.equal(report.refused.length, 1);
    assert.equal(report.refused[0]?.kind, 'unused-declaration');
    assert.equal(report.refused[0]?.symbol, 'limt');
    assert.match(report.refused[0]?.reason ?? '', /tsplice_data_change_handled\(limt\) answers nothing/);
  });

  it('answers a changed __init function with tsplice_init_change_handled', () => {
    const init = (body: string, extra = ''): string => `${extra}
__attribute__((section(".init.text"), noinline)) int setup(void) { return ${body}; }
int run(void) { return 1; }
`;
    const refused = diff(init('1'), init('2'));
    assert.equal(refused.refused[0]?.kind, 'init-change');
    assert.match(refused.refused[0]?.reason ?? '', /declare tsplice_init_change_handled\(setup\)/);
    const declared = diff(init('1'), init('2', '#include <linux/tsplice.h>\ntsplice_init_change_handled(setup);'));
    assert.deepEqual(declared.refused, []);
    assert.deepEqual(declared.functions, []);
    assert.ok(declared.ok, 'an update of declarations alone is valid');
  });
});
