import assert from 'node:assert/strict';
import { it } from 'node:test';
import { findDependency, sourcePackageName } from './packages.js';
import { makeVariablesFrom } from './prepare.js';
import { moduleLoadOrder } from './guest-image.js';

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

it('takes the compiler and release from .kernelvariables', () => {
  const text = 'override ARCH = x86\noverride KERNELRELEASE = 6.1.0-47-amd64\nCCACHE = ccache\nCC = $(if $(DEBIAN_KERNEL_USE_CCACHE),$(CCACHE)) $(CROSS_COMPILE)gcc-12\n';
  assert.deepEqual(makeVariablesFrom(text, 'ignored'), [
    'ARCH=x86',
    'KERNELRELEASE=6.1.0-47-amd64',
    'CC=gcc-12',
    'HOSTCC=gcc-12',
    'KCFLAGS=-ffunction-sections -fdata-sections',
  ]);
});

it('orders modules so that each comes after what it depends on', () => {
  const dep = [
    'kernel/fs/9p/9p.ko: kernel/fs/netfs/netfs.ko kernel/fs/fscache/fscache.ko kernel/net/9p/9pnet.ko',
    'kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko',
    'kernel/fs/netfs/netfs.ko:',
    'kernel/net/9p/9pnet.ko:',
    'kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko',
    'kernel/drivers/virtio/virtio_ring.ko:',
    'kernel/drivers/virtio/virtio.ko:',
  ].join('\n');
  const order = moduleLoadOrder(dep, ['9pnet_virtio', '9p']);
  assert.equal(new Set(order).size, order.length);
  const at = (m: string): number => order.findIndex((f) => f.endsWith(`/${m}.ko`));
  assert.ok(at('9pnet') < at('9pnet_virtio') && at('virtio_ring') < at('9pnet_virtio'));
  assert.ok(at('netfs') < at('fscache') && at('fscache') < at('9p'));
  assert.throws(() => moduleLoadOrder(dep, ['nosuch']), /has no module nosuch/);
});
