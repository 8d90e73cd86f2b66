/**
 * The .deb writer against dpkg itself: a small package built, read back with `dpkg-deb -I` and
 * `-c`, installed into a throwaway root with `dpkg --root` (its postinst runs), and removed
 * (its prerm runs).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { UserError } from '../host/errors.js';
import { debFileName, writeDebPackage, type DebPackage } from './deb-package.js';

const dpkgDeb = (...args: string[]): string => execFileSync('dpkg-deb', args, { encoding: 'utf8' });

/** An empty dpkg database under `root`, as dpkg --root needs one. */
function throwawayRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'tsplice-dpkg-root-'));
  mkdirSync(join(root, 'var/lib/dpkg/info'), { recursive: true });
  mkdirSync(join(root, 'var/lib/dpkg/updates'), { recursive: true });
  writeFileSync(join(root, 'var/lib/dpkg/status'), '');
  return root;
}

describe('the .deb writer', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'tsplice-deb-test-'));
  const hostTree = join(scratch, 'tree');
  mkdirSync(join(hostTree, 'sub'), { recursive: true });
  writeFileSync(join(hostTree, 'a.js'), 'export const a = 1;\n');
  writeFileSync(join(hostTree, 'sub', 'run.sh'), '#!/bin/sh\necho run\n');
  chmodSync(join(hostTree, 'sub', 'run.sh'), 0o755);
  const hostFile = join(scratch, 'unit.service');
  writeFileSync(hostFile, '[Unit]\nDescription=test\n');
  // The scripts write where dpkg says the root is ($DPKG_ROOT under --root), so the test sees them run.
  const pkg: DebPackage = {
    name: 'tsplice-deb-test',
    version: '1:2.3-1+t1',
    architecture: 'all',
    maintainer: 'Test Maintainer <test@example.org>',
    description: 'a package the deb writer test builds\nIt installs three things.\n\nAnd has two paragraphs.',
    depends: ['nodejs (>= 18)', 'kmod'],
    section: 'admin',
    priority: 'optional',
    files: [
      { path: '/usr/bin/tsplice-deb-test', bytes: '#!/bin/sh\necho hello\n', mode: 0o755 },
      { path: '/usr/lib/tsplice-deb-test', from: hostTree },
      { path: '/lib/systemd/system/tsplice-deb-test.service', from: hostFile },
      { path: '/etc/tsplice-deb-test.conf', bytes: 'x=1\n' },
    ],
    conffiles: ['/etc/tsplice-deb-test.conf'],
    scripts: {
      postinst: '#!/bin/sh\nset -e\necho "postinst $1" >> "$DPKG_ROOT/var/lib/tsplice-deb-test.log"\n',
      prerm: '#!/bin/sh\nset -e\necho "prerm $1" >> "$DPKG_ROOT/var/lib/tsplice-deb-test.log"\n',
    },
  };
  let deb: string;

  it('builds a package dpkg-deb reads back: control fields, scripts, files owned by root with their modes', async () => {
    deb = await writeDebPackage(pkg, join(scratch, 'out'));
    assert.equal(basename(deb), 'tsplice-deb-test_2.3-1+t1_all.deb');
    const info = dpkgDeb('-I', deb);
    assert.match(info, /^ Package: tsplice-deb-test$/m);
    assert.match(info, /^ Version: 1:2\.3-1\+t1$/m);
    assert.match(info, /^ Depends: nodejs \(>= 18\), kmod$/m);
    assert.match(info, /^ Installed-Size: \d+$/m);
    assert.match(info, /^ Description: a package the deb writer test builds\n {2}It installs three things\.\n {2}\.\n {2}And has two paragraphs\.$/m);
    assert.match(info, /\d+ bytes, +\d+ lines +\* +postinst +#!\/bin\/sh/);
    assert.match(info, /\* +prerm +#!\/bin\/sh/);
    assert.equal(dpkgDeb('-f', deb, 'Architecture').trim(), 'all');
    const contents = dpkgDeb('-c', deb);
    assert.match(contents, /^-rwxr-xr-x root\/root .* \.\/usr\/bin\/tsplice-deb-test$/m);
    assert.match(contents, /^-rw-r--r-- root\/root .* \.\/usr\/lib\/tsplice-deb-test\/a\.js$/m);
    assert.match(contents, /^-rwxr-xr-x root\/root .* \.\/usr\/lib\/tsplice-deb-test\/sub\/run\.sh$/m);
    assert.match(contents, /\.\/lib\/systemd\/system\/tsplice-deb-test\.service$/m);
    assert.doesNotMatch(contents, /DEBIAN/);
  });

  it('installs into a throwaway root with dpkg --root, running its postinst, and removes it, running its prerm', () => {
    const root = throwawayRoot();
    // Scripts run outside a chroot (the root has no shell); dependencies are not there to satisfy.
    const dpkg = (...args: string[]): string => execFileSync('dpkg', [`--root=${root}`, '--force-script-chrootless', '--force-depends', '--force-not-root', ...args], { encoding: 'utf8', env: { ...process.env, PATH: process.env['PATH'] ?? '/usr/bin:/bin' } });
    dpkg('-i', deb);
    assert.equal(readFileSync(join(root, 'usr/bin/tsplice-deb-test'), 'utf8'), '#!/bin/sh\necho hello\n');
    assert.equal(statSync(join(root, 'usr/bin/tsplice-deb-test')).mode & 0o777, 0o755);
    assert.equal(readFileSync(join(root, 'usr/lib/tsplice-deb-test/sub/run.sh'), 'utf8'), '#!/bin/sh\necho run\n');
    assert.match(dpkg('-s', 'tsplice-deb-test'), /^Status: install ok installed$/m);
    assert.equal(readFileSync(join(root, 'var/lib/tsplice-deb-test.log'), 'utf8'), 'postinst configure\n');
    dpkg('-r', 'tsplice-deb-test');
    assert.equal(existsSync(join(root, 'usr/bin/tsplice-deb-test')), false);
    assert.equal(existsSync(join(root, 'etc/tsplice-deb-test.conf')), true, 'remove keeps conffiles (purge removes them)');
    assert.equal(readFileSync(join(root, 'var/lib/tsplice-deb-test.log'), 'utf8'), 'postinst configure\nprerm remove\n');
  });

  it('refuses a description that is not a package, before writing anything', async () => {
    const refused = (p: DebPackage, pattern: RegExp) => assert.rejects(writeDebPackage(p, join(scratch, 'bad')), (e: unknown) => e instanceof UserError && pattern.test(e.message));
    await refused({ ...pkg, name: 'Bad_Name' }, /name "Bad_Name" is not a Debian package name/);
    await refused({ ...pkg, version: 'v1' }, /version "v1" is not a Debian version/);
    await refused({ ...pkg, files: [{ path: '/usr/../etc/x', bytes: '' }] }, /path "\/usr\/\.\.\/etc\/x" is not an absolute path/);
    await refused({ ...pkg, conffiles: ['/etc/other'] }, /conffiles name \/etc\/other, which the package does not install/);
    assert.equal(existsSync(join(scratch, 'bad')), false);
    assert.equal(debFileName({ name: 'x', version: '2:1.0', architecture: 'amd64' }), 'x_1.0_amd64.deb');
  });
});
