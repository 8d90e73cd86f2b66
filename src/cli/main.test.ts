/**
 * How the CLI reports a failure, through the real program: one sentence on stderr and a
 * non-zero exit; with --json, the same failure as fields on stdout, where programs read it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DwarfError } from '../elf/dwarf/index.js';
import { FormatError } from '../elf/index.js';
import { projectRoot } from '../host/project.js';
import { serializeUpdate } from '../update/format.js';
import { sampleUpdate } from '../update/fixtures.js';

const cli = join(projectRoot(), 'bin', 'tsplice.js');
const dir = mkdtempSync(join(tmpdir(), 'tsplice-cli-'));

function tsplice(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, bytes: Buffer | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

interface ErrorJson {
  error: { kind: string; object?: string; unit?: string; function?: string; section?: string; offset?: string; reason: string; message: string };
}

describe('a failure on the command line', () => {
  const flipped = serializeUpdate(sampleUpdate());
  const at = flipped.indexOf('version_proc_show');
  flipped[at] = (flipped[at] as number) ^ 0x20;
  const damaged = file('flipped.tsplice', flipped);
  const notAnUpdate = file('not-an-update.tsplice', '\x7fELF\x02\x01\x01\nrest\n');

  it('is one sentence on stderr, nothing on stdout, and a non-zero exit', () => {
    const r = tsplice(['inspect', damaged]);
    assert.notEqual(r.status, 0);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `tsplice: ${damaged}: offset 0x11: the content hash does not match: the file is damaged or was edited.\n`);
  });

  it('with --json, is the diagnostic on stdout: kind, object, hex offset, reason and the sentence', () => {
    const r = tsplice(['inspect', damaged, '--json']);
    assert.notEqual(r.status, 0);
    assert.deepEqual(JSON.parse(r.stdout) as ErrorJson, {
      error: {
        kind: 'bad-update',
        object: damaged,
        offset: '0x11',
        reason: 'the content hash does not match: the file is damaged or was edited',
        message: `${damaged}: offset 0x11: the content hash does not match: the file is damaged or was edited.`,
      },
    });
    // The sentence still goes to stderr, for the person.
    assert.match(r.stderr, /^tsplice: .*the content hash does not match/);
  });

  it('names a file that is not an update, at offset 0x0', () => {
    const r = tsplice(['inspect', notAnUpdate, '--json']);
    assert.notEqual(r.status, 0);
    const { error } = JSON.parse(r.stdout) as ErrorJson;
    assert.equal(error.kind, 'bad-update');
    assert.equal(error.object, notAnUpdate);
    assert.equal(error.offset, '0x0');
    assert.match(error.reason, /^not a tsplice update \(header /);
  });

  it('names a malformed object file by the same fields (diff --json)', () => {
    const garbage = file('garbage.o', Buffer.alloc(64, 0x41));
    const r = tsplice(['diff', garbage, garbage, '--json']);
    assert.notEqual(r.status, 0);
    const { error } = JSON.parse(r.stdout) as ErrorJson;
    assert.equal(error.kind, 'malformed-elf');
    assert.equal(error.object, garbage);
    assert.match(error.offset ?? '', /^0x[0-9a-f]+$/);
  });

  it('names the flag and what was typed when a number is not one (--tries abc)', () => {
    // Checked before the update file is read, so the missing file does not matter.
    const r = tsplice(['apply', join(dir, 'missing.tsplice'), '--tries', 'abc', '--json']);
    assert.notEqual(r.status, 0);
    const { error } = JSON.parse(r.stdout) as ErrorJson;
    assert.equal(error.kind, 'bad-argument');
    assert.equal(error.reason, '--tries takes a whole number from 1 to 1000, not "abc"');
  });

  it('reports an object it cannot read with kind cannot-read', () => {
    const r = tsplice(['diff', join(dir, 'missing.o'), join(dir, 'missing.o'), '--json']);
    assert.notEqual(r.status, 0);
    assert.equal((JSON.parse(r.stdout) as ErrorJson).error.kind, 'cannot-read');
  });
});

it('DWARF and ELF errors have the one shape', () => {
  const dwarf = new DwarfError('.debug_info', 0x1c, 'unsupported DWARF version 9').inObject('kernel/sys.o');
  assert.equal(dwarf.message, 'kernel/sys.o: .debug_info at offset 0x1c: unsupported DWARF version 9');
  assert.deepEqual(dwarf.diagnostic, { kind: 'malformed-dwarf', object: 'kernel/sys.o', section: '.debug_info', offset: 0x1c, reason: 'unsupported DWARF version 9' });
  const elf = new FormatError('section header 12 extends past end of file', 0x1a40, 'fs/proc/version.o');
  assert.deepEqual(elf.diagnostic, { kind: 'malformed-elf', object: 'fs/proc/version.o', offset: 0x1a40, reason: 'section header 12 extends past end of file' });
});
