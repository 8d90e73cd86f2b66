import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { PreparedTree } from '../kbuild/tree.js';
import type { Candidate, DerivedFile } from './derive.js';
import { derivationStore } from './derivation-store.js';

const work = mkdtempSync(join(tmpdir(), 'tsplice-derivation-store-'));
after(() => rmSync(work, { recursive: true, force: true }));

const tree = (sourceVersion: string): PreparedTree => ({ release: 'r', sourceVersion, dir: work, makeVariables: [] });
const candidate: Candidate = { file: 'net/a.c', unit: 'net/a.c', status: 'module' };
const failure: DerivedFile = { ...candidate, module: 'a', deriveError: 'net/a.c: its derived patch does not apply', kind: 'patch-does-not-apply' };

describe('derivationStore', () => {
  it('gives back what a store of the same folder, trees and code kept, across instances', () => {
    const dir = join(work, 'one');
    derivationStore(dir, tree('1'), tree('2'), 'code-a').keep(candidate, failure);
    assert.deepEqual(derivationStore(dir, tree('1'), tree('2'), 'code-a').kept(candidate), failure);
    // Nothing half-written is left beside it.
    assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
  });

  it('answers nothing for another file, another tree or another version of the derivation code', () => {
    const dir = join(work, 'two');
    derivationStore(dir, tree('1'), tree('2'), 'code-a').keep(candidate, failure);
    assert.equal(derivationStore(dir, tree('1'), tree('2'), 'code-a').kept({ ...candidate, file: 'net/b.c', unit: 'net/b.c' }), undefined);
    assert.equal(derivationStore(dir, tree('1'), tree('3'), 'code-a').kept(candidate), undefined);
    assert.equal(derivationStore(dir, tree('1'), tree('2'), 'code-b').kept(candidate), undefined);
    assert.equal(derivationStore(dir, tree('1'), tree('2'), 'code-a').kept({ ...candidate, status: 'built-in' }), undefined);
  });

  it('does not take a kept result that names another file', () => {
    const dir = join(work, 'three');
    const store = derivationStore(dir, tree('1'), tree('2'), 'code-a');
    store.keep(candidate, failure);
    const [name] = readdirSync(dir);
    writeFileSync(join(dir, name ?? ''), JSON.stringify({ ...failure, file: 'net/other.c' }));
    assert.equal(store.kept(candidate), undefined);
  });
});
