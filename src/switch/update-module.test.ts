/**
 * Giving an update module's external references their running addresses
 * (update-module.ts), on a small object our ELF writer makes: what binds to what in
 * /proc/kallsyms, and what is refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { modelFromElf, parseElf, R_X86_64_NONE, R_X86_64_PLT32, SHF_ALLOC, SHF_EXECINSTR, SHN_ABS, SHN_UNDEF, SHT_PROGBITS, STB_GLOBAL, STT_NOTYPE, STV_DEFAULT, writeElf } from '../elf/index.js';
import { UserError } from '../host/errors.js';
import { KernelSymbols, type KernelSymbol } from '../match/kallsyms.js';
import { LoadedModules } from '../match/loaded-modules.js';
import { learnedKey, type LearnedSymbol } from '../match/run-pre.js';
import type { UpdatePackage } from '../update/format.js';
import { MODULE_NAME_OFFSET, resolveUpdateModule, THIS_MODULE_SECTION } from './update-module.js';

/**
 * An update whose module refers to one external, `name` (a static of kernel/a.c when `local`);
 * with `inModule`, a reference of a unit of that loadable module, as create names those.
 */
function updateReferring(name: string, local: boolean, moduleName = 'tsplice_test', inModule?: string, referringSection = '.text.f'): UpdatePackage {
  const symbol = { name: local || inModule ? `${name}.tsplice.u0` : name, value: 0n, size: 0, bind: STB_GLOBAL, type: STT_NOTYPE, visibility: STV_DEFAULT, section: SHN_UNDEF };
  // call name; ret
  const text = {
    name: referringSection,
    type: SHT_PROGBITS,
    flags: SHF_ALLOC | SHF_EXECINSTR,
    addralign: 16,
    data: Uint8Array.from([0xe8, 0, 0, 0, 0, 0xc3]),
    relocations: [{ offset: 1, type: R_X86_64_PLT32, symbol, addend: -4n }],
  };
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

  /** What a module unit's reference becomes: its late reference, or the address it was bound to. */
  function moduleReference(update: UpdatePackage, symbols: KernelSymbols): { target?: string; address?: bigint; relocationType?: number } {
    const { bytes, late } = resolveUpdateModule(update, symbols, new Map(), LOADED);
    const model = modelFromElf(parseElf(Buffer.from(bytes), 'out.ko'));
    const symbol = model.symbols.find((s) => s.name === update.module?.externals[0]?.symbol);
    const relocationType = model.sections.flatMap((s) => s.relocations ?? [])[0]?.type;
    const [reference] = late;
    if (reference) {
      assert.deepEqual([reference.section, reference.offset, reference.type, reference.addend, reference.module], ['.text.f', 1, 'pc32', -4n, 'nft_ct']);
      assert.equal(symbol?.section, SHN_ABS);
      assert.equal(symbol?.value, 0n);
      return { target: reference.target, ...(relocationType !== undefined ? { relocationType } : {}) };
    }
    return { ...(symbol?.section === SHN_ABS ? { address: symbol.value } : {}), ...(relocationType !== undefined ? { relocationType } : {}) };
  }

  it('leaves a module unit\'s static to the module, bound at each load, never to vmlinux\'s', () => {
    const update = updateReferring('ct_helper', true, 'tsplice_test', 'nft_ct');
    assert.deepEqual(moduleReference(update, kallsyms(['ct_helper', 't', 0x1000n], ['ct_helper', 't', 0x7000n, 'nft_ct'])), { target: 'nft_ct', relocationType: R_X86_64_NONE });
    assert.throws(
      () => moduleReference(update, kallsyms(['ct_helper', 't', 0x1000n])),
      (e: unknown) => e instanceof UserError && e.kind === 'unresolved-reference' && e.diagnostic.object === 'nft_ct' && /a static of net\/netfilter\/a\.c, which the module nft_ct does not have/.test(e.message),
    );
  });

  it('names a static the module has more than once by the place of the copy matching found, and refuses one matching did not find', () => {
    const update = updateReferring('__key.0', true, 'tsplice_test', 'nft_ct');
    const symbols = kallsyms(['__key.0', 'b', 0x7100n, 'nft_ct'], ['__key.0', 'b', 0x1100n], ['__key.0', 'b', 0x7200n, 'nft_ct'], ['__key.0', 'b', 0x8200n, 'nf_tables']);
    const learned = new Map<string, LearnedSymbol>([[learnedKey('net/netfilter/a.c', '__key.0'), { name: '__key.0', address: 0x7200n, local: true, from: 'f+0x1' }]]);
    assert.deepEqual(resolveUpdateModule(update, symbols, learned, LOADED).late.map((l) => [l.target, l.symbol]), [['nft_ct', '__key.0#2']]);
    assert.equal(symbols.moduleCopyName('nft_ct', '__key.0', 0x7100n), '__key.0#1');
    assert.equal(symbols.moduleCopyName('nf_tables', '__key.0', 0x8200n), '__key.0');
    assert.equal(symbols.moduleCopyName('nft_ct', '__key.0', 0x1100n), undefined);
    assert.throws(
      () => resolveUpdateModule(update, symbols, new Map(), LOADED),
      (e: unknown) => e instanceof UserError && e.kind === 'ambiguous' && e.diagnostic.object === 'nft_ct' && e.message === 'The new code of the module nft_ct refers to __key.0, which nft_ct has 2 times, and matching did not tell which one.',
    );
    // Not loaded: the name the module file's relocations of the proven pre code gave it.
    const unloaded = updateReferring('__key.0', true, 'tsplice_test', 'xfs');
    const files = { defines: (module: string, name: string) => module === 'xfs' && name === '__key.0', exporter: () => undefined };
    const fromFile = new Map([[learnedKey('net/netfilter/a.c', '__key.0'), '__key.0#3']]);
    assert.deepEqual(resolveUpdateModule(unloaded, kallsyms(), new Map(), LOADED, files, fromFile).late.map((l) => [l.target, l.symbol]), [['xfs', '__key.0#3']]);
    assert.deepEqual(resolveUpdateModule(unloaded, kallsyms(), new Map(), LOADED, files).late.map((l) => l.symbol), ['__key.0']);
  });

  it('leaves a module\'s __this_module and its own globals to the module, even where vmlinux has the name', () => {
    assert.deepEqual(moduleReference(updateReferring('__this_module', false, 'tsplice_test', 'nft_ct'), kallsyms()), { target: 'nft_ct', relocationType: R_X86_64_NONE });
    const update = updateReferring('debug', false, 'tsplice_test', 'nft_ct');
    assert.deepEqual(moduleReference(update, kallsyms(['debug', 'D', 0x2000n], ['debug', 'd', 0x9100n, 'nft_ct'])), { target: 'nft_ct', relocationType: R_X86_64_NONE });
  });

  it('binds a module\'s global to vmlinux at insmod, or leaves it to an export of a module it depends on, never one it does not', () => {
    const inVmlinux = updateReferring('kfree', false, 'tsplice_test', 'nft_ct');
    assert.deepEqual(moduleReference(inVmlinux, kallsyms(['kfree', 'T', 0x2000n], ['kfree', 't', 0x2100n, 'binfmt_misc'])), { address: 0x2000n, relocationType: R_X86_64_PLT32 });
    // libcrc32c exports crc32c; nft_ct depends on it through nf_tables.
    const exported = updateReferring('crc32c', false, 'tsplice_test', 'nft_ct');
    assert.deepEqual(moduleReference(exported, kallsyms(['crc32c', 't', 0x5000n, 'libcrc32c'], ['__ksymtab_crc32c', 'r', 0x5800n, 'libcrc32c'])), { target: 'libcrc32c', relocationType: R_X86_64_NONE });
    assert.throws(
      () => moduleReference(exported, kallsyms(['crc32c', 't', 0x5000n, 'libcrc32c'])),
      (e: unknown) => e instanceof UserError && e.kind === 'unresolved-reference' && e.diagnostic.function === 'crc32c',
    );
    const unrelated = updateReferring('bm_status', false, 'tsplice_test', 'nft_ct');
    assert.throws(
      () => moduleReference(unrelated, kallsyms(['bm_status', 't', 0x6000n, 'binfmt_misc'], ['__ksymtab_bm_status', 'r', 0x6800n, 'binfmt_misc'])),
      (e: unknown) => e instanceof UserError && e.kind === 'unresolved-reference' && e.message === 'The new code of the module nft_ct refers to bm_status, which neither the module, vmlinux nor a module it depends on has.',
    );
  });

  it('binds a module that a section the loader reads at insmod refers into at insmod, pinned; refuses it when not loaded', () => {
    const update = updateReferring('ct_key', true, 'tsplice_test', 'nft_ct', '__jump_table');
    const symbols = kallsyms(['ct_key', 'd', 0x7000n, 'nft_ct']);
    const { late, pinned, resolved } = resolveUpdateModule(update, symbols, new Map(), LOADED);
    assert.deepEqual(late, []);
    assert.deepEqual([...pinned], ['nft_ct']);
    assert.equal(resolved.get('ct_key.tsplice.u0'), 0x7000n);
    const notLoaded = updateReferring('ct_key', true, 'tsplice_test', 'udf', '__jump_table');
    assert.throws(
      () => resolveUpdateModule(notLoaded, kallsyms(['ct_key', 'd', 0x7000n, 'udf']), new Map(), LOADED),
      (e: unknown) => e instanceof UserError && e.kind === 'late-reference' && e.diagnostic.section === '__jump_table' && e.diagnostic.function === 'ct_key' && /applies only while udf is loaded/.test(e.message),
    );
  });
});
