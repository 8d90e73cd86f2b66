/**
 * Signed updates. The sha256 in an update's header is a checksum: anyone who can edit the file
 * can recompute it, and an update carries two kernel modules. A maintainer's Ed25519 key signs
 * the header's digest line (which covers the body), and a target trusts the public keys its
 * administrator put in /etc/tsplice/keys (docs/update-format.md, "Signatures").
 *
 * Keys are PEM files made by Node's crypto: the private key PKCS#8 (mode 0600), the public key
 * SPKI beside it as FILE.pub. A key is named by its id: the first 16 hex digits of the sha256
 * of the public key's DER encoding.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { UserError } from '../host/errors.js';

/** What a signature line holds: `signature ed25519 <key id> <base64>`. */
export interface UpdateSignature {
  keyId: string;
  bytes: Buffer;
}

/** The message a signature covers: the format and the body's digest, nothing else. */
export function signedMessage(formatVersion: number, digestHex: string): Buffer {
  return Buffer.from(`TSPLICE-UPDATE ${formatVersion} sha256 ${digestHex}`);
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

/** `tsplice key new FILE`: FILE (private, 0600) and FILE.pub; returns the key id. */
export function newKeyPair(path: string): string {
  for (const p of [path, `${path}.pub`]) if (existsSync(p)) throw new UserError(`${p} exists already; choose another name (a key is never overwritten).`, { kind: 'file-exists', object: p });
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(`${path}.pub`, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
  return keyIdOf(publicKey);
}

/** A signing key from its PEM file. */
export function readPrivateKey(path: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(path));
  } catch (e) {
    throw new UserError(`${path}: not a private key tsplice can sign with (${(e as Error).message}).`, { kind: 'bad-key', object: path });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new UserError(`${path}: a ${key.asymmetricKeyType ?? 'unknown'} key; tsplice signs with Ed25519 keys ('tsplice key new').`, { kind: 'bad-key', object: path });
  return key;
}

/** A public key from its PEM file. */
export function readPublicKey(path: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(readFileSync(path));
  } catch (e) {
    throw new UserError(`${path}: not a public key (${(e as Error).message}).`, { kind: 'bad-key', object: path });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new UserError(`${path}: a ${key.asymmetricKeyType ?? 'unknown'} key, not Ed25519.`, { kind: 'bad-key', object: path });
  return key;
}

/** The signature line's text (without its newline). */
export function signatureLine(formatVersion: number, digestHex: string, privateKey: KeyObject): string {
  const publicKey = createPublicKey(privateKey);
  return `signature ed25519 ${keyIdOf(publicKey)} ${sign(null, signedMessage(formatVersion, digestHex), privateKey).toString('base64')}`;
}

/** Parses a signature line; undefined when the line is not one. */
export function parseSignatureLine(line: string): UpdateSignature | undefined {
  const m = /^signature ed25519 ([0-9a-f]{16}) ([A-Za-z0-9+/]{86}==)$/.exec(line);
  return m?.[1] && m[2] ? { keyId: m[1], bytes: Buffer.from(m[2], 'base64') } : undefined;
}

export function signatureValid(formatVersion: number, digestHex: string, signature: UpdateSignature, publicKey: KeyObject): boolean {
  return keyIdOf(publicKey) === signature.keyId && verify(null, signedMessage(formatVersion, digestHex), publicKey, signature.bytes);
}
