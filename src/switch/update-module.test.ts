/**
 * Giving an update module's external references their running addresses
 * (update-module.ts), on a small object our ELF writer makes: what binds to what in
 * /proc/kallsyms, and what is refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { modelFromElf, parseElf, SHF_ALLOC, SHF_EXECINSTR, SHN_ABS, SHN_UNDEF, SHT_PROGBITS, STB_GLOBAL, STT_NOTYPE, STV_DEFAULT, writeElf } from '../elf/index.js';
import { UserError } from '../host/errors.js';
import { KernelSymbols, type KernelSymbol } from '../match/kallsyms.js';
import { LoadedModules } from '../match/loaded-modules.js';
import { learnedKey, moduleLearnedKey, type LearnedSymbol } from '../match/run-pre.js';
import type { UpdatePackage } from '../update/format.js';
import { MODULE_NAME_OFFSET, resolveUpdateModule, THIS_MODULE_SECTION } from './update-module.js';

/**
 * An update whose module refers to one external, `name` (a static of kernel/a.c when `local`);
 * with `inModule`, a reference of a unit of that loadable module, as create names those.
 */
function updateReferring(name: string, local: boolean, moduleName = 'tsplice_test', inModule?: string): UpdatePackage {
  const text = { name: '.text', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_EXECINSTR, addralign: 16, data: Uint8Array.from([0xc3]), relocations: [] };
  const symbol = { name: local || inModule ? `${name}.tsplice.u0` : name, value: 0n, size: 0, bind: STB_GLOBAL, type: STT_NOTYPE, visibility: STV_DEFAULT, section: SHN_UNDEF };
  const bytes = writeElf({ sections: [text, thisModule(moduleName)], symbols: [symbol] });
  const external = { symbol: symbol.name, name, unit: inModule ? 'net/netfilter/a.c' : 'kernel/a.c', local, ...(inModule ? { module: inModule } : {}) };
  const module = { name: 'tsplice_test', bytes: Buffer.from(bytes).toString('base64'), externals: [external] };
  return { id: 'test', module } as unknown as UpdatePackage;
}

/** A struct module's bytes, as far as its name, in the section the loader reads it from. */
function thisModule(name: string) {
  const data = new Uint8Array(MODULE_NAME_OFFSET + 56 + 8);
  data.set(Buffer.from(name, 'latin1'), MODULE_NAME_OFFSET);
  return { name: THIS_MODULE_SECTION, type: SHT_PROGBITS, flags: SHF_ALLOC, addralign: 64, data, relocations: [] };
}

/** /proc/kallsyms lines: name, type letter, address and, for a module's symbol, the module. */
const kallsyms = (...symbols: ([string, string, bigint] | [string, string, bigint, string])[]): KernelSymbols =>
  new KernelSymbols(symbols.map(([name, type, runningAddress, module]): KernelSymbol => ({ name, type, runningAddress, ...(module ? { module } : {}) })));

/** nft_ct uses nf_tables and nf_conntrack; binfmt_misc is loaded beside them. */
const LOADED = new LoadedModules([
  { name: 'nft_ct', usedBy: [] },
  { name: 'nf_tables', usedBy: ['nft_ct'] },
  { name: 'nf_conntrack', usedBy: ['nft_ct'] },
  { name: 'libcrc32c', usedBy: ['nf_tables', 'nf_conntrack'] },
  { name: 'binfmt_misc', usedBy: [] },
]);

function resolvedAddress(update: UpdatePackage, symbols: KernelSymbols, learned: Map<string, LearnedSymbol> = new Map()): bigint | undefined {
  const { bytes } = resolveUpdateModule(update, symbols, learned, LOADED);
  const name = update.module?.externals[0]?.symbol;
  const symbol = modelFromElf(parseElf(Buffer.from(bytes), 'out.ko')).symbols.find((s) => s.name === name);
  return symbol?.section === SHN_ABS ? symbol.value : undefined;
}

describe('resolving an update module', () => {
  it('binds a global reference to the global of that name, not to a static of another unit', () => {
    assert.equal(resolvedAddress(updateReferring('helper', false), kallsyms(['helper', 't', 0x1000n], ['helper', 'T', 0x2000n])), 0x2000n);
    assert.throws(() => resolveUpdateModule(updateReferring('helper', false), kallsyms(['helper', 't', 0x1000n]), new Map()), /global helper, which the running kernel has only as a static/);
  });

  it('binds a static of the update\'s unit to the one static of that name', () => {
    // fs/notify/fsnotify.c makes fsnotify_next_mark global for mark.c: the running kernel has its static.
    assert.equal(resolvedAddress(updateReferring('fsnotify_next_mark', true), kallsyms(['fsnotify_next_mark', 't', 0x3000n])), 0x3000n);
    assert.throws(() => resolveUpdateModule(updateReferring('fsnotify_next_mark', true), kallsyms(['fsnotify_next_mark', 't', 0x3000n], ['fsnotify_next_mark', 't', 0x4000n]), new Map()), /2 times, and matching did not tell which one/);
    assert.throws(
      () => resolveUpdateModule(updateReferring('fsnotify_next_mark', true), kallsyms(['fsnotify_next_mark', 't', 0x3000n], ['fsnotify_next_mark', 't', 0x4000n]), new Map()),
      (e: unknown) => e instanceof UserError && e.kind === 'ambiguous' && e.diagnostic.function === 'fsnotify_next_mark' && e.diagnostic.unit === 'kernel/a.c',
    );
  });

  it('refuses a module whose struct module names another module than its id gives', () => {
    assert.throws(() => resolveUpdateModule(updateReferring('helper', false, 'tsplice_other'), kallsyms(['helper', 'T', 0x2000n]), new Map()), /calls itself "tsplice_other" in its \.gnu\.linkonce\.this_module, not tsplice_test/);
  });

  it('names a reference the running kernel does not have', () => {
    assert.throws(() => resolveUpdateModule(updateReferring('module_destroy_params', false), kallsyms(), new Map()), /refers to module_destroy_params, which the running kernel does not have/);
    assert.throws(
      () => resolveUpdateModule(updateReferring('module_destroy_params', false), kallsyms(), new Map()),
      (e: unknown) => e instanceof UserError && e.kind === 'unresolved-reference' && e.diagnostic.function === 'module_destroy_params',
    );
  });

  it('binds a module unit\'s static to the module\'s, learned or the one in /proc/kallsyms, never vmlinux\'s', () => {
    const update = updateReferring('ct_helper', true, 'tsplice_test', 'nft_ct');
    const learned = new Map([[learnedKey('net/netfilter/a.c', 'ct_helper'), { name: 'ct_helper', address: 0x7000n, local: true, from: 'f+0x4' }]]);
    assert.equal(resolvedAddress(update, kallsyms(['ct_helper', 't', 0x1000n], ['ct_helper', 't', 0x7000n, 'nft_ct']), learned), 0x7000n);
    assert.equal(resolvedAddress(update, kallsyms(['ct_helper', 't', 0x1000n], ['ct_helper', 't', 0x7000n, 'nft_ct'])), 0x7000n);
    assert.throws(
      () => resolvedAddress(update, kallsyms(['ct_helper', 't', 0x1000n])),
      (e: unknown) => e instanceof UserError && e.kind === 'unresolved-reference' && e.diagnostic.object === 'nft_ct' && /a static of net\/netfilter\/a\.c, which the module nft_ct does not have/.test(e.message),
    );
  });

  it('binds a module\'s __this_module to that module\'s, learned per module or from /proc/kallsyms', () => {
    const update = updateReferring('__this_module', false, 'tsplice_test', 'nft_ct');
    // /proc/kallsyms prints a module's symbols in lower case, exported or not.
    const symbols = kallsyms(['__this_module', 'd', 0x8000n, 'nf_tables'], ['__this_module', 'd', 0x9000n, 'nft_ct']);
    assert.equal(resolvedAddress(update, symbols), 0x9000n);
    const learned = new Map([[moduleLearnedKey('nft_ct', '__this_module'), { name: '__this_module', address: 0x9000n, from: 'f+0x8' }]]);
    assert.equal(resolvedAddress(update, kallsyms(), learned), 0x9000n);
  });

  it('binds a module\'s global to vmlinux, or to an export of a module it depends on, never to one it does not', () => {
    const inVmlinux = updateReferring('kfree', false, 'tsplice_test', 'nft_ct');
    assert.equal(resolvedAddress(inVmlinux, kallsyms(['kfree', 'T', 0x2000n], ['kfree', 't', 0x2100n, 'binfmt_misc'])), 0x2000n);
    const exported = updateReferring('crc32c', false, 'tsplice_test', 'nft_ct');
    // libcrc32c exports crc32c; nft_ct depends on it through nf_tables.
    assert.equal(resolvedAddress(exported, kallsyms(['crc32c', 't', 0x5000n, 'libcrc32c'], ['__ksymtab_crc32c', 'r', 0x5800n, 'libcrc32c'])), 0x5000n);
    assert.throws(
      () => resolvedAddress(exported, kallsyms(['crc32c', 't', 0x5000n, 'libcrc32c'])),
      (e: unknown) => e instanceof UserError && e.kind === 'unresolved-reference' && /only libcrc32c, which nft_ct does not depend on or which does not export it/.test(e.message),
    );
    const unrelated = updateReferring('bm_status', false, 'tsplice_test', 'nft_ct');
    assert.throws(
      () => resolvedAddress(unrelated, kallsyms(['bm_status', 't', 0x6000n, 'binfmt_misc'], ['__ksymtab_bm_status', 'r', 0x6800n, 'binfmt_misc'])),
      (e: unknown) =>
        e instanceof UserError &&
        e.kind === 'unresolved-reference' &&
        e.message === 'The new code of the module nft_ct refers to bm_status, which neither the module, vmlinux nor a module it depends on has (only binfmt_misc, which nft_ct does not depend on or which does not export it).',
    );
  });

  it('refuses a module global that the module and vmlinux both have, rather than guess', () => {
    const update = updateReferring('debug', false, 'tsplice_test', 'nft_ct');
    assert.throws(
      () => resolvedAddress(update, kallsyms(['debug', 'D', 0x2000n], ['debug', 'd', 0x9100n, 'nft_ct'])),
      (e: unknown) => e instanceof UserError && e.kind === 'ambiguous' && e.message === 'The new code of the module nft_ct refers to debug, which is in nft_ct, vmlinux, and matching did not tell which one.',
    );
    assert.equal(resolvedAddress(update, kallsyms(['debug', 'd', 0x9100n, 'nft_ct'])), 0x9100n);
  });
});
