import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sampleUpdate } from '../update/fixtures.js';
import { parseUpdate, serializeUpdate } from '../update/format.js';
import { shippedForm } from './shipped-form.js';

describe('shippedForm', () => {
  const made = { ...sampleUpdate(), coreModule: Buffer.from('the core module').toString('base64') };

  it('leaves out the post objects, and the core module unless it is given', () => {
    const later = shippedForm(made, undefined);
    assert.deepEqual(later.postObjects, []);
    assert.equal(later.coreModule, undefined);
    assert.equal('coreModule' in later, false);
    const first = shippedForm(made, made.coreModule);
    assert.equal(first.coreModule, made.coreModule);
    // Everything apply reads is as create made it.
    assert.deepEqual({ ...first, postObjects: made.postObjects }, made);
    assert.ok(made.postObjects.length > 0, 'the sample has post objects to leave out');
  });

  it('is a valid update file', () => {
    const shipped = shippedForm(made, undefined);
    assert.deepEqual(parseUpdate(serializeUpdate(shipped), 'shipped.tsplice'), shipped);
  });
});
