/**
 * Which updates a target applies. The administrator puts the public keys it trusts in
 * /etc/tsplice/keys/*.pub. When that folder holds a key, an update must be signed by one of
 * them: an unsigned one, one signed by another key, or one whose signature does not match is
 * refused in one sentence before anything is loaded. When it holds none, updates apply with a
 * one-line warning, as unsigned kernel modules load on a kernel without enforced module
 * signatures (docs/update-format.md, "Signatures").
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../host/errors.js';
import { UPDATE_FORMAT_VERSION, type UpdateFile } from '../update/format.js';
import { keyIdOf, readPublicKey, signatureValid } from '../update/signature.js';

export const TRUSTED_KEYS_DIR = '/etc/tsplice/keys';

export interface TrustVerdict {
  /** The trusted key that signed it. */
  signedBy?: string;
  /** Said once on stderr when nothing was checked. */
  warning?: string;
}

/** Checks `file` (read from `path`) against the keys in `dir`; throws when it is refused. */
export function checkTrust(file: UpdateFile, path: string, dir = TRUSTED_KEYS_DIR): TrustVerdict {
  const keyFiles = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.pub')).sort() : [];
  const keys = keyFiles.map((f) => readPublicKey(join(dir, f)));
  const id = file.update.id;
  if (keys.length === 0) {
    return {
      warning: file.signature
        ? `warning: update ${id} is signed by key ${file.signature.keyId}, but ${dir} holds no trusted key, so the signature is not checked`
        : `warning: update ${id} is not signed, and ${dir} holds no trusted key, so updates are not checked`,
    };
  }
  if (!file.signature) {
    throw new UserError(`${path}: update ${id} is not signed, and ${dir} trusts ${keys.length} key(s): refused, nothing was loaded.`, { kind: 'untrusted', object: path, reason: 'not signed' });
  }
  const signature = file.signature;
  const key = keys.find((k) => keyIdOf(k) === signature.keyId);
  if (!key) {
    throw new UserError(`${path}: update ${id} is signed by key ${signature.keyId}, which ${dir} does not trust: refused, nothing was loaded.`, {
      kind: 'untrusted',
      object: path,
      reason: `signed by key ${signature.keyId}, which ${dir} does not trust`,
    });
  }
  if (!signatureValid(UPDATE_FORMAT_VERSION, file.digest, signature, key)) {
    throw new UserError(`${path}: the signature of key ${signature.keyId} does not match update ${id}: refused, nothing was loaded.`, {
      kind: 'untrusted',
      object: path,
      reason: `the signature of key ${signature.keyId} does not match`,
    });
  }
  return { signedBy: signature.keyId };
}
