// The repository is tested with apt itself, as a machine of the fleet would use it: apt-get
// update verifies the signature and reads the indexes, apt-cache policy picks the candidate,
// apt-get download fetches from the pool. apt runs with a configuration of its own in a
// temporary folder (lists, cache, status, keys, sources), so the host's apt is not touched.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UserError } from '../host/errors.js';
import { probe, runSync, type ProbeResult } from '../host/exec.js';
import { writeAptRepository, type AptRepositoryOptions } from './apt-repository.js';
import { aptSourcesFile, aptSourcesLine } from './apt-sources.js';
import { exportPublicKey, newSigningKey, secretKeyIn, stopGpgAgent, type SigningKey } from './openpgp.js';

const PKG = 'tsplice-test-pkg';
const quiet = (): void => {};

/** A .deb of `tsplice-test-pkg` at `version`, holding one file that names the version. */
function buildDeb(root: string, version: string, content = version): string {
  const tree = join(root, `tree-${version}-${content.length}`);
  mkdirSync(join(tree, 'DEBIAN'), { recursive: true });
  mkdirSync(join(tree, 'usr/share', PKG), { recursive: true });
  writeFileSync(join(tree, 'DEBIAN/control'), `Package: ${PKG}\nVersion: ${version}\nArchitecture: all\nMaintainer: tsplice <tsplice@example.org>\nDescription: a package for the apt repository test\n`);
  writeFileSync(join(tree, 'usr/share', PKG, 'version'), `${content}\n`);
  const deb = join(root, `${PKG}-${version}-${content.length}.deb`);
  runSync(['dpkg-deb', '--root-owner-group', '--build', tree, deb]);
  return deb;
}

/** apt with its own folders under `root` and only the given sources; returns a runner. */
function isolatedApt(root: string, sources: { list?: string; deb822?: string }): (argv: string[]) => ProbeResult {
  const parts = join(root, 'sources.list.d');
  const empty = join(root, 'empty');
  for (const dir of [parts, empty, join(root, 'state/lists/partial'), join(root, 'cache/archives/partial')]) mkdirSync(dir, { recursive: true });
  writeFileSync(join(root, 'sources.list'), sources.list ? `${sources.list}\n` : '');
  if (sources.deb822) writeFileSync(join(parts, 'repo.sources'), sources.deb822);
  writeFileSync(join(root, 'status'), '');
  // APT_CONFIG is read first, so it can turn away /etc/apt/apt.conf and apt.conf.d too.
  const config = {
    'Dir::Etc::Main': '/dev/null',
    'Dir::Etc::Parts': empty,
    'Dir::Etc::SourceList': join(root, 'sources.list'),
    'Dir::Etc::SourceParts': parts,
    'Dir::Etc::Trusted': join(root, 'trusted.gpg'),
    'Dir::Etc::TrustedParts': empty,
    'Dir::Etc::Preferences': join(root, 'preferences'),
    'Dir::Etc::PreferencesParts': empty,
    'Dir::State': join(root, 'state'),
    'Dir::State::status': join(root, 'status'),
    'Dir::Cache': join(root, 'cache'),
    'Dir::Log': join(root, 'log'),
    // The file methods run as root: the _apt user cannot read a 0700 temporary folder.
    'APT::Sandbox::User': 'root',
    'APT::Architecture': 'amd64',
    'APT::Architectures': 'amd64',
    'Acquire::Languages': 'none',
  };
  const file = join(root, 'apt.conf');
  writeFileSync(file, Object.entries(config).map(([k, v]) => `${k} "${v}";\n`).join(''));
  return (argv) => probe(argv, { cwd: root, env: { ...process.env, APT_CONFIG: file, LC_ALL: 'C' } });
}

describe('a signed apt repository of tsplice packages', () => {
  let tmp: string;
  let key: SigningKey;
  let otherKey: SigningKey;
  let keyring: string;
  let deb10: string;
  let deb11: string;
  let repo: string;
  const options = (): AptRepositoryOptions => ({
    dir: repo, debs: [], suite: 'bookworm', origin: 'tsplice', label: 'tsplice updates',
    description: 'Rebootless kernel updates', architectures: ['all', 'amd64'], signing: key, log: quiet,
  });

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'tsplice-apt-'));
    repo = join(tmp, 'repo');
    key = { homeDir: join(tmp, 'gnupg'), fingerprint: '' };
    key.fingerprint = await newSigningKey(key.homeDir, 'tsplice test', 'test@tsplice.example', quiet);
    otherKey = { homeDir: join(tmp, 'gnupg-other'), fingerprint: '' };
    otherKey.fingerprint = await newSigningKey(otherKey.homeDir, 'someone else', 'else@example.org', quiet);
    keyring = join(tmp, 'tsplice.gpg');
    await exportPublicKey(key.homeDir, key.fingerprint, keyring);
    deb10 = buildDeb(tmp, '1.0');
    deb11 = buildDeb(tmp, '1.1');
    // First 1.0 alone, then both, as two releases would: the pool keeps 1.0.
    await writeAptRepository({ ...options(), debs: [deb10] });
    await writeAptRepository({ ...options(), debs: [deb10, deb11] });
  });

  after(async () => {
    for (const home of [key.homeDir, otherKey.homeDir]) await stopGpgAgent(home).catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('finds the one secret key of a folder, and refuses to choose between two', async () => {
    assert.equal(await secretKeyIn(key.homeDir), key.fingerprint);
    const two = join(tmp, 'gnupg-two');
    await newSigningKey(two, 'first', 'first@tsplice.example', quiet);
    await newSigningKey(two, 'second', 'second@tsplice.example', quiet);
    await assert.rejects(secretKeyIn(two), /holds 2 secret keys/);
    await stopGpgAgent(two);
  });

  it('makes an Ed25519 key and exports it as apt reads it', () => {
    assert.match(key.fingerprint, /^[0-9A-F]{40}$/);
    const listed = runSync(['gpg', '--show-keys', '--with-colons', keyring]).stdout;
    assert.match(listed, new RegExp(`^fpr:+${key.fingerprint}:`, 'm'));
    assert.match(listed, /^pub:.*:ed25519:/m);
  });

  it('is verified by apt, which picks the newest version as candidate', () => {
    const apt = isolatedApt(join(tmp, 'apt-ok'), { list: aptSourcesLine({ uri: `file://${repo}`, suite: 'bookworm', components: ['main'], signedBy: keyring }) });
    const update = apt(['apt-get', 'update']);
    assert.equal(update.status, 0, update.stdout + update.stderr);
    assert.doesNotMatch(update.stderr, /^[WE]:/m);
    // apt on amd64 asks for binary-all (Release lists `all`) and binary-amd64.
    assert.match(update.stdout, /bookworm\/main all Packages/);
    assert.match(update.stdout, /bookworm\/main amd64 Packages/);
    const policy = apt(['apt-cache', 'policy', PKG]);
    assert.equal(policy.status, 0, policy.stderr);
    assert.match(policy.stdout, /Candidate: 1\.1\n/);
    assert.match(policy.stdout, /^ +1\.0 500$/m);
  });

  it('serves the package from the pool path its index names (a deb822 source)', () => {
    const root = join(tmp, 'apt-download');
    // copy: is file: that also copies the file, so the download can be compared.
    const apt = isolatedApt(root, { deb822: aptSourcesFile({ uri: `copy://${repo}`, suite: 'bookworm', components: ['main'], signedBy: keyring, architectures: ['amd64'] }) });
    assert.equal(apt(['apt-get', 'update']).status, 0);
    const download = apt(['apt-get', 'download', `${PKG}=1.1`]);
    assert.equal(download.status, 0, download.stdout + download.stderr);
    assert.deepEqual(readFileSync(join(root, `${PKG}_1.1_all.deb`)), readFileSync(deb11));
    const packages = readFileSync(join(repo, 'dists/bookworm/main/binary-all/Packages'), 'utf8');
    assert.match(packages, new RegExp(`^Filename: pool/main/t/${PKG}/${PKG}_1\\.0_all\\.deb$`, 'm'));
  });

  it('is refused by apt when InRelease was changed after signing', () => {
    const copy = join(tmp, 'repo-tampered');
    cpSync(repo, copy, { recursive: true });
    const inRelease = join(copy, 'dists/bookworm/InRelease');
    writeFileSync(inRelease, readFileSync(inRelease, 'utf8').replace('Origin: tsplice', 'Origin: tampered'));
    const apt = isolatedApt(join(tmp, 'apt-tampered'), { list: `deb [signed-by=${keyring}] file://${copy} bookworm main` });
    const update = apt(['apt-get', 'update']);
    assert.notEqual(update.status, 0);
    assert.match(update.stderr, /BADSIG/);
    assert.match(update.stderr, /is not signed/);
  });

  it('is refused by apt when signed with another key', async () => {
    const other = join(tmp, 'repo-other-key');
    await writeAptRepository({ ...options(), dir: other, debs: [deb11], signing: otherKey });
    const apt = isolatedApt(join(tmp, 'apt-other-key'), { list: `deb [signed-by=${keyring}] file://${other} bookworm main` });
    const update = apt(['apt-get', 'update']);
    assert.notEqual(update.status, 0);
    assert.match(update.stderr, new RegExp(`NO_PUBKEY ${otherKey.fingerprint.slice(-16)}`));
  });

  it('has a Release.gpg that apt verifies when there is no InRelease', () => {
    const copy = join(tmp, 'repo-detached');
    cpSync(repo, copy, { recursive: true });
    rmSync(join(copy, 'dists/bookworm/InRelease'));
    const good = isolatedApt(join(tmp, 'apt-detached'), { list: `deb [signed-by=${keyring}] file://${copy} bookworm main` });
    const update = good(['apt-get', 'update']);
    assert.equal(update.status, 0, update.stdout + update.stderr);
    assert.match(good(['apt-cache', 'policy', PKG]).stdout, /Candidate: 1\.1\n/);
    const release = join(copy, 'dists/bookworm/Release');
    writeFileSync(release, readFileSync(release, 'utf8').replace('Label: tsplice updates', 'Label: tampered'));
    const bad = isolatedApt(join(tmp, 'apt-detached-tampered'), { list: `deb [signed-by=${keyring}] file://${copy} bookworm main` });
    const refused = bad(['apt-get', 'update']);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /BADSIG/);
  });

  it('refuses a different file under a version already published', async () => {
    const changed = buildDeb(tmp, '1.1', 'rebuilt differently');
    await assert.rejects(writeAptRepository({ ...options(), debs: [changed] }), (e: unknown) => e instanceof UserError && e.kind === 'file-exists' && /tsplice-test-pkg_1\.1_all\.deb is already published/.test(e.message));
  });
});
