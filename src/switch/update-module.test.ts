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
import type { UpdatePackage } from '../update/format.js';
import { MODULE_NAME_OFFSET, resolveUpdateModule, THIS_MODULE_SECTION } from './update-module.js';

/** An update whose module refers to one external, `name` (a static of kernel/a.c when `local`). */
function updateReferring(name: string, local: boolean, moduleName = 'tsplice_test'): UpdatePackage {
  const text = { name: '.text', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_EXECINSTR, addralign: 16, data: Uint8Array.from([0xc3]), relocations: [] };
  const symbol = { name: local ? `${name}.tsplice.u0` : name, value: 0n, size: 0, bind: STB_GLOBAL, type: STT_NOTYPE, visibility: STV_DEFAULT, section: SHN_UNDEF };
  const bytes = writeElf({ sections: [text, thisModule(moduleName)], symbols: [symbol] });
  const module = { name: 'tsplice_test', bytes: Buffer.from(bytes).toString('base64'), externals: [{ symbol: symbol.name, name, unit: 'kernel/a.c', local }] };
  return { id: 'test', module } as unknown as UpdatePackage;
}

/** A struct module's bytes, as far as its name, in the section the loader reads it from. */
function thisModule(name: string) {
  const data = new Uint8Array(MODULE_NAME_OFFSET + 56 + 8);
  data.set(Buffer.from(name, 'latin1'), MODULE_NAME_OFFSET);
  return { name: THIS_MODULE_SECTION, type: SHT_PROGBITS, flags: SHF_ALLOC, addralign: 64, data, relocations: [] };
}

const kallsyms = (...symbols: [string, string, bigint][]): KernelSymbols =>
  new KernelSymbols(symbols.map(([name, type, runningAddress]): KernelSymbol => ({ name, type, runningAddress })));

function resolvedAddress(update: UpdatePackage, symbols: KernelSymbols): bigint | undefined {
  const { bytes } = resolveUpdateModule(update, symbols, new Map());
  const symbol = modelFromElf(parseElf(Buffer.from(bytes), 'out.ko')).symbols.find((s) => s.name.startsWith('fsnotify_next_mark') || s.name.startsWith('helper'));
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
});
