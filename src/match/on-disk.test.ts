/**
 * Run-pre matching against a module's file (on-disk.ts), on small module files our ELF writer
 * makes: the function inside `.text` at an offset, as Debian builds modules, with relocations.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { R_X86_64_32S, R_X86_64_PC32, R_X86_64_PLT32, SHF_ALLOC, SHF_EXECINSTR, SHN_UNDEF, SHT_PROGBITS, STB_GLOBAL, STB_LOCAL, STT_FUNC, STT_NOTYPE, STV_DEFAULT, writeElf } from '../elf/index.js';
import type { UpdateFunction, UpdateRelocation } from '../update/format.js';
import { matchOnDisk } from './on-disk.js';

/** call helper; mov enabled(%rip),%eax; ret — with its fields zero, as in an object file. */
const CODE = [0xe8, 0, 0, 0, 0, 0x8b, 0x05, 0, 0, 0, 0, 0xc3];

/** A module file with `code` at offset 16 of .text, named `name`, calling `callee` at +1 and reading `variable` at +7. */
function moduleFile(code: number[], options: { name?: string; callee?: string; variable?: string; readType?: number } = {}): Uint8Array {
  const undefinedSymbol = (name: string) => ({ name, value: 0n, size: 0, bind: STB_GLOBAL, type: STT_NOTYPE, visibility: STV_DEFAULT, section: SHN_UNDEF });
  const callee = undefinedSymbol(options.callee ?? 'helper');
  const variable = undefinedSymbol(options.variable ?? 'enabled');
  const text = {
    name: '.text',
    type: SHT_PROGBITS,
    flags: SHF_ALLOC | SHF_EXECINSTR,
    addralign: 16,
    data: Uint8Array.from([...new Array<number>(16).fill(0xcc), ...code]),
    relocations: [
      { offset: 17, type: R_X86_64_PLT32, symbol: callee, addend: -4n },
      { offset: 23, type: options.readType ?? R_X86_64_PC32, symbol: variable, addend: -4n },
    ],
  };
  const fn = { name: options.name ?? 'bm_status_read', value: 16n, size: code.length, bind: STB_LOCAL, type: STT_FUNC, visibility: STV_DEFAULT, section: text };
  return writeElf({ sections: [text], symbols: [fn, callee, variable] });
}

/** The update's function: the same code, its relocations as create records them. */
function updateFunction(code = CODE, relocations?: UpdateRelocation[]): UpdateFunction {
  return {
    name: 'bm_status_read',
    status: 'changed',
    unit: 'fs/binfmt_misc.c',
    module: 'binfmt_misc',
    section: '.text.bm_status_read',
    pre: {
      size: code.length,
      bytes: Buffer.from(code).toString('base64'),
      relocations: relocations ?? [
        { offset: 1, type: 'R_X86_64_PLT32', addend: '-4', target: { kind: 'symbol', name: 'helper', addend: '0', local: false } },
        { offset: 7, type: 'R_X86_64_PC32', addend: '-4', target: { kind: 'symbol', name: 'enabled', addend: '0', local: true } },
      ],
    },
    post: { size: 1, bytes: 'ww==', relocations: [] },
  };
}

const FILE = '/lib/modules/6.1.0-47-amd64/kernel/fs/binfmt_misc.ko';

describe('matching pre code against a module file', () => {
  it('accepts the function whose bytes and relocations are the pre code\'s, wherever it sits in .text', () => {
    assert.equal(matchOnDisk(updateFunction(), moduleFile(CODE), FILE), undefined);
  });

  it('names the first byte that differs outside the relocation fields', () => {
    const other = [...CODE];
    other[6] = 0x0d; // mov -> or
    assert.deepEqual(matchOnDisk(updateFunction(), moduleFile(other), FILE), { function: 'bm_status_read', offset: 6, reason: 'bytes differ (file 0d, pre 05)' });
  });

  it('names a relocation of another type or to another symbol, at its offset', () => {
    assert.deepEqual(matchOnDisk(updateFunction(), moduleFile(CODE, { readType: R_X86_64_32S }), FILE), {
      function: 'bm_status_read',
      offset: 7,
      reason: 'relocations differ (file R_X86_64_32S enabled, pre R_X86_64_PC32 enabled)',
    });
    assert.equal(matchOnDisk(updateFunction(), moduleFile(CODE, { callee: 'other_helper' }), FILE)?.offset, 1);
  });

  it('takes a numbered static (`__key.12`) for the same one numbered otherwise, and a carried name for its original', () => {
    const relocations: UpdateRelocation[] = [
      { offset: 1, type: 'R_X86_64_PLT32', addend: '-4', target: { kind: 'symbol', name: 'helper.tsplice.u0', addend: '0', local: false } },
      { offset: 7, type: 'R_X86_64_PC32', addend: '-4', target: { kind: 'symbol', name: '__key.3', addend: '0', local: true } },
    ];
    assert.equal(matchOnDisk(updateFunction(CODE, relocations), moduleFile(CODE, { variable: '__key.12' }), FILE), undefined);
  });

  it('names a size that differs, and a function the file does not have', () => {
    assert.deepEqual(matchOnDisk(updateFunction(), moduleFile([...CODE, 0xcc]), FILE), { function: 'bm_status_read', offset: 12, reason: 'size differs (file 13, pre 12)' });
    assert.deepEqual(matchOnDisk(updateFunction(), moduleFile(CODE, { name: 'bm_status_write' }), FILE), { function: 'bm_status_read', offset: 0, reason: `not in ${FILE}` });
  });
});
