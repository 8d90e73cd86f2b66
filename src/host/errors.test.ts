import assert from 'node:assert/strict';
import { it } from 'node:test';
import { UserError, diagnosticJson, sentenceOf } from './errors.js';

it('builds the sentence from the fields: place first, offset in hex, then the reason', () => {
  assert.equal(sentenceOf({ object: 'a.o', section: '.debug_info', offset: 28, reason: 'unsupported DWARF version 9' }), 'a.o: .debug_info at offset 0x1c: unsupported DWARF version 9');
  assert.equal(sentenceOf({ object: 'u.tsplice', offset: 17, reason: 'the content hash does not match' }), 'u.tsplice: offset 0x11: the content hash does not match');
  assert.equal(sentenceOf({ unit: 'kernel/sys.c', function: 'f', reason: 'changed' }), 'kernel/sys.c: f: changed');
});

it('prints a diagnostic as JSON with the offset in hex and no absent fields', () => {
  assert.deepEqual(diagnosticJson({ kind: 'bad-update', object: 'u.tsplice', offset: 17, reason: 'damaged' }), { kind: 'bad-update', object: 'u.tsplice', offset: '0x11', reason: 'damaged' });
});

it('keeps a given sentence, takes the reason from it by default, and is classified once', () => {
  const plain = new UserError('Something broke.');
  assert.equal(plain.kind, 'unclassified');
  // The reason is a clause: the sentence without its full stop.
  assert.equal(plain.diagnostic.reason, 'Something broke');
  assert.equal(plain.classify({ kind: 'match-failed', function: 'f' }), plain);
  assert.deepEqual(plain.diagnostic, { kind: 'match-failed', function: 'f', reason: 'Something broke' });
  // A kind the raiser gave is not overridden.
  assert.equal(plain.classify({ kind: 'busy' }).kind, 'match-failed');
  assert.equal(plain.message, 'Something broke.');
  const more = new UserError('Two things.', { kind: 'layout-change', reason: 'a' }, { more: [{ kind: 'init-change', reason: 'b' }] });
  assert.deepEqual(more.diagnostics.map((d) => d.kind), ['layout-change', 'init-change']);
  assert.equal(String(more), 'UserError: Two things.');
});
