// Objects with 0xff00 or more sections (vmlinux.o-sized builds with
// -ffunction-sections get there): e_shnum, e_shstrndx and st_shndx no longer
// fit 16 bits and move to section header 0 and SHT_SYMTAB_SHNDX.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';

import { SHN_ABS, SHN_COMMON, SHN_LORESERVE, SHN_UNDEF, SHN_XINDEX, SHT_SYMTAB_SHNDX } from './constants.js';
import { FormatError } from './format-error.js';
import { EHDR, SYM } from './layout.js';
import { modelFromElf } from './model.js';
import { parseElf } from './read.js';
import { definingSection } from './symbols.js';
import { assertMatchesReadelf } from './test-support/compare.js';
import { assertSameObject } from './test-support/same-object.js';
import { runAll, Workdir } from './test-support/toolchain.js';
import { writeElf } from './write.js';

const work = new Workdir();
after(() => work.remove());

const COUNT = 65300;

describe('extended section numbering', () => {
  const lines: string[] = [];
  for (let i = 0; i < COUNT; i++) lines.push(`.section .data.s${i},"aw",@progbits`, `.globl s${i}`, `s${i}: .long ${i}`);
  lines.push('.section .data.last,"aw",@progbits', `.quad s${COUNT - 1} + 8`, '.quad s1 - 3', '.quad elsewhere');
  // Symbols with reserved indices, beside real ones whose indices reach that range.
  lines.push('.globl absolute', '.set absolute, 0x1234', '.comm common_block, 16, 8', '');
  const path = work.assemble('many', lines.join('\n'));
  const bytes = new Uint8Array(readFileSync(path));
  const elf = parseElf(bytes, path);

  it('reads counts from section header 0 and indices from SHT_SYMTAB_SHNDX, as readelf does', () => {
    assert.equal(new DataView(bytes.buffer).getUint16(EHDR.shnum, true), 0);
    assert.equal(new DataView(bytes.buffer).getUint16(EHDR.shstrndx, true), SHN_XINDEX);
    assert.ok(elf.header.shnum > SHN_LORESERVE);
    assert.equal(elf.sections[elf.header.shstrndx]?.name, '.shstrtab');
    const last = elf.symbols.find((s) => s.name === `s${COUNT - 1}`);
    assert.ok(last !== undefined && last.shndx >= SHN_LORESERVE);
    assert.equal(last.special, false); // a real section, despite the index
    assert.equal(elf.sections[last.shndx]?.name, `.data.s${COUNT - 1}`);
    assertMatchesReadelf(elf, path);
  });

  it('tells symbols of sections numbered 0xff00 and up from SHN_ABS, SHN_COMMON and SHN_UNDEF', () => {
    const symbol = (name: string) => elf.symbols.find((s) => s.name === name) ?? assert.fail(`no symbol ${name}`);
    const last = symbol(`s${COUNT - 1}`);
    assert.ok(last.shndx >= SHN_LORESERVE);
    assert.equal(definingSection(elf, last)?.name, `.data.s${COUNT - 1}`);
    assert.equal(definingSection(elf, symbol('s1'))?.name, '.data.s1');
    assert.deepEqual(
      ['absolute', 'common_block', 'elsewhere'].map((n) => [symbol(n).shndx, symbol(n).special, definingSection(elf, symbol(n))]),
      [
        [SHN_ABS, true, undefined],
        [SHN_COMMON, true, undefined],
        [SHN_UNDEF, false, undefined],
      ],
    );
  });

  it('round-trips through the writer', () => {
    const written = work.write('many.out.o', writeElf(modelFromElf(elf)));
    const reparsed = parseElf(new Uint8Array(readFileSync(written)), written);
    assertSameObject(reparsed, elf);
    assertMatchesReadelf(reparsed, written);
    const result = runAll('readelf', ['-S', '-s', '-r', '-W', written]);
    assert.equal(result.stderr, '');
  });

  it('rejects an extended index out of range, at the SHT_SYMTAB_SHNDX entry', () => {
    const shndx = elf.sections.find((s) => s.type === SHT_SYMTAB_SHNDX) ?? assert.fail('no .symtab_shndx');
    const symtab = elf.sectionByName('.symtab') ?? assert.fail();
    const last = elf.symbols.find((s) => s.name === `s${COUNT - 1}`) ?? assert.fail();
    assert.equal(new DataView(bytes.buffer).getUint16(symtab.offset + last.index * 24 + SYM.shndx, true), SHN_XINDEX);
    const copy = bytes.slice();
    const at = shndx.offset + last.index * 4;
    new DataView(copy.buffer).setUint32(at, elf.sections.length, true);
    assert.throws(
      () => parseElf(copy, path),
      (e: unknown) => e instanceof FormatError && e.offset === at && /extended section index \d+ out of range/.test(e.message),
    );
  });
});
