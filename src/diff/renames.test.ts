/**
 * Functions renamed with their code unchanged (renames.ts), on objects the host gcc compiles at
 * test time: their callers are unchanged; a changed body is a change.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePair } from './fixtures.js';
import { diffObjects } from './pipeline.js';

const PRE = `
extern void sink(int);
extern void free_one(void *);
__attribute__((noinline)) void destroy_params(void **params, unsigned int num)
{
	for (unsigned int i = 0; i < num; i++)
		if (params[i])
			free_one(params[i]);
}
__attribute__((noinline)) int unload(void **params, unsigned int num) { sink(1); destroy_params(params, num); return 0; }
`;
const RENAMED = PRE.replace(/destroy_params/g, 'module_destroy_params');

function carried(pre: string, post: string): string[] {
  const pair = compilePair(pre, post);
  return diffObjects(pair.pre, pair.post).functions.map((f) => `${f.name}:${f.status}`).sort();
}

describe('renamed functions', () => {
  it('leaves a caller of a function renamed with the same code unchanged', () => {
    assert.deepEqual(carried(PRE, RENAMED), ['module_destroy_params:new']);
  });

  it('still finds the caller changed when the renamed function\'s code changed too', () => {
    const post = RENAMED.replace('if (params[i])', 'if (params[i] && i != 3)');
    assert.deepEqual(carried(PRE, post), ['module_destroy_params:new', 'unload:changed']);
  });
});
