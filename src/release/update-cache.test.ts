import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { UserError, diagnosticsOf } from '../host/errors.js';
import type { PreparedTree } from '../kbuild/tree.js';
import type { UpdatePackage } from '../update/format.js';
import { sampleUpdate } from '../update/fixtures.js';
import { cachedCreate } from './update-cache.js';

const work = mkdtempSync(join(tmpdir(), 'tsplice-update-cache-'));
after(() => rmSync(work, { recursive: true, force: true }));
const tree = { release: 'r', sourceVersion: '1', dir: work, makeVariables: [] } as PreparedTree;

describe('cachedCreate', () => {
  it('makes an update once and answers the same patch from the cache after', async () => {
    let made = 0;
    const make = async (): Promise<UpdatePackage> => {
      made++;
      return sampleUpdate();
    };
    const patch = join(work, 'fix.patch');
    writeFileSync(patch, '--- a/x.c\n+++ b/x.c\n');
    const options = { dir: join(work, 'kept'), tree, headersDir: work, distributionVersion: '1', make };
    const first = await cachedCreate(options)(patch);
    const second = await cachedCreate(options)(patch);
    assert.equal(made, 1);
    assert.deepEqual(second, first);
    // Another tree is another answer.
    await cachedCreate({ ...options, tree: { ...tree, sourceVersion: '2' } })(patch);
    writeFileSync(patch, '--- a/x.c\n+++ b/x.c\n+changed\n');
    await cachedCreate(options)(patch);
    assert.equal(made, 3);
  });

  it('keeps a refusal with its diagnostics, and not a crash', async () => {
    let asked = 0;
    const refuse = async (): Promise<UpdatePackage> => {
      asked++;
      throw new UserError('x: data layout change.', { kind: 'layout-change', unit: 'x.c', section: '.debug_info' });
    };
    const patch = join(work, 'refused.patch');
    writeFileSync(patch, 'refused\n');
    const options = { dir: join(work, 'kept'), tree, headersDir: work, distributionVersion: '1', make: refuse };
    for (let i = 0; i < 2; i++) {
      await assert.rejects(cachedCreate(options)(patch), (e: unknown) => {
        assert.equal((e as Error).message, 'x: data layout change.');
        assert.deepEqual(diagnosticsOf(e).map((d) => [d.kind, d.unit]), [['layout-change', 'x.c']]);
        return true;
      });
    }
    assert.equal(asked, 1);
    const crashPatch = join(work, 'crash.patch');
    writeFileSync(crashPatch, 'crash\n');
    const crash = async (): Promise<UpdatePackage> => {
      asked++;
      throw new TypeError('bug');
    };
    for (let i = 0; i < 2; i++) await assert.rejects(cachedCreate({ ...options, make: crash })(crashPatch), /bug/);
    assert.equal(asked, 3);
  });
});
