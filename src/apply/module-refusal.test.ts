/**
 * An update that replaces a function of a loadable module is refused by apply and match before
 * anything is locked, matched or loaded, naming the module and the function: create records
 * module functions, but applying them is not built yet.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserError } from '../host/errors.js';
import { sampleUpdate } from '../update/fixtures.js';
import { applyUpdate, refuseModuleFunctions } from './apply.js';

/** The sample update with its one function moved into the module nf_tables. */
function moduleUpdate(): ReturnType<typeof sampleUpdate> {
  const update = sampleUpdate();
  for (const f of update.functions) f.module = 'nf_tables';
  return update;
}

describe('apply refuses updates of module functions', () => {
  it('passes an update of vmlinux functions', () => {
    assert.doesNotThrow(() => refuseModuleFunctions(sampleUpdate()));
  });

  it('refuses one with a module function in one sentence naming module and function', async () => {
    const update = moduleUpdate();
    const name = update.functions[0]?.name;
    await assert.rejects(applyUpdate(update), (error: unknown) => {
      assert.ok(error instanceof UserError);
      assert.equal(error.kind, 'module-update-unsupported');
      assert.equal(error.diagnostic.function, name);
      assert.equal(error.message, `The update ${update.id} replaces ${name} of the module nf_tables; tsplice does not yet apply updates to loadable modules.`);
      return true;
    });
  });
});
