import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { CpioArchive } from './cpio.js';

it('writes a newc archive that GNU cpio unpacks with parents, modes, symlinks and odd sizes', () => {
  const archive = new CpioArchive()
    .file('/opt/a/b/hello.txt', 'hello\n')
    .file('/bin/tool', Buffer.from([1, 2, 3]), 0o755)
    .symlink('/usr/bin/tool', '/bin/tool')
    .directory('/empty/dir');
  const dir = mkdtempSync(join(tmpdir(), 'tsplice-cpio-'));
  const r = spawnSync('cpio', ['-idm', '--quiet'], { cwd: dir, input: archive.toBuffer() });
  assert.equal(r.status, 0, r.stderr.toString());
  assert.equal(readFileSync(join(dir, 'opt/a/b/hello.txt'), 'utf8'), 'hello\n');
  assert.deepEqual([...readFileSync(join(dir, 'bin/tool'))], [1, 2, 3]);
  assert.equal(statSync(join(dir, 'bin/tool')).mode & 0o777, 0o755);
  assert.equal(readlinkSync(join(dir, 'usr/bin/tool')), '/bin/tool');
  assert.ok(statSync(join(dir, 'empty/dir')).isDirectory());
});

it('lists each directory once, before what it holds', () => {
  const archive = new CpioArchive().file('/x/y/1', 'a').file('/x/y/2', 'b').file('/x/z', 'c');
  const listing = spawnSync('cpio', ['-t', '--quiet'], { input: archive.toBuffer(), encoding: 'utf8' }).stdout.trim().split('\n');
  assert.deepEqual(listing, ['x', 'x/y', 'x/y/1', 'x/y/2', 'x/z']);
});
