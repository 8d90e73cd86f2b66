/**
 * A Debian 12 machine that stays fixed, end to end, on the booted stock kernel (issue 14): the
 * maintainer side makes two releases of 6.1.170-3 -> 6.1.176-1 fixes into a signed apt
 * repository beside tsplice's own package; a real Debian 12 guest (systemd, apt, Debian's
 * nodejs) subscribes to it over a file:// source and goes through an operator's life, in one
 * QEMU session of four boots of one disk:
 *
 *   boot 1  apt-get install tsplice, then the first updates package: the kernel/audit.c fix is
 *           applied live by the package's postinst, seen from user space (AUDIT_TRIM refused
 *           once audit is locked), `tsplice uname -r` says 6.1.176-1. A stand-in for a network
 *           service (fleet-probe.service) is enabled: it records what the kernel holds as it starts.
 *   boot 2  (a real reboot) tsplice.service applied the fix again before fleet-probe started;
 *           the newer package applies only what is new (fs/binfmt_elf.c). A one-shot unit is set
 *           to reset the machine (sysrq-b) while the next boot's tsplice.service is applying.
 *   (boot)  tsplice.service is applying when the machine resets: no script runs in this boot.
 *   boot 3  the crash guard held: the boot run skipped, said why, exited 0, applied nothing;
 *           `tsplice upgrade` by hand applies and clears it; `apt-get remove` undoes everything.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chooseRelease } from '../debian/kernel-choice.js';
import { aptSourcesFile } from '../debian/apt-sources.js';
import { exportPublicKey, newSigningKey, stopGpgAgent } from '../debian/openpgp.js';
import { run } from '../host/exec.js';
import { projectRoot } from '../host/project.js';
import { debianRoot } from '../../tools/lab/debian-root.js';
import { bootValues, runDebianGuest, type DebianRunResult } from '../../tools/lab/debian-guest.js';
import { buildTsplicePackage } from '../../tools/package/tsplice-deb.js';
import { makeRelease, updatesPackageName } from './release.js';
import { publishRelease, REPOSITORY_SUITE } from './publish.js';

const quiet = (): void => {};
const TO = '6.1.176-1';
const FIRST_FIX = 'kernel/audit.c';
const SECOND_FIX = 'fs/binfmt_elf.c';
const PROBE_RECORD = '/var/lib/fleet-probe.json';

interface ListedUpdate {
  id: string;
  state: string;
}

describe('a Debian machine that stays fixed (apt, reboots, a crash at boot)', () => {
  const share = mkdtempSync(join(tmpdir(), 'tsplice-fleet-'));
  after(() => rmSync(share, { recursive: true, force: true }));
  const read = (file: string): string => readFileSync(join(share, file), 'utf8');
  const readJson = <T>(file: string): T => JSON.parse(read(file)) as T;
  const appliedIds = (file: string): string[] => readJson<ListedUpdate[]>(file).filter((u) => u.state === 'applied').map((u) => u.id).sort();
  let release = '';
  let pkg = '';
  let firstVersion = '';
  let secondVersion = '';
  let firstIds: string[] = [];
  let secondIds: string[] = [];
  let result: DebianRunResult;

  before(async () => {
    release = await chooseRelease(undefined, quiet);
    pkg = updatesPackageName(release);
    const repo = join(share, 'repo');
    const gpgHome = join(share, 'gnupg');
    const fingerprint = await newSigningKey(gpgHome, 'tsplice test repository', 'fleet@tsplice.example', quiet);
    await exportPublicKey(gpgHome, fingerprint, join(share, 'repository-keyring.gpg'));
    const tool = await buildTsplicePackage(join(share, 'tool'));
    // Two releases of the same source step, as a maintainer reissues one with more fixes.
    const releaseOf = async (only: string[], revision: number): Promise<{ version: string; ids: string[] }> => {
      const outDir = join(share, `release-${revision}`);
      const made = await makeRelease({ kernel: release, to: TO, outDir, only, jobs: 2, log: quiet });
      await publishRelease(made, { outDir, revision, repoDir: repo, gpgHome, alsoPublish: [tool], log: quiet });
      return { version: made.manifest.package.version, ids: made.manifest.updates.map((u) => u.id).sort() };
    };
    ({ version: firstVersion, ids: firstIds } = await releaseOf([FIRST_FIX], 1));
    ({ version: secondVersion, ids: secondIds } = await releaseOf([FIRST_FIX, SECOND_FIX], 2));
    await stopGpgAgent(gpgHome);
    await run(['gcc', '-static', '-O2', '-o', join(share, 'audit-trim'), join(projectRoot(), 'test', 'corpus', 'demo', 'audit-trim.c')], { purpose: 'compiling audit-trim' });

    const sources = aptSourcesFile({ uri: `file://${repo}`, suite: REPOSITORY_SUITE, components: ['main'], signedBy: '/etc/apt/keyrings/tsplice.gpg' });
    const firstBoot = `
cd ${share}
# The guest has no way to Debian's archive: the tsplice repository is its only source.
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
mkdir -p /etc/apt/keyrings && cp repository-keyring.gpg /etc/apt/keyrings/tsplice.gpg
cat > /etc/apt/sources.list.d/tsplice.sources <<'EOF'
${sources.trimEnd()}
EOF
apt-get update -q; echo "apt_update=$?"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q tsplice; echo "install_tool=$?"
echo "service_enabled=$(systemctl is-enabled tsplice.service)"
./audit-trim lock | sed 's/^/before: /'
DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${pkg}=${firstVersion}; echo "install_first=$?"
echo "trim_after_install=$(./audit-trim)"
echo "uname_r=$(tsplice uname -r)"
tsplice list --json > list-1.json
cat > /etc/systemd/system/fleet-probe.service <<'EOF'
[Unit]
Description=Stand-in for a network-facing service: what the kernel holds as it starts
After=network.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'tsplice list --json > ${PROBE_RECORD}'
[Install]
WantedBy=multi-user.target
EOF
systemctl enable fleet-probe.service 2>/dev/null; echo "probe_enabled=$?"
`;
    const secondBoot = `
cd ${share}
cp ${PROBE_RECORD} probe-2.json
echo "tsplice_result=$(systemctl show -p Result --value tsplice.service)"
echo "tsplice_exited=$(systemctl show -p ExecMainExitTimestampMonotonic --value tsplice.service)"
echo "probe_started=$(systemctl show -p ExecMainStartTimestampMonotonic --value fleet-probe.service)"
echo "trim_after_reboot=$(./audit-trim lock | tail -n 1)"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${pkg}; echo "install_second=$?"
echo "installed_version=$(dpkg-query -W -f '\${Version}' ${pkg})"
tsplice list --json > list-2.json
# Next boot: reset the machine while tsplice.service is applying. Its crash-guard marker is
# made durable before each switch; the reset waits for the same (sync), as a crash in the
# switch comes after it: a reset between the marker's rename and the flush of its folder would
# test the disk, not the guard. The unit runs once: it takes itself out first.
cat > /usr/local/sbin/crash-during-apply <<'EOF'
#!/bin/sh
log=/var/lib/crash-during-apply.log
echo "started $(cat /proc/sys/kernel/random/boot_id)" >> $log
rm -f /etc/systemd/system/sysinit.target.wants/crash-during-apply.service; sync
i=0
while [ $i -lt 3000 ]; do
  if [ -e /var/lib/tsplice/applying.json ]; then echo "resetting after $i polls: $(cat /var/lib/tsplice/applying.json | tr -d '[:space:]')" >> $log; sync; echo b > /proc/sysrq-trigger; fi
  sleep 0.05; i=$((i+1))
done
echo "gave up" >> $log
EOF
chmod 755 /usr/local/sbin/crash-during-apply
cat > /etc/systemd/system/crash-during-apply.service <<'EOF'
[Unit]
Description=Reset the machine while tsplice.service applies (test)
DefaultDependencies=no
After=local-fs.target
Before=tsplice.service
[Service]
Type=simple
ExecStart=/usr/local/sbin/crash-during-apply
[Install]
WantedBy=sysinit.target
EOF
systemctl enable crash-during-apply.service 2>/dev/null; echo "crash_unit=$?"
`;
    const thirdBoot = `
cd ${share}
echo "crash_unit_left=$(ls /etc/systemd/system/sysinit.target.wants/ | grep -c crash-during-apply)"
sed 's/^/crash-log: /' /var/lib/crash-during-apply.log
echo "tsplice_result=$(systemctl show -p Result --value tsplice.service)"
tsplice status --json > status-3.json
tsplice list --json > list-3.json
journalctl -b -u tsplice.service --no-pager > journal-3.txt
tsplice upgrade; echo "manual_upgrade=$?"
tsplice list --json > list-3b.json
tsplice status --json > status-3b.json
echo "trim_before_remove=$(./audit-trim lock | tail -n 1)"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -q ${pkg}; echo "remove=$?"
tsplice list --json > list-3c.json
echo "trim_after_remove=$(./audit-trim)"
echo "uname_r=$(tsplice uname -r)"
`;
    result = await runDebianGuest({
      root: await debianRoot(release, quiet),
      shares: [share],
      boots: [firstBoot, secondBoot, thirdBoot],
      timeoutSeconds: 1800,
      ...(process.env['TSPLICE_TEST_VERBOSE'] ? {} : { onLine: quiet }),
    });
  });

  it('installs tsplice and the first updates package through apt, and the fix shows live', () => {
    const v = bootValues(result.boots[0]);
    assert.equal(v.get('apt_update'), '0');
    assert.equal(v.get('install_tool'), '0');
    assert.equal(v.get('service_enabled'), 'enabled');
    assert.ok(result.boots[0]?.lines.includes('before: AUDIT_TRIM with audit locked: ok'), 'the booted kernel performs AUDIT_TRIM while audit is locked');
    assert.equal(v.get('install_first'), '0');
    assert.equal(v.get('trim_after_install'), 'AUDIT_TRIM with audit locked: Operation not permitted');
    assert.equal(v.get('uname_r'), TO);
    assert.deepEqual(appliedIds('list-1.json'), firstIds);
  });

  it('applies the fixes again at boot, before the chosen service starts', () => {
    const v = bootValues(result.boots[1]);
    assert.equal(v.get('tsplice_result'), 'success');
    assert.deepEqual(appliedIds('probe-2.json'), firstIds);
    assert.ok(Number(v.get('tsplice_exited')) > 0 && Number(v.get('tsplice_exited')) < Number(v.get('probe_started')), `tsplice.service ended at ${v.get('tsplice_exited')} µs, fleet-probe started at ${v.get('probe_started')} µs`);
    assert.equal(v.get('trim_after_reboot'), 'AUDIT_TRIM with audit locked: Operation not permitted');
  });

  it('applies what is new when apt installs the newer package', () => {
    const v = bootValues(result.boots[1]);
    assert.equal(v.get('install_second'), '0');
    assert.equal(v.get('installed_version'), secondVersion);
    assert.ok(secondIds.length > firstIds.length);
    assert.deepEqual(appliedIds('list-2.json'), secondIds);
  });

  it('does not apply again in a loop after the machine died applying at boot', () => {
    const v = bootValues(result.boots[2]);
    assert.equal(v.get('crash_unit_left'), '0');
    const crashLog = (result.boots[2]?.lines ?? []).filter((l) => l.startsWith('crash-log: '));
    assert.ok(crashLog.some((l) => /resetting after \d+ polls: .*"action":"apply"/.test(l)), `the machine was reset while applying:\n${crashLog.join('\n')}`);
    const status = readJson<{ crashGuard?: { update: string; message: string }; lastBootRun?: { applied: string[]; guard?: { update: string }; note?: string } }>('status-3.json');
    assert.ok(status.crashGuard, `the crash guard tripped (status: ${JSON.stringify(status.lastBootRun)})`);
    assert.ok(secondIds.includes(status.crashGuard.update));
    assert.deepEqual(status.lastBootRun?.applied, []);
    assert.ok(status.lastBootRun?.guard);
    // The service said why, and did not fail the boot.
    assert.equal(v.get('tsplice_result'), 'success');
    assert.match(read('journal-3.txt'), /died while applying/);
    assert.deepEqual(appliedIds('list-3.json'), []);
    // The operator's run by hand applies them and clears the guard.
    assert.equal(v.get('manual_upgrade'), '0');
    assert.deepEqual(appliedIds('list-3b.json'), secondIds);
    assert.equal(readJson<{ crashGuard?: unknown }>('status-3b.json').crashGuard, undefined);
  });

  it('undoes every fix when apt removes the updates package', () => {
    const v = bootValues(result.boots[2]);
    assert.equal(v.get('trim_before_remove'), 'AUDIT_TRIM with audit locked: Operation not permitted');
    assert.equal(v.get('remove'), '0');
    assert.deepEqual(appliedIds('list-3c.json'), []);
    assert.equal(v.get('trim_after_remove'), 'AUDIT_TRIM with audit locked: ok');
    assert.equal(v.get('uname_r'), release);
  });
});
