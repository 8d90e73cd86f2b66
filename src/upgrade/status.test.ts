/** The status assembly: the package's updates as the kernel holds them, the files not fixed live, the guard. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sampleManifest } from '../update/fixtures.js';
import type { CoreStatus, CoreUpdate } from '../switch/core-status.js';
import { statusText, tspliceStatus, type StatusInputs } from './status.js';

const PROC_VERSION = 'Linux version 6.1.0-47-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.170-3 (2026-04-20)\n';
const held = (id: string, extra: Partial<CoreUpdate> = {}): CoreUpdate => ({ id, state: 'applied', functions: [], parts: [], hooks: [], attempts: 1, pauseNs: 1, callNs: 1, waitNs: 0, tasks: 1, ...extra });
const core = (updates: CoreUpdate[]): CoreStatus => ({ version: 1, applied: updates.length, lockedDown: false, updates });

function inputs(extra: Partial<StatusInputs>): StatusInputs {
  return {
    release: '6.1.0-47-amd64',
    procVersion: PROC_VERSION,
    versionLine: '#1 SMP PREEMPT_DYNAMIC Debian 6.1.170-3 (2026-04-20)',
    manifest: sampleManifest(),
    core: undefined,
    record: { format: 1, bootId: 'this-boot', applied: [] },
    bootId: 'this-boot',
    marker: undefined,
    lastBootRun: undefined,
    ...extra,
  };
}

describe('tsplice status', () => {
  const [audit, nft] = sampleManifest().updates.map((u) => u.id) as [string, string];

  it('shows each shipped update as the kernel holds it, and the effective version', () => {
    const waitingPart = { name: 'nft_ct_get_eval', module: 'nft_ct', state: 'waiting' as const, loads: 0, preSize: 10, newAddress: 1n, pinned: false };
    const s = tspliceStatus(inputs({ core: core([held(audit), held(nft, { parts: [waitingPart] }), held('by-hand-fix')]), record: { format: 1, bootId: 'this-boot', applied: [{ id: audit, kernel: '6.1.0-47-amd64', package: 'p 1', at: 'now' }] } }));
    assert.deepEqual(s.updates.map((u) => [u.id, u.state, u.byUpgrade]), [[audit, 'applied', true], [nft, 'waiting', false]]);
    assert.deepEqual(s.updates[1]?.waiting, ['nft_ct_get_eval [nft_ct]']);
    assert.equal(s.effective.effective, '6.1.176-1');
    assert.deepEqual(s.others, [{ id: 'by-hand-fix', state: 'applied' }]);
    assert.deepEqual(s.notApplicable, [{ path: 'mm/slab.h', outcome: 'needs-reboot', reason: 'a changed structure layout' }]);
    assert.match(statusText(s), /effective version Debian 6\.1\.176-1/);
  });

  it('names what is missing, and a crash guard of another boot', () => {
    const s = tspliceStatus(inputs({ core: core([held(audit)]), marker: { bootId: 'dead-boot', update: nft, action: 'apply', since: 't' } }));
    assert.equal(s.effective.effective, '6.1.170-3');
    assert.deepEqual(s.effective.missing, [`${nft} is not applied`]);
    assert.match(s.crashGuard?.message ?? '', /boot dead-boot died while applying/);
    assert.match(statusText(s), /^CRASH GUARD: boot dead-boot died .* run 'tsplice upgrade' by hand/m);
    assert.equal(tspliceStatus(inputs({ marker: { bootId: 'this-boot', update: nft, action: 'apply', since: 't' } })).crashGuard, undefined);
  });
});
