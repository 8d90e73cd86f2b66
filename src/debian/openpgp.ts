/**
 * The OpenPGP key that signs tsplice's apt repository, and the signatures apt checks, made
 * with gpg in a GNUPGHOME of their own so that a release never touches a person's keyring.
 * Ed25519: Debian 12's apt verifies it (gpgv 2.2), as does sqv in later releases, and its
 * signatures are small and quick; the key has no passphrase because a release runs unattended,
 * so the folder holding it is the secret (created 0700).
 */
import { mkdirSync } from 'node:fs';
import { extname } from 'node:path';
import { UserError } from '../host/errors.js';
import { run } from '../host/exec.js';
import type { Log } from '../host/log.js';
import { ensureHostPackages } from './apt.js';

/** A secret key in a gpg home folder, by its full fingerprint. */
export interface SigningKey {
  homeDir: string;
  fingerprint: string;
}

const toStderr: Log = (message) => process.stderr.write(`${message}\n`);

/** gpg's options for unattended use of one home folder; the loopback pinentry never asks. */
function gpg(homeDir: string): string[] {
  return ['gpg', '--homedir', homeDir, '--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', ''];
}

/** Makes a signing key (no expiry, no passphrase) in `homeDir` and returns its fingerprint. */
export async function newSigningKey(homeDir: string, name: string, email: string, log: Log = toStderr): Promise<string> {
  await ensureHostPackages(['gnupg'], log);
  mkdirSync(homeDir, { recursive: true, mode: 0o700 });
  // The status line KEY_CREATED names the new key even when the folder holds others.
  const { stdout } = await run([...gpg(homeDir), '--status-fd', '1', '--quick-generate-key', `${name} <${email}>`, 'ed25519', 'sign', 'never'], {
    purpose: `making a signing key in ${homeDir}`,
  });
  const created = /^\[GNUPG:\] KEY_CREATED [BP] ([0-9A-F]{40})$/m.exec(stdout);
  if (!created?.[1]) throw new UserError(`gpg made a key in ${homeDir} but did not say which.`, { kind: 'command-failed', object: homeDir });
  return created[1];
}

/**
 * Writes the public key for apt's `signed-by=`: apt reads a `.gpg` file as a binary keyring and
 * a `.asc` file as armored text, by the name alone, so the name decides the format here too.
 */
export async function exportPublicKey(homeDir: string, fingerprint: string, path: string): Promise<void> {
  const format = extname(path);
  if (format !== '.gpg' && format !== '.asc') {
    throw new UserError(`${path}: apt reads a keyring only from a .gpg (binary) or .asc (armored) file.`, { kind: 'bad-argument', object: path });
  }
  await run([...gpg(homeDir), '--yes', ...(format === '.asc' ? ['--armor'] : []), '--output', path, '--export', fingerprint], {
    purpose: `writing the public key ${fingerprint} to ${path}`,
  });
}

/**
 * Signs `input` into `output`: a clear-signed copy (InRelease) or an armored detached signature
 * (Release.gpg). SHA-512, since apt refuses SHA-1 signatures. The `!` makes gpg use exactly
 * this key, not a subkey of its choice.
 */
export async function signFile(key: SigningKey, input: string, output: string, form: 'clear' | 'detached'): Promise<void> {
  await run([...gpg(key.homeDir), '--yes', '--local-user', `${key.fingerprint}!`, '--digest-algo', 'SHA512', ...(form === 'clear' ? ['--clearsign'] : ['--detach-sign', '--armor']), '--output', output, input], {
    purpose: `signing ${input} with the key ${key.fingerprint}`,
  });
}

/** Stops the gpg-agent that gpg started for `homeDir` (it outlives the gpg commands). */
export async function stopGpgAgent(homeDir: string): Promise<void> {
  await run(['gpgconf', '--homedir', homeDir, '--kill', 'gpg-agent'], { purpose: `stopping the gpg-agent of ${homeDir}` });
}

/**
 * The fingerprint of the one secret key in `homeDir`: a release signs with the key of the
 * folder it is given, and refuses to guess between several.
 */
export async function secretKeyIn(homeDir: string): Promise<string> {
  const { stdout } = await run([...gpg(homeDir), '--with-colons', '--list-secret-keys'], { purpose: `listing the secret keys in ${homeDir}` });
  // Each key is a `sec` record followed by its `fpr` record; subkeys (`ssb`) have their own.
  const fingerprints: string[] = [];
  let afterSec = false;
  for (const line of stdout.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === 'fpr' && afterSec && fields[9]) fingerprints.push(fields[9]);
    afterSec = fields[0] === 'sec';
  }
  if (fingerprints.length !== 1) {
    throw new UserError(`${homeDir} holds ${fingerprints.length} secret keys; a repository is signed with the one key of its folder.`, { kind: 'bad-argument', object: homeDir });
  }
  return fingerprints[0] as string;
}
