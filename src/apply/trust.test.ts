/**
 * The target's trust policy for signed updates, against real Ed25519 keys made by
 * `tsplice key new` in a scratch folder standing in for /etc/tsplice/keys.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { UserError } from '../host/errors.js';
import { sampleUpdate } from '../update/fixtures.js';
import { parseUpdateFile, serializeUpdate } from '../update/format.js';
import { newKeyPair, readPrivateKey } from '../update/signature.js';
import { checkTrust } from './trust.js';

describe('which updates a target trusts', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'tsplice-trust-'));
  const trusted = join(scratch, 'maintainer');
  const stranger = join(scratch, 'stranger');
  const trustedId = newKeyPair(trusted);
  const strangerId = newKeyPair(stranger);
  const keysDir = join(scratch, 'keys');
  mkdirSync(keysDir);
  renameSync(`${trusted}.pub`, join(keysDir, 'maintainer.pub'));
  const emptyDir = join(scratch, 'no-keys');
  const file = (key?: string) => parseUpdateFile(serializeUpdate(sampleUpdate(), key ? readPrivateKey(key) : undefined), 'u.tsplice');
  const refused = (f: () => unknown, pattern: RegExp) =>
    assert.throws(f, (e: unknown) => e instanceof UserError && pattern.test(e.message) && !e.message.includes('\n'));

  it('with no trusted key, applies signed and unsigned updates with a one-line warning', () => {
    assert.match(checkTrust(file(), 'u.tsplice', emptyDir).warning ?? '', /^warning: update \S+ is not signed, and .* holds no trusted key/);
    assert.match(checkTrust(file(trusted), 'u.tsplice', emptyDir).warning ?? '', new RegExp(`signed by key ${trustedId}, but .* so the signature is not checked`));
  });

  it('with a trusted key, applies only what that key signed', () => {
    assert.deepEqual(checkTrust(file(trusted), 'u.tsplice', keysDir), { signedBy: trustedId });
    refused(() => checkTrust(file(), 'u.tsplice', keysDir), /^u\.tsplice: update \S+ is not signed, and .* trusts 1 key\(s\): refused, nothing was loaded\.$/);
    refused(() => checkTrust(file(stranger), 'u.tsplice', keysDir), new RegExp(`signed by key ${strangerId}, which .* does not trust`));
  });

  it('refuses a signature that does not match the body it came with', () => {
    const signed = file(trusted);
    const other = parseUpdateFile(serializeUpdate({ ...sampleUpdate(), createdAt: '2030-01-01T00:00:00.000Z' }), 'u.tsplice');
    refused(() => checkTrust({ ...other, ...(signed.signature ? { signature: signed.signature } : {}) }, 'u.tsplice', keysDir), /the signature of key \S+ does not match update/);
  });
});
