/** The installed manifest's reader: what the release side writes is read back; anything else is one sentence. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { UserError } from '../host/errors.js';
import { sampleManifest } from './fixtures.js';
import { parseInstalledManifest, readInstalledManifest } from './installed-manifest.js';

const refusal = (text: string, pattern: RegExp) =>
  assert.throws(
    () => parseInstalledManifest(text, '/u/manifest.json'),
    (e: unknown) => e instanceof UserError && e.kind === 'bad-manifest' && pattern.test(e.message) && !e.message.includes('\n') && e.message.startsWith('/u/manifest.json: '),
  );
const edited = (edit: (m: Record<string, unknown>) => void): string => {
  const m = JSON.parse(JSON.stringify(sampleManifest())) as Record<string, unknown>;
  edit(m);
  return JSON.stringify(m);
};

describe('the installed manifest', () => {
  it('reads back what the release side writes', () => {
    assert.deepEqual(parseInstalledManifest(JSON.stringify(sampleManifest()), 'm.json'), sampleManifest());
  });

  it('refuses a bad field in one sentence naming the file and the field', () => {
    refusal('{', /the manifest is not valid JSON/);
    refusal('[]', /the manifest is not an object/);
    refusal(edited((m) => (m['format'] = 2)), /format is not 1/);
    refusal(edited((m) => delete m['to']), /: to is not a Debian version\.$/);
    refusal(edited((m) => ((m['updates'] as Record<string, unknown>[])[1]!['sha256'] = 'xyz')), /updates\[1\]\.sha256 is not 64 lower-case hex digits/);
    refusal(edited((m) => ((m['updates'] as Record<string, unknown>[])[0]!['file'] = '../../etc/passwd')), /updates\[0\]\.file is not a file name in the manifest folder/);
    refusal(edited((m) => ((m['updates'] as Record<string, unknown>[])[1]!['id'] = 'kernel-audit-c-1a2b')), /updates\[1\]\.id is not unique/);
    refusal(edited((m) => ((m['files'] as Record<string, unknown>[])[1]!['outcome'] = 'maybe')), /files\[1\]\.outcome is not one of live, needs-new-code, needs-reboot/);
    refusal(edited((m) => ((m['files'] as Record<string, unknown>[])[0]!['update'] = 'other-id')), /files\[0\]\.update is not an update the manifest lists/);
    refusal(edited((m) => (m['extra'] = true)), /extra is not a field of this manifest format/);
    refusal(edited((m) => ((m['package'] as Record<string, unknown>)['version'] = 3)), /package\.version is not a Debian version/);
  });

  it('is absent when no package is installed, and refused when its folder names another kernel', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsplice-manifest-'));
    assert.equal(readInstalledManifest(dir, '6.1.0-47-amd64'), undefined);
    mkdirSync(join(dir, '6.1.0-47-amd64'));
    writeFileSync(join(dir, '6.1.0-47-amd64', 'manifest.json'), JSON.stringify(sampleManifest()));
    assert.equal(readInstalledManifest(dir, '6.1.0-47-amd64')?.to, '6.1.176-1');
    mkdirSync(join(dir, '6.1.0-48-amd64'));
    writeFileSync(join(dir, '6.1.0-48-amd64', 'manifest.json'), JSON.stringify(sampleManifest()));
    assert.throws(() => readInstalledManifest(dir, '6.1.0-48-amd64'), /kernel is 6\.1\.0-47-amd64, but the folder is for 6\.1\.0-48-amd64/);
  });
});
