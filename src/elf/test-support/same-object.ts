// Compares two parsed relocatable objects for round-trip tests: everything
// must be equal except file offsets and the sizes of the two string tables the
// writer lays out on its own (binutils shares name tails; we do not).

import assert from 'node:assert/strict';

import { SHT_REL, SHT_RELA, SHT_STRTAB, SHT_SYMTAB } from '../constants.js';
import type { ElfFile } from '../types.js';

export function assertSameObject(actual: ElfFile, expected: ElfFile): void {
  assert.deepEqual(
    actual.sections.map((s) => s.name),
    expected.sections.map((s) => s.name),
    'section names and order',
  );
  for (const e of expected.sections) {
    const a = actual.sections[e.index];
    assert.ok(a !== undefined);
    const what = `section ${e.index} (${e.name})`;
    assert.equal(a.type, e.type, `${what} type`);
    assert.equal(a.flags, e.flags, `${what} flags`);
    assert.equal(a.addr, e.addr, `${what} addr`);
    assert.equal(a.addralign, e.addralign, `${what} addralign`);
    assert.equal(a.entsize, e.entsize, `${what} entsize`);
    assert.equal(a.link, e.link, `${what} link`);
    assert.equal(a.info, e.info, `${what} info`);
    if (e.type === SHT_STRTAB) continue; // compared through the names that use them
    assert.equal(a.size, e.size, `${what} size`);
    if (e.type !== SHT_SYMTAB && e.type !== SHT_RELA && e.type !== SHT_REL) {
      assert.ok(Buffer.from(a.data).equals(Buffer.from(e.data)), `${what} contents`);
    }
  }
  assert.deepEqual(actual.symbols, expected.symbols, 'symbols');
  for (const e of expected.sections) {
    if (e.type === SHT_RELA || e.type === SHT_REL) {
      assert.deepEqual(actual.relocations(actual.sections[e.index] ?? assert.fail()), expected.relocations(e), `relocations of ${e.name}`);
    }
  }
}
