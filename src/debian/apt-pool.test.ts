import assert from 'node:assert/strict';
import { it } from 'node:test';
import { debFileName, poolFolder } from './apt-pool.js';

it('places a source in the pool as Debian does, lib sources under libX/', () => {
  assert.equal(poolFolder('main', 'tsplice-updates-6.1.0-47-amd64'), 'pool/main/t/tsplice-updates-6.1.0-47-amd64');
  assert.equal(poolFolder('main', 'libelf'), 'pool/main/libe/libelf');
  assert.equal(poolFolder('main', 'lib'), 'pool/main/l/lib');
});

it('names a package file without its epoch', () => {
  assert.equal(debFileName({ package: 'tsplice', version: '1:0.2-1', architecture: 'all', source: 'tsplice' }), 'tsplice_0.2-1_all.deb');
  assert.equal(debFileName({ package: 'tsplice-updates-6.1.0-47-amd64', version: '3', architecture: 'all', source: 'tsplice-updates-6.1.0-47-amd64' }), 'tsplice-updates-6.1.0-47-amd64_3_all.deb');
});
