/**
 * An update that replaces a function of a module that is not loaded is refused by apply and
 * match before anything is locked, matched or loaded, naming the module and the function.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserError } from '../host/errors.js';
import { LoadedModules } from '../match/loaded-modules.js';
import { sampleUpdate } from '../update/fixtures.js';
import { refuseUnloadedModules } from './apply.js';

/** The sample update with its one function moved into the module nf_tables. */
function moduleUpdate(): ReturnType<typeof sampleUpdate> {
  const update = sampleUpdate();
  for (const f of update.functions) f.module = 'nf_tables';
  return update;
}

const withNfTables = new LoadedModules([{ name: 'nf_tables', usedBy: [] }]);
const without = new LoadedModules([{ name: 'nft_ct', usedBy: [] }]);

describe('apply and the modules an update replaces functions of', () => {
  it('passes an update of vmlinux functions, and one of a loaded module', () => {
    assert.doesNotThrow(() => refuseUnloadedModules(sampleUpdate(), without));
    assert.doesNotThrow(() => refuseUnloadedModules(moduleUpdate(), withNfTables));
  });

  it('refuses one of a module that is not loaded in one sentence naming module and function', () => {
    const update = moduleUpdate();
    const fn = update.functions[0] ?? assert.fail();
    assert.throws(
      () => refuseUnloadedModules(update, without),
      (error: unknown) => {
        assert.ok(error instanceof UserError);
        assert.equal(error.kind, 'module-not-loaded');
        assert.equal(error.diagnostic.function, fn.name);
        assert.equal(error.diagnostic.object, 'nf_tables');
        assert.equal(error.diagnostic.unit, fn.unit);
        assert.equal(
          error.message,
          `The update ${update.id} replaces ${fn.name} of the module nf_tables, which is not loaded: load it first ('modprobe nf_tables'); tsplice applies fixes to loaded modules only.`,
        );
        return true;
      },
    );
  });
});
