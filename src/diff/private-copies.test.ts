/**
 * Private copies of statics that new code calls and matching cannot place (private-copies.ts),
 * on objects the host gcc compiles at test time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePair } from './fixtures.js';
import { diffObjects } from './pipeline.js';

const BASE = `
extern void sink(int);
extern void keep(int (*)(int));
static __attribute__((noinline)) int set_value(int x) { sink(x); return x * 3; }
static __attribute__((noinline)) int inner(int x) { sink(x + 9); return x; }
static __attribute__((noinline)) int outer(int x) { sink(x); return inner(x) + 1; }
__attribute__((noinline)) int known(int x) { return set_value(x) + 2; }
__attribute__((noinline)) int fixed(int x) { sink(x); return x; }
__attribute__((noinline)) int elsewhere(int x) { return outer(x); }
`;

function carried(pre: string, post: string): string[] {
  const pair = compilePair(pre, post);
  return diffObjects(pair.pre, pair.post).functions.map((f) => `${f.name}:${f.status}`).sort();
}

describe('private copies of statics', () => {
  it('copies a static the new code calls and no replaced pre code calls, with what it calls', () => {
    const post = BASE.replace('int fixed(int x) { sink(x); return x; }', 'int fixed(int x) { sink(x); return outer(x); }');
    assert.deepEqual(carried(BASE, post), ['fixed:changed', 'inner:copy', 'outer:copy']);
  });

  it('does not copy a static the replaced pre code already calls (matching learns it)', () => {
    const post = BASE.replace('return set_value(x) + 2;', 'return set_value(x) + 4;');
    assert.deepEqual(carried(BASE, post), ['known:changed']);
  });

  it('does not copy a static whose address the new code takes', () => {
    const post = BASE.replace('int fixed(int x) { sink(x); return x; }', 'int fixed(int x) { keep(outer); return x; }');
    assert.deepEqual(carried(BASE, post), ['fixed:changed']);
  });
});
