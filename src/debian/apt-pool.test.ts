import assert from 'node:assert/strict';
import { it } from 'node:test';
import { poolFolder } from './apt-pool.js';

it('places a source in the pool as Debian does, lib sources under libX/', () => {
  assert.equal(poolFolder('main', 'tsplice-updates-6.1.0-47-amd64'), 'pool/main/t/tsplice-updates-6.1.0-47-amd64');
  assert.equal(poolFolder('main', 'libelf'), 'pool/main/libe/libelf');
  assert.equal(poolFolder('main', 'lib'), 'pool/main/l/lib');
});
