import assert from 'node:assert/strict';
import { it } from 'node:test';
import { moduleLoadOrder } from './guest-image.js';

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
