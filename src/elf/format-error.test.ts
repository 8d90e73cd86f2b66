import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { FormatError } from './format-error.js';

describe('FormatError', () => {
  it('names the file and the offset in hex', () => {
    const e = new FormatError('section header 12 extends past end of file', 0x1a40, 'fs/proc/version.o');
    assert.equal(e.message, 'fs/proc/version.o: offset 0x1a40: section header 12 extends past end of file');
    assert.equal(e.offset, 0x1a40);
    assert.equal(e.file, 'fs/proc/version.o');
    assert.equal(e.detail, 'section header 12 extends past end of file');
    assert.equal(e.name, 'FormatError');
    assert.ok(e instanceof Error);
  });

  it('omits the file when not given', () => {
    assert.equal(new FormatError('bad magic number', 0).message, 'offset 0x0: bad magic number');
  });
});
