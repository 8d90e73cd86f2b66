/**
 * tsplice's own Debian package, built from this (compiled) repository: what it holds, that the
 * CLI it installs runs from the unpacked tree, that its unit is one systemd accepts, and what
 * its postinst does (deb-systemd-helper and systemctl replaced by stubs that log their calls).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { projectRoot } from '../../src/host/project.js';
import { buildTsplicePackage } from './tsplice-deb.js';

describe("tsplice's Debian package", async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'tsplice-package-test-'));
  const deb = await buildTsplicePackage(join(scratch, 'out'));
  const root = join(scratch, 'root');
  execFileSync('dpkg', ['-x', deb, root]);

  it('holds the CLI, its production dependencies, the unit and the launcher, and no tests or lab', () => {
    assert.match(deb, /\/tsplice_\d+\.\d+\.\d+-1_amd64\.deb$/);
    const contents = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8', maxBuffer: 1 << 24 });
    for (const path of ['./usr/bin/tsplice', './lib/systemd/system/tsplice.service', './usr/lib/tsplice/bin/tsplice.js', './usr/lib/tsplice/dist/src/cli/main.js', './usr/lib/tsplice/node_modules/commander/package.json', './usr/lib/tsplice/package.json']) {
      assert.match(contents, new RegExp(` ${path.replace(/\./g, '\\.')}$`, 'm'), path);
    }
    assert.doesNotMatch(contents, /\/dist\/src\/.*\.test\.js|\/dist\/tools\/|node_modules\/(typescript|eslint)\//);
    assert.match(execFileSync('dpkg-deb', ['-f', deb, 'Depends'], { encoding: 'utf8' }), /^nodejs \(>= 18\.19\), kmod$/m);
    assert.equal(readFileSync(join(root, 'usr/bin/tsplice'), 'utf8').split('\n').find((l) => l.startsWith('exec')), 'exec /usr/bin/node /usr/lib/tsplice/bin/tsplice.js "$@"');
  });

  it('runs from the unpacked tree: the target commands are there, the lab is not', () => {
    const cli = join(root, 'usr/lib/tsplice/bin/tsplice.js');
    const help = execFileSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
    for (const command of ['apply', 'upgrade', 'withdraw', 'status', 'uname']) assert.match(help, new RegExp(`^  ${command}\\b`, 'm'), command);
    assert.doesNotMatch(help, /^ {2}lab\b/m);
    const state = join(scratch, 'state');
    const status = spawnSync(process.execPath, [cli, 'status', '--json', '--dir', join(root, 'usr/lib/tsplice/updates')], { encoding: 'utf8', env: { ...process.env, TSPLICE_STATE_DIR: state } });
    assert.equal(status.status, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { kernel: { release: string } }).kernel.release, release());
  });

  it('installs a unit systemd accepts: oneshot upgrade --boot, early, before the network', () => {
    const unit = readFileSync(join(root, 'lib/systemd/system/tsplice.service'), 'utf8');
    for (const line of ['Type=oneshot', 'RemainAfterExit=yes', 'ExecStart=/usr/bin/tsplice upgrade --boot', 'DefaultDependencies=no', 'After=local-fs.target systemd-modules-load.service', 'Before=network-pre.target sysinit.target', 'Wants=network-pre.target', 'WantedBy=sysinit.target']) {
      assert.match(unit, new RegExp(`^${line.replace(/[.+]/g, '\\$&')}$`, 'm'), line);
    }
    if (!existsSync('/usr/bin/systemd-analyze')) return;
    // systemd-analyze prints a line for each key or value it does not understand.
    const verify = spawnSync('systemd-analyze', ['verify', `--root=${root}`, '/lib/systemd/system/tsplice.service'], { encoding: 'utf8' });
    assert.equal(`${verify.stdout}${verify.stderr}`, '');
    assert.equal(verify.status, 0);
  });

  it('postinst makes its folders and enables the unit through deb-systemd-helper, and postrm purge removes the state', () => {
    const stubs = join(scratch, 'stubs');
    const log = join(scratch, 'calls.log');
    mkdirSync(stubs);
    for (const program of ['deb-systemd-helper', 'systemctl']) {
      writeFileSync(join(stubs, program), `#!/bin/sh\necho "${program} $*" >> "${log}"\n[ "$2" = was-enabled ] && exit 0\nexit 0\n`);
      chmodSync(join(stubs, program), 0o755);
    }
    const target = join(scratch, 'target');
    const env = { ...process.env, DPKG_ROOT: target, PATH: `${stubs}:${process.env['PATH'] ?? '/usr/bin:/bin'}` };
    execFileSync('sh', [join(projectRoot(), 'packaging/tsplice.postinst'), 'configure'], { env });
    assert.ok(existsSync(join(target, 'etc/tsplice/keys')));
    assert.ok(existsSync(join(target, 'var/lib/tsplice')));
    const calls = readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('deb-systemd-helper'));
    assert.deepEqual(calls, ['deb-systemd-helper unmask tsplice.service', 'deb-systemd-helper --quiet was-enabled tsplice.service', 'deb-systemd-helper enable tsplice.service']);
    execFileSync('sh', [join(projectRoot(), 'packaging/tsplice.postrm'), 'purge'], { env });
    assert.equal(existsSync(join(target, 'var/lib/tsplice')), false);
    assert.ok(existsSync(join(target, 'etc/tsplice/keys')), "the administrator's keys stay");
    assert.match(readFileSync(log, 'utf8'), /^deb-systemd-helper purge tsplice\.service$/m);
  });
});
