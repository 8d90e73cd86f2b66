import assert from 'node:assert/strict';
import { it } from 'node:test';
import { parseUpdate, serializeUpdate, UPDATE_FORMAT_VERSION, type UpdatePackage } from './format.js';

const update: UpdatePackage = {
  format: UPDATE_FORMAT_VERSION,
  id: 'u1',
  createdAt: '2026-11-26T00:00:00.000Z',
  target: { release: '6.1.0-47-amd64', sourceVersion: '6.1.170-3' },
  patches: [],
  units: [],
  functions: [{ name: 'f', status: 'new', unit: 'a.c', section: '.text.f', post: { size: 1, bytes: 'ww==', relocations: [] } }],
  data: [],
  specialEntries: [],
  lineNumbersOnly: [],
  postObjects: [],
};

it('round-trips an update through its file form', () => {
  assert.deepEqual(parseUpdate(serializeUpdate(update), 'u.tsplice'), update);
});

it('refuses a damaged file, another format version and a file that is no update', () => {
  const bytes = serializeUpdate(update);
  const damaged = Buffer.from(bytes);
  damaged.writeUInt8(damaged.readUInt8(damaged.length - 5) ^ 1, damaged.length - 5);
  assert.throws(() => parseUpdate(damaged, 'u.tsplice'), /^UserError: u\.tsplice: offset 17: the content hash does not match/);
  const newer = Buffer.from(bytes.toString('latin1').replace(`TSPLICE-UPDATE ${UPDATE_FORMAT_VERSION}`, 'TSPLICE-UPDATE 99'), 'latin1');
  assert.throws(() => parseUpdate(newer, 'u.tsplice'), /update format 99 is not supported/);
  assert.throws(() => parseUpdate(Buffer.from('\x7fELF\n\n'), 'x.o'), /x\.o: offset 0: not a tsplice update/);
});
