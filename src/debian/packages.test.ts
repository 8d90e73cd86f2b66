import assert from 'node:assert/strict';
import { it } from 'node:test';
import { findDependency, sourcePackageName } from './packages.js';

it('reads versioned dependencies from a Depends field', () => {
  const depends = 'linux-headers-6.1.0-47-common (= 6.1.170-3), linux-kbuild-6.1 (>= 6.1.170-3), gcc-12';
  assert.deepEqual(findDependency(depends, 'linux-kbuild-6.1'), { relation: '>=', version: '6.1.170-3' });
  assert.deepEqual(findDependency(depends, 'gcc-12'), { relation: undefined, version: undefined });
  assert.equal(findDependency(depends, 'linux-kbuild-6.12'), undefined);
});

it('names the source package of a release', () => {
  assert.equal(sourcePackageName('6.1.0-47-amd64'), 'linux-source-6.1');
  assert.throws(() => sourcePackageName('6.1.0-47-arm64'), /not a Debian amd64 kernel release/);
});
