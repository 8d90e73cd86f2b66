/** The effective-version rule and the uname line made from it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sampleManifest } from '../update/fixtures.js';
import { debianVersionOf, effectiveVersion, effectiveVersionLine, type HeldUpdate } from './effective-version.js';

const PROC_VERSION = 'Linux version 6.1.0-47-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.170-3 (2026-04-20)\n';
const applied: HeldUpdate = { state: 'applied', waiting: [], refused: [] };

describe('the effective version', () => {
  const manifest = sampleManifest();
  const [audit, nft] = manifest.updates.map((u) => u.id) as [string, string];

  it('reads the Debian version of /proc/version, not of the compiler', () => {
    assert.equal(debianVersionOf(PROC_VERSION), '6.1.170-3');
    assert.equal(debianVersionOf('Linux version 6.8.0 (me@host) #1 SMP'), undefined);
  });

  it('is the booted version without a package, or while an update is missing', () => {
    assert.deepEqual(effectiveVersion(undefined, '6.1.170-3', new Map()), { booted: '6.1.170-3', effective: '6.1.170-3', raised: false, missing: [] });
    const one = effectiveVersion(manifest, '6.1.170-3', new Map([[audit, applied]]));
    assert.equal(one.effective, '6.1.170-3');
    assert.deepEqual(one.missing, [`${nft} is not applied`]);
    const reverted = effectiveVersion(manifest, '6.1.170-3', new Map([[audit, applied], [nft, { ...applied, state: 'reverted' }]]));
    assert.deepEqual(reverted.missing, [`${nft} is reverted, not applied`]);
  });

  it("is the manifest's `to` when every update is applied, a module part waiting or not", () => {
    const v = effectiveVersion(manifest, '6.1.170-3', new Map([[audit, applied], [nft, { ...applied, waiting: ['nft_ct_get_eval [nft_ct]'] }]]));
    assert.deepEqual(v, { booted: '6.1.170-3', effective: '6.1.176-1', raised: true, missing: [] });
  });

  it('is not raised by a part the kernel refused, nor for a kernel built as another version', () => {
    const refused = effectiveVersion(manifest, '6.1.170-3', new Map([[audit, applied], [nft, { ...applied, refused: ['nft_ct_get_eval [nft_ct]: bytes-changed'] }]]));
    assert.equal(refused.raised, false);
    assert.match(refused.missing[0] ?? '', /refused nft_ct_get_eval \[nft_ct\]/);
    const other = effectiveVersion(manifest, '6.1.170-2', new Map([[audit, applied], [nft, applied]]));
    assert.equal(other.effective, '6.1.170-2');
    assert.match(other.missing[0] ?? '', /are for Debian 6\.1\.170-3, but the kernel was built as 6\.1\.170-2/);
  });

  it('rewrites the version line only when raised', () => {
    const line = '#1 SMP PREEMPT_DYNAMIC Debian 6.1.170-3 (2026-04-20)';
    const raised = effectiveVersion(manifest, '6.1.170-3', new Map([[audit, applied], [nft, applied]]));
    assert.equal(effectiveVersionLine(line, raised), '#1 SMP PREEMPT_DYNAMIC Debian 6.1.176-1 (tsplice; booted 6.1.170-3)');
    assert.equal(effectiveVersionLine(line, effectiveVersion(manifest, '6.1.170-3', new Map())), line);
  });
});
