/**
 * A fix to a module that is not loaded is proven against the module's file before anything is
 * locked, matched or loaded (proveOnDisk): a module with no file, or a file whose function is
 * not the pre code, is refused in one sentence naming module, function and offset.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SHF_ALLOC, SHF_EXECINSTR, SHT_PROGBITS, STB_LOCAL, STT_FUNC, STV_DEFAULT, writeElf } from '../elf/index.js';
import { UserError } from '../host/errors.js';
import { LoadedModules } from '../match/loaded-modules.js';
import { ModuleFiles } from '../match/module-targets.js';
import { sampleUpdate } from '../update/fixtures.js';
import { proveOnDisk } from './apply.js';

const RELEASE = '6.1.0-47-amd64';

/** The sample update with its one function moved into the module nf_tables. */
function moduleUpdate(): ReturnType<typeof sampleUpdate> {
  const update = sampleUpdate();
  for (const f of update.functions) f.module = 'nf_tables';
  return update;
}

/** /lib/modules with nf_tables.ko holding version_proc_show as `code` (none: no file at all). */
function filesWith(code?: number[]): ModuleFiles {
  const root = mkdtempSync(join(tmpdir(), 'tsplice-disk-'));
  const dir = join(root, 'lib/modules', RELEASE);
  mkdirSync(join(dir, 'kernel/net/netfilter'), { recursive: true });
  if (code) {
    const text = { name: '.text', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_EXECINSTR, addralign: 16, data: Uint8Array.from([0xcc, 0xcc, ...code]), relocations: [] };
    const fn = { name: 'version_proc_show', value: 2n, size: code.length, bind: STB_LOCAL, type: STT_FUNC, visibility: STV_DEFAULT, section: text };
    writeFileSync(join(dir, 'kernel/net/netfilter/nf_tables.ko'), writeElf({ sections: [text], symbols: [fn] }));
  }
  writeFileSync(join(dir, 'modules.dep'), code ? 'kernel/net/netfilter/nf_tables.ko:\n' : '');
  return new ModuleFiles(RELEASE, root);
}

const withNfTables = new LoadedModules([{ name: 'nf_tables', usedBy: [] }]);
const without = new LoadedModules([{ name: 'nft_ct', usedBy: [] }]);
/** The sample's pre code: the __fentry__ nop and a ret. */
const PRE = [0x0f, 0x1f, 0x44, 0x00, 0x00, 0xc3];

describe('apply and the files of modules that are not loaded', () => {
  it('passes an update of vmlinux functions, one of a loaded module, and one whose file holds the pre code', () => {
    assert.doesNotThrow(() => proveOnDisk(sampleUpdate(), without, undefined));
    assert.doesNotThrow(() => proveOnDisk(moduleUpdate(), withNfTables, undefined));
    assert.doesNotThrow(() => proveOnDisk(moduleUpdate(), without, filesWith(PRE)));
  });

  it('refuses a module that is neither loaded nor installed, naming module and function', () => {
    const update = moduleUpdate();
    const fn = update.functions[0] ?? assert.fail();
    assert.throws(
      () => proveOnDisk(update, without, filesWith()),
      (error: unknown) => {
        assert.ok(error instanceof UserError);
        assert.equal(error.kind, 'module-not-loaded');
        assert.equal(error.diagnostic.function, fn.name);
        assert.equal(error.diagnostic.object, 'nf_tables');
        assert.match(error.message, /^The update proc-version-string-3a7ff6ee replaces version_proc_show of the module nf_tables, which is not loaded and has no file in .*lib\/modules\/6\.1\.0-47-amd64 \(modules\.dep\)/);
        return true;
      },
    );
  });

  it('refuses a module whose file differs from the pre code, naming file, function and offset', () => {
    const differs = [...PRE];
    differs[5] = 0x90;
    assert.throws(
      () => proveOnDisk(moduleUpdate(), without, filesWith(differs)),
      (error: unknown) => {
        assert.ok(error instanceof UserError);
        assert.equal(error.kind, 'match-failed');
        assert.equal(error.diagnostic.function, 'version_proc_show');
        assert.equal(error.diagnostic.offset, 5);
        assert.match(error.diagnostic.object ?? '', /nf_tables\.ko$/);
        assert.match(error.message, /^version_proc_show of the module nf_tables: its file .*nf_tables\.ko differs from the update's pre code at \+0x5 /);
        return true;
      },
    );
  });
});
