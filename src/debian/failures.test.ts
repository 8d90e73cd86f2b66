/**
 * Bad input to the lab: each gets one clear sentence and a non-zero exit, through the real
 * CLI, and leaves the cache usable. These run the real apt against Debian's archive.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, symlinkSync, existsSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { projectRoot } from '../host/project.js';
import { cachedPackage } from './fetch.js';
import { showPackage } from './apt.js';
import { resolveKernel } from './packages.js';

const cli = join(projectRoot(), 'bin', 'tsplice.js');

function tsplice(args: string[], env: NodeJS.ProcessEnv = process.env): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

describe('lab bad input', () => {
  it('names an unknown kernel release and lists what the archive has', () => {
    const r = tsplice(['lab', 'fetch', '--kernel', '6.1.0-999-amd64']);
    assert.notEqual(r.status, 0);
    // Progress lines may come first (a refresh of the package lists); the error is the last line.
    const last = r.stderr.trim().split('\n').pop() ?? '';
    assert.match(last, /^tsplice: Kernel release 6\.1\.0-999-amd64 is not in the Debian archive; available: .*6\.1\.0-\d+-amd64 \(6\.1\.\d+-\d+\)\.$/);
  });

  it('refuses a release name that is not one', () => {
    const r = tsplice(['lab', 'fetch', '--kernel', 'latest']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /^tsplice: 'latest' is not a Debian amd64 kernel release/);
  });

  it('says so in one sentence when apt is missing', () => {
    // A PATH holding only sh and node: apt-get, apt-cache and dpkg are not found.
    const bin = mkdtempSync(join(tmpdir(), 'tsplice-noapt-'));
    symlinkSync('/bin/sh', join(bin, 'sh'));
    symlinkSync(process.execPath, join(bin, 'node'));
    const r = tsplice(['lab', 'fetch', '--kernel', '6.1.0-47-amd64'], { ...process.env, PATH: bin });
    assert.notEqual(r.status, 0);
    assert.equal(r.stderr.trim(), 'tsplice: tsplice lab needs a Debian host with apt-get, apt-cache and dpkg on PATH; they were not found.');
  });

  it('says so in one sentence when the cache has no room, and leaves nothing half-made', () => {
    const cache = mkdtempSync(join(tmpdir(), 'tsplice-full-'));
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', cache]);
    assert.equal(mount.status, 0, 'mounting a small tmpfs needs root');
    try {
      const r = tsplice(['lab', 'fetch', '--kernel', '6.1.0-47-amd64'], { ...process.env, TSPLICE_CACHE: cache });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, new RegExp(`^tsplice: Not enough free space in ${cache} to download linux-image-6\\.1\\.0-47-amd64_[^ ]+\\.deb: \\d+ [kM]B free, \\d+ MB needed\\.$`, 'm'));
      assert.equal(existsSync(join(cache, 'kernels', '6.1.0-47-amd64', '.done')), false);
    } finally {
      spawnSync('umount', [cache]);
    }
  });

  it('downloads a corrupt cached package again and says so', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'tsplice-corrupt-'));
    const saved = process.env['TSPLICE_CACHE'];
    process.env['TSPLICE_CACHE'] = cache;
    try {
      // The small kbuild package of the default kernel stands in for any cached package.
      const packages = await resolveKernel('6.1.0-47-amd64', () => {});
      const pkg = await showPackage(packages.kbuild.name, packages.kbuild.version);
      assert.ok(pkg);
      const messages: string[] = [];
      const path = await cachedPackage(pkg, (m) => messages.push(m));
      const good = readFileSync(path);
      // A second call finds it verified: no download, no message.
      messages.splice(0);
      assert.equal(await cachedPackage(pkg, (m) => messages.push(m)), path);
      assert.equal(messages.length, 0);
      // Flip bytes in the middle, as a disk error or an interrupted copy would.
      const fd = openSync(path, 'r+');
      writeSync(fd, Buffer.from('corrupt!'), 0, 8, 4096);
      closeSync(fd);
      writeFileSync(`${path}.verified`, 'stale');
      await cachedPackage(pkg, (m) => messages.push(m));
      assert.match(messages[0] ?? '', /^The cached linux-kbuild-6\.1_.*\.deb is corrupt \(its SHA256 does not match the archive's\); downloading it again\.$/);
      assert.deepEqual(readFileSync(path), good);
    } finally {
      if (saved === undefined) delete process.env['TSPLICE_CACHE'];
      else process.env['TSPLICE_CACHE'] = saved;
    }
  });
});
