/**
 * The names a `##` paste may build, on single identifiers. No kernel tree needed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tailMatches } from './token-pastes.js';

describe('the tails a paste passes in', () => {
  it('a tail matches a run of whole `_`-separated parts of an identifier, not a part of one', () => {
    assert.ok(tailMatches('dev_set_ready_to_probe', 'ready_to_probe'));
    assert.ok(!tailMatches('dev_set_ready_to_probe_x', 'to_prob'));
  });
});
