/**
 * What a module defines and which dependency exports a name, read from a /lib/modules tree
 * of small module files our ELF writer makes (module-targets.ts).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SHF_ALLOC, SHF_EXECINSTR, SHN_UNDEF, SHT_PROGBITS, STB_GLOBAL, STB_LOCAL, STT_FUNC, STT_OBJECT, STV_DEFAULT, writeElf } from '../elf/index.js';
import { UserError } from '../host/errors.js';
import { KernelSymbols } from './kallsyms.js';
import { LoadedModules } from './loaded-modules.js';
import { combinedTargets, kallsymsTargets, ModuleFiles, moduleNameOfFile } from './module-targets.js';

const RELEASE = '6.1.0-47-amd64';

/** A module file defining `defined` (functions) and exporting `exported`, and using `undefinedNames`. */
function moduleFile(defined: string[], exported: string[] = [], undefinedNames: string[] = []): Uint8Array {
  const text = { name: '.text', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_EXECINSTR, addralign: 16, data: new Uint8Array(16), relocations: [] };
  const ksymtab = { name: '___ksymtab+x', type: SHT_PROGBITS, flags: SHF_ALLOC, addralign: 4, data: new Uint8Array(12), relocations: [] };
  const symbol = (name: string, bind: number, type: number, section: typeof text | number) => ({ name, value: 0n, size: 1, bind, type, visibility: STV_DEFAULT, section });
  return writeElf({
    sections: [text, ksymtab],
    symbols: [
      ...defined.map((n) => symbol(n, STB_LOCAL, STT_FUNC, text)),
      ...exported.map((n) => symbol(`__ksymtab_${n}`, STB_LOCAL, STT_OBJECT, ksymtab)),
      ...undefinedNames.map((n) => symbol(n, STB_GLOBAL, STT_FUNC, SHN_UNDEF)),
    ],
  });
}

/** A /lib/modules/RELEASE tree: nft_ct depends on nf_tables and nf_conntrack; binfmt_misc on nothing. */
function tree(): string {
  const root = mkdtempSync(join(tmpdir(), 'tsplice-modules-'));
  const dir = join(root, 'lib/modules', RELEASE);
  mkdirSync(join(dir, 'kernel/net/netfilter'), { recursive: true });
  mkdirSync(join(dir, 'kernel/fs'), { recursive: true });
  writeFileSync(join(dir, 'kernel/net/netfilter/nft_ct.ko'), moduleFile(['nft_ct_get_eval', 'ct_helper'], [], ['nf_ct_expect_put']));
  writeFileSync(join(dir, 'kernel/net/netfilter/nf_tables.ko'), moduleFile(['nft_register_expr'], ['nft_register_expr']));
  writeFileSync(join(dir, 'kernel/net/netfilter/nf_conntrack.ko'), moduleFile(['nf_ct_expect_put'], ['nf_ct_expect_put']));
  writeFileSync(join(dir, 'kernel/fs/binfmt_misc.ko'), moduleFile(['bm_status_read'], ['bm_exported']));
  writeFileSync(join(dir, 'kernel/fs/zstd-thing.ko.zst'), new Uint8Array(4));
  writeFileSync(
    join(dir, 'modules.dep'),
    [
      'kernel/net/netfilter/nft_ct.ko: kernel/net/netfilter/nf_tables.ko kernel/net/netfilter/nf_conntrack.ko',
      'kernel/net/netfilter/nf_tables.ko:',
      'kernel/net/netfilter/nf_conntrack.ko:',
      'kernel/fs/binfmt_misc.ko:',
      'kernel/fs/zstd-thing.ko.zst:',
      '',
    ].join('\n'),
  );
  return root;
}

describe('module files and what they define', () => {
  it('names a module by its file, dashes read as underscores', () => {
    assert.equal(moduleNameOfFile('kernel/fs/binfmt_misc.ko'), 'binfmt_misc');
    assert.equal(moduleNameOfFile('kernel/drivers/x/snd-hda-intel.ko.xz'), 'snd_hda_intel');
  });

  it('finds a module\'s file and dependencies in modules.dep', () => {
    const files = new ModuleFiles(RELEASE, tree());
    assert.match(files.path('nft_ct') ?? '', /kernel\/net\/netfilter\/nft_ct\.ko$/);
    assert.match(files.path('binfmt-misc') ?? '', /binfmt_misc\.ko$/);
    assert.equal(files.path('xt_cpu'), undefined);
    assert.deepEqual(files.dependencies('nft_ct'), ['nf_tables', 'nf_conntrack']);
  });

  it('answers what a module defines and which dependency exports a name, from the files', () => {
    const targets = new ModuleFiles(RELEASE, tree()).targets();
    assert.equal(targets.defines('nft_ct', 'ct_helper'), true);
    assert.equal(targets.defines('nft_ct', '__this_module'), true);
    // Used, not defined: the module's undefined symbols are not its own.
    assert.equal(targets.defines('nft_ct', 'nf_ct_expect_put'), false);
    assert.equal(targets.exporter('nft_ct', 'nf_ct_expect_put'), 'nf_conntrack');
    assert.equal(targets.exporter('nft_ct', 'nft_register_expr'), 'nf_tables');
    // binfmt_misc exports bm_exported, but nft_ct does not depend on it.
    assert.equal(targets.exporter('nft_ct', 'bm_exported'), undefined);
  });

  it('refuses a compressed module file and a module modules.dep does not list, by name', () => {
    const files = new ModuleFiles(RELEASE, tree());
    assert.throws(() => files.elf('zstd_thing'), (e: unknown) => e instanceof UserError && e.kind === 'unsupported-file' && /zstd-thing\.ko\.zst is compressed/.test(e.message));
    assert.throws(() => files.elf('xt_cpu'), (e: unknown) => e instanceof UserError && e.kind === 'missing-file' && e.diagnostic.object === 'xt_cpu');
    assert.throws(() => new ModuleFiles('no-such-release', tree()), (e: unknown) => e instanceof UserError && e.kind === 'cannot-read' && /modules\.dep/.test(e.message));
  });

  it('asks the running kernel about loaded modules and the files about the others', () => {
    const loaded = new LoadedModules([{ name: 'binfmt_misc', usedBy: [] }]);
    const running = kallsymsTargets(new KernelSymbols([{ name: 'bm_running_only', type: 't', runningAddress: 0x1000n, module: 'binfmt_misc' }]), loaded);
    const targets = combinedTargets(loaded, running, new ModuleFiles(RELEASE, tree()).targets());
    assert.equal(targets.defines('binfmt_misc', 'bm_running_only'), true);
    assert.equal(targets.defines('binfmt_misc', 'bm_status_read'), false);
    assert.equal(targets.defines('nft_ct', 'nft_ct_get_eval'), true);
  });
});
