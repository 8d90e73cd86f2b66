import assert from 'node:assert/strict';
import { it } from 'node:test';
import { UserError } from '../host/errors.js';
import { parseKallsyms } from './kallsyms.js';

const TEXT = [
  'ffffffffa1000000 T _stext',
  'ffffffffa1000100 t helper',
  'ffffffffa1000180 T do_thing',
  'ffffffffa1000200 t helper',
  'ffffffffa2000000 D some_data',
  'ffffffffc0000000 t helper\t[somemod]',
].join('\n');

it('keeps every duplicate name with its address and module', () => {
  const symbols = parseKallsyms(TEXT);
  assert.deepEqual(symbols.lookup('helper').map((s) => [s.runningAddress, s.module]), [
    [0xffffffffa1000100n, undefined],
    [0xffffffffa1000200n, undefined],
    [0xffffffffc0000000n, 'somemod'],
  ]);
  assert.throws(() => symbols.uniqueFunction('helper'), /has 2 functions named helper/);
  assert.throws(() => symbols.uniqueFunction('nosuch'), /no function named nosuch/);
});

it('finds a function of a module: by --module, or as the one module that has it', () => {
  const symbols = parseKallsyms(`${TEXT}\nffffffffc0000100 t only_in_mod\t[somemod]\nffffffffc1000000 t only_in_mod\t[othermod]\nffffffffc1000100 t mod_fn\t[othermod]`);
  assert.equal(symbols.uniqueFunction('helper', 'somemod').runningAddress, 0xffffffffc0000000n);
  assert.equal(symbols.uniqueFunction('do_thing', 'vmlinux').runningAddress, 0xffffffffa1000180n);
  assert.equal(symbols.uniqueFunction('mod_fn').module, 'othermod');
  assert.equal(symbols.uniqueFunction('only_in_mod', 'othermod').runningAddress, 0xffffffffc1000000n);
  assert.throws(() => symbols.uniqueFunction('only_in_mod'), (e: unknown) => e instanceof UserError && e.kind === 'ambiguous' && e.message === 'The running kernel has 2 functions named only_in_mod (in somemod, othermod: choose with --module).');
  assert.throws(() => symbols.uniqueFunction('do_thing', 'somemod'), (e: unknown) => e instanceof UserError && e.kind === 'no-such-function' && e.message === 'The running kernel has no function named do_thing in somemod in /proc/kallsyms.');
  assert.ok(symbols.hasModule('othermod') && !symbols.hasModule('nft_ct'));
});

it('bounds a function by the next text symbol', () => {
  const symbols = parseKallsyms(TEXT);
  assert.equal(symbols.extent(symbols.uniqueFunction('do_thing')), 0x80);
});

it('refuses zeroed addresses (not root) and malformed lines', () => {
  assert.throws(() => parseKallsyms('0000000000000000 T _stext\n0000000000000000 T x\n'), /run as root/);
  assert.throws(() => parseKallsyms('garbage line\n', 'k.txt'), /k\.txt: line 1 is not a kallsyms line/);
  assert.throws(
    () => parseKallsyms('0000000000000001 T a\ngarbage line\n', 'k.txt'),
    (e: unknown) => e instanceof UserError && e.kind === 'bad-kernel-record' && e.diagnostic.object === 'k.txt' && e.diagnostic.offset === 21,
  );
});
