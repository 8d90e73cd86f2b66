import assert from 'node:assert/strict';
import { it } from 'node:test';
import { formatSpread, median, spreadOf } from './stats.js';

it('takes the middle value, or the mean of the two middle ones', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

it('spreads the values it has, leaving out the missing ones', () => {
  assert.deepEqual(spreadOf([3000, undefined, 1000, 2000, NaN]), { n: 3, median: 2000, min: 1000, max: 3000 });
  assert.equal(spreadOf([undefined]), undefined);
  assert.equal(formatSpread(spreadOf([3000, 1000, 2000]), 1000, 1), '2.0 (1.0–3.0, n=3)');
  assert.equal(formatSpread(undefined), '-');
});
