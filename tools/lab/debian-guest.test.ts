/**
 * The Debian guest on a booted kernel: one QEMU session of three boots of the same disk.
 * Boot 1 reports what the system is and writes a file to the disk; `systemctl reboot` (the
 * lab's, between scripts) starts boot 2, which finds the file and resets the machine with
 * sysrq-b; boot 3 still runs its script. Each script prints `key=value` lines the checks read.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chooseRelease } from '../../src/debian/kernel-choice.js';
import { debianRoot } from './debian-root.js';
import { bootValues, runDebianGuest, type DebianRunResult } from './debian-guest.js';

const quiet = (): void => {};

/** A file on the guest's disk (not the share): what must survive the reboots. */
const MARK = '/var/lib/tsplice-lab-test-mark';

/** Boot 1: what the system is, what the share holds; then a file on the disk. */
const FIRST_BOOT = `
echo "pid1=$(cat /proc/1/comm)"
echo "node=$(node --version)"
echo "apt=$(apt-get --version | head -n 1)"
echo "dpkg=$(dpkg -l linux-image-$(uname -r) | tail -n 1)"
echo "release=$(uname -r)"
echo "share=$(cat greeting.txt)"
echo "boot_id=$(cat /proc/sys/kernel/random/boot_id)"
echo "lab_boot=$TSPLICE_BOOT"
echo "initrd=$(lsinitramfs /boot/initrd.img-$(uname -r) | grep -oE '/(virtio_pci|virtio_blk|ext4|9pnet_virtio|9p)[.]ko' | sort -u | tr -d / | tr '\n' ' ')"
echo written-in-boot-1 > ${MARK}
`;

/** Boot 2: the file is still there; then a reset the guest gets no say in. */
const SECOND_BOOT = `
echo "boot_id=$(cat /proc/sys/kernel/random/boot_id)"
echo "mark=$(cat ${MARK})"
echo "lab_boot=$TSPLICE_BOOT"
sync
echo b > /proc/sysrq-trigger
sleep 60
echo "after-reset=still-running"
`;

/** Boot 3: runs after the reset, on the same disk. */
const THIRD_BOOT = `
echo "boot_id=$(cat /proc/sys/kernel/random/boot_id)"
echo "mark=$(cat ${MARK})"
echo "lab_boot=$TSPLICE_BOOT"
`;

describe('the Debian guest (three boots of one disk)', () => {
  let release = '';
  let result: DebianRunResult;
  const share = mkdtempSync(join(tmpdir(), 'tsplice-debian-test-'));
  after(() => rmSync(share, { recursive: true, force: true }));

  before(async () => {
    release = await chooseRelease(undefined, quiet);
    const root = await debianRoot(release, quiet);
    writeFileSync(join(share, 'greeting.txt'), 'hello from the host\n');
    result = await runDebianGuest({
      root,
      shares: [share],
      boots: [FIRST_BOOT, SECOND_BOOT, THIRD_BOOT],
      timeoutSeconds: 900,
      ...(process.env['TSPLICE_TEST_VERBOSE'] ? {} : { onLine: quiet }),
    });
  });

  it('runs systemd as PID 1, with apt, dpkg and Debian\'s node 18', () => {
    const first = bootValues(result.boots[0]);
    assert.equal(result.boots[0]?.status, 0);
    assert.equal(first.get('pid1'), 'systemd');
    assert.match(first.get('node') ?? '', /^v18\./);
    assert.match(first.get('apt') ?? '', /^apt \d/);
  });

  it('boots the stock kernel package installed on the disk', () => {
    const first = bootValues(result.boots[0]);
    assert.equal(first.get('release'), release);
    assert.match(first.get('dpkg') ?? '', new RegExp(`^ii +linux-image-${release} `));
  });

  it('made the initrd with the disk and share drivers in it (the lab\'s initramfs hook)', () => {
    const modules = (bootValues(result.boots[0]).get('initrd') ?? '').trim().split(' ').sort();
    assert.deepEqual(modules, ['9p.ko', '9pnet_virtio.ko', 'ext4.ko', 'virtio_blk.ko', 'virtio_pci.ko']);
  });

  it('mounts the host\'s folder at its own path, as the working folder', () => {
    assert.equal(bootValues(result.boots[0]).get('share'), 'hello from the host');
  });

  it('reboots the same disk for real: the file is there, the boot id is new', () => {
    const [first, second] = [bootValues(result.boots[0]), bootValues(result.boots[1])];
    assert.equal(second.get('mark'), 'written-in-boot-1');
    assert.notEqual(second.get('boot_id'), undefined);
    assert.notEqual(second.get('boot_id'), first.get('boot_id'));
  });

  it('sees a sysrq-b reset as the end of a boot, and runs the next boot\'s script', () => {
    const second = result.boots[1];
    assert.equal(second?.end, 'reset');
    assert.equal(second.status, undefined);
    assert.equal(bootValues(second).get('after-reset'), undefined);
    const third = bootValues(result.boots[2]);
    assert.equal(result.boots[2]?.status, 0);
    assert.equal(third.get('mark'), 'written-in-boot-1');
    assert.equal(third.get('lab_boot'), '3');
    assert.notEqual(third.get('boot_id'), bootValues(second).get('boot_id'));
  });
});
