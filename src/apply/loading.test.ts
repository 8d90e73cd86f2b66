/** The marks of update modules being loaded, by which recover finds a killed run's module. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { markedLoading, markLoading, unmarkLoading } from './loading.js';

it('marks a module while it is loaded and unmarks it once the kernel names it', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'tsplice-loading-')), 'loading');
  assert.deepEqual(markedLoading(dir), [], 'no folder yet: nothing marked');
  markLoading('tsplice_b', dir);
  markLoading('tsplice_a', dir);
  assert.deepEqual(markedLoading(dir), ['tsplice_a', 'tsplice_b']);
  unmarkLoading('tsplice_a', dir);
  unmarkLoading('tsplice_never_marked', dir);
  assert.deepEqual(markedLoading(dir), ['tsplice_b']);
});
