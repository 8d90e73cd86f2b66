/**
 * The update file: a round trip, and every damaged or ill-shaped file refused in one sentence
 * naming the file (and the offset or field), never a TypeError or a stack trace. The mutants
 * are made deterministically from a small well-formed update: truncations, bytes flipped in the
 * header, the digest and the body, and bodies that hash right but have the wrong shape.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { UserError } from '../host/errors.js';
import { type UpdatePackage, parseUpdate, parseUpdateFile, serializeUpdate } from './format.js';
import { sampleUpdate } from './fixtures.js';
import { rehashed, updateMutants } from './mutants.js';
import { readPrivateKey, newKeyPair } from './signature.js';

const sample = sampleUpdate;

/** One sentence: a UserError naming the file, one line, no stack trace in the message. */
function assertRefused(bytes: Buffer, what: string): string {
  let message = '';
  try {
    parseUpdate(bytes, 'x.tsplice');
  } catch (e) {
    assert.ok(e instanceof UserError, `${what}: ${(e as Error).name}: ${(e as Error).message}`);
    message = e.message;
    assert.equal(e.kind, 'bad-update', `${what}: ${message}`);
    assert.equal(e.diagnostic.object, 'x.tsplice', `${what}: ${message}`);
  }
  assert.ok(message, `${what}: was accepted`);
  assert.ok(message.startsWith('x.tsplice: '), `${what}: ${message}`);
  assert.ok(!message.includes('\n') && !/ at .*:\d+:\d+/.test(message), `${what}: ${message}`);
  return message;
}

describe('the update file', () => {
  it('round-trips', () => {
    const update = sample();
    assert.deepEqual(parseUpdate(serializeUpdate(update), 'x.tsplice'), update);
  });

  it('refuses a flipped byte in the body with the offset of the digest line', () => {
    const bytes = serializeUpdate(sample());
    const at = bytes.indexOf('version_proc_show');
    bytes[at] = (bytes[at] as number) ^ 0x20;
    assert.equal(assertRefused(bytes, 'flipped'), 'x.tsplice: offset 0x11: the content hash does not match: the file is damaged or was edited.');
  });

  it('refuses an unknown format version and a file that is not an update', () => {
    const bytes = Buffer.from(serializeUpdate(sample()).toString('latin1').replace('TSPLICE-UPDATE 1', 'TSPLICE-UPDATE 2'), 'latin1');
    assert.match(assertRefused(bytes, 'format 2'), /update format 2 is not supported \(this tsplice reads format 1\)/);
    assert.match(assertRefused(Buffer.from('\x7fELF\x02\x01\x01\nrest\n'), 'ELF'), /offset 0x0: not a tsplice update/);
  });

  it('refuses a body that hashes right but has the wrong shape, naming the field', () => {
    const wrongFormat = { ...sample(), format: 2 };
    assert.equal(assertRefused(rehashed(wrongFormat), 'body format 2'), 'x.tsplice: not an update of format 1: body.format is not format 1.');
    const noFormat: Partial<UpdatePackage> = sample();
    delete noFormat.format;
    assert.match(assertRefused(rehashed(noFormat), 'no format'), /body\.format is not present/);
    const badSize = sample();
    (badSize.functions[0] as unknown as { post: { size: string } }).post.size = 'ten';
    assert.match(assertRefused(rehashed(badSize), 'size'), /body\.functions\[0\]\.post\.size is not a whole number/);
    assert.match(assertRefused(rehashed({ ...sample(), id: 'undefined id' }), 'id'), /body\.id is not an update id/);
    const escape = sample();
    (escape.functions[0] as { name: string }).name = 'version_proc_show\x1b[2J';
    assert.match(assertRefused(rehashed(escape), 'escape'), /body\.functions\[0\]\.name is not a string of 1 to 4096 printable characters/);
  });

  it('derives the module name from the id and refuses any other, such as a path', () => {
    for (const name of ['../../etc/evil', 'tsplice_other']) {
      const u = sample();
      (u.module as { name: string }).name = name;
      assert.match(assertRefused(rehashed(u), name), /body\.module\.name is (not a module name|".*", not tsplice_proc_version_string_3a7ff6ee)/);
    }
  });

  it('keeps the module of a unit, a function and an external, and refuses a module name that is not one', () => {
    const u = sample();
    (u.units[0] as { module?: string }).module = 'nf_tables';
    (u.functions[0] as { module?: string }).module = 'nf_tables';
    const external = u.module?.externals[0];
    if (external) external.module = 'nf_tables';
    assert.deepEqual(parseUpdate(serializeUpdate(u), 'x.tsplice'), u);
    const bad = sample();
    (bad.functions[0] as { module?: string }).module = 'nf-tables/../x';
    assert.match(assertRefused(rehashed(bad), 'module name'), /body\.functions\[0\]\.module is not a module name/);
  });

  it('round-trips a signed file, and refuses a signature line of the wrong form by its offset', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tsplice-key-')), 'k');
    const keyId = newKeyPair(path);
    const signed = serializeUpdate(sample(), readPrivateKey(path));
    const file = parseUpdateFile(signed, 'x.tsplice');
    assert.deepEqual(file.update, sample());
    assert.equal(file.signature?.keyId, keyId);
    const broken = Buffer.from(signed.toString('latin1').replace(/^signature ed25519 [0-9a-f]{16} /m, 'signature ed25519 xyz '), 'latin1');
    const at = signed.indexOf('signature ');
    assert.equal(assertRefused(broken, 'signature form'), `x.tsplice: offset 0x${at.toString(16)}: the signature line is not 'signature ed25519 <key id> <signature>'.`);
  });

  it('refuses 300 mutants, each in one sentence, none with a TypeError', () => {
    const kinds = new Map<string, number>();
    let made = 0;
    for (const { kind, bytes } of updateMutants(sample(), 300, 0x7ab1ce)) {
      assertRefused(bytes, `${kind} #${made}`);
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      made++;
    }
    assert.equal(made, 300);
    process.stdout.write(`mutants refused: ${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}\n`);
  });
});
