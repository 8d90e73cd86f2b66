import assert from 'node:assert/strict';
import { it } from 'node:test';
import { UserError } from '../host/errors.js';
import { linesNamed, moduleLines, parseKallsyms } from './kallsyms.js';

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

it('reads the lines of one module only, whole names', () => {
  const text = `${TEXT}\nffffffffc0000100 t mod_fn\t[somemod]\nffffffffc1000000 t other_fn\t[somemod_x]\nffffffffc1000100 T init_module\t[somemod]`;
  assert.equal(moduleLines(text, 'somemod'), 'ffffffffc0000000 t helper\t[somemod]\nffffffffc0000100 t mod_fn\t[somemod]\nffffffffc1000100 T init_module\t[somemod]');
  const symbols = parseKallsyms(moduleLines(text, 'somemod'));
  assert.deepEqual(symbols.lookup('helper').map((s) => s.runningAddress), [0xffffffffc0000000n]);
  assert.equal(symbols.lookup('other_fn').length, 0);
  assert.equal(moduleLines(text, 'nosuch'), '');
  assert.equal(parseKallsyms(moduleLines(text, 'nosuch')).symbols.length, 0);
});

it('reads the lines of some names only, whole names, in the table\'s order', () => {
  const text = `${TEXT}\nffffffffc0000100 t helper_2\t[somemod]\nffffffffc0000200 t my_helper\nffffffffc1000100 T do_thing\t[othermod]`;
  const lines = linesNamed(text, ['do_thing', 'helper']);
  assert.deepEqual(lines.split('\n'), [
    'ffffffffa1000100 t helper',
    'ffffffffa1000180 T do_thing',
    'ffffffffa1000200 t helper',
    'ffffffffc0000000 t helper\t[somemod]',
    'ffffffffc1000100 T do_thing\t[othermod]',
  ]);
  assert.equal(parseKallsyms(lines).lookup('helper').length, 3);
  assert.equal(linesNamed(text, ['nosuch', '']), '');
});
