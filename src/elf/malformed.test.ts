// Malformed input: each test corrupts one field of a real gcc object and
// checks parseElf throws a FormatError pointing at exactly that field.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';

import { ELF64_SYM_SIZE, SHN_XINDEX } from './constants.js';
import { FormatError } from './format-error.js';
import { EHDR, RELA, SHDR, SYM } from './layout.js';
import { parseElf } from './read.js';
import { BASIC_C } from './test-support/sources.js';
import { Workdir } from './test-support/toolchain.js';
import type { ElfFile, Section } from './types.js';

const work = new Workdir();
after(() => work.remove());

const NAME = 'fs/proc/version.o';
const original = new Uint8Array(readFileSync(work.compileC('malformed', BASIC_C, ['-O2', '-fno-pic', '-fcommon'])));
const elf = parseElf(original, NAME);

function section(name: string): Section {
  return elf.sectionByName(name) ?? assert.fail(`no section ${name}`);
}

function shdr(s: Section): number {
  return elf.header.shoff + s.index * 64;
}

/** A copy of the object with `edit` applied through a DataView. */
function corrupt(edit: (view: DataView, bytes: Uint8Array) => void): Uint8Array {
  const bytes = original.slice();
  edit(new DataView(bytes.buffer), bytes);
  return bytes;
}

function expectFormatError(bytes: Uint8Array, offset: number, detail: RegExp): void {
  assert.throws(
    () => parseElf(bytes, NAME),
    (e: unknown) => {
      assert.ok(e instanceof FormatError, `expected a FormatError, got ${String(e)}`);
      assert.equal(e.offset, offset, `offset of: ${e.message}`);
      assert.equal(e.file, NAME);
      assert.ok(e.message.startsWith(`${NAME}: offset 0x${offset.toString(16)}: `), e.message);
      assert.match(e.detail, detail);
      return true;
    },
  );
}

describe('parseElf rejects malformed files at the offending offset', () => {
  it('sanity: the unmodified object parses', () => {
    assert.ok(parseElf(original.slice(), NAME).symbols.length > 10);
  });

  it('truncated file header', () => {
    expectFormatError(original.subarray(0, 40), 0, /^ELF header extends past end of file/);
  });

  it('bad magic', () => {
    expectFormatError(corrupt((_, b) => (b[1] = 0x46)), 0, /bad magic/);
    expectFormatError(original.subarray(0, 2), 0, /bad magic/);
  });

  it('ELFCLASS32 and big-endian files', () => {
    expectFormatError(corrupt((_, b) => (b[4] = 1)), 4, /ELF class 1/);
    expectFormatError(corrupt((_, b) => (b[5] = 2)), 5, /data encoding 2/);
  });

  it('wrong e_shentsize and out-of-range e_shstrndx', () => {
    expectFormatError(corrupt((v) => v.setUint16(EHDR.shentsize, 40, true)), EHDR.shentsize, /e_shentsize is 40/);
    expectFormatError(corrupt((v) => v.setUint16(EHDR.shstrndx, elf.header.shnum, true)), EHDR.shstrndx, /section name table index/);
  });

  it('section header table past the end of the file', () => {
    const truncated = original.subarray(0, elf.header.shoff + 12 * 64 + 10);
    expectFormatError(truncated, elf.header.shoff + 12 * 64, /^section header 12 extends past end of file/);
  });

  it('section data past the end of the file', () => {
    const text = section('.text');
    expectFormatError(
      corrupt((v) => v.setBigUint64(shdr(text) + SHDR.size, BigInt(original.length), true)),
      shdr(text) + SHDR.offset,
      /section \d+ data .* extends past end of file/,
    );
  });

  it('sizes that do not fit a number exactly', () => {
    const text = section('.text');
    expectFormatError(corrupt((v) => v.setBigUint64(shdr(text) + SHDR.size, 1n << 60n, true)), shdr(text) + SHDR.size, /sh_size 0x1000000000000000 is too large/);
  });

  it('section name offset outside .shstrtab', () => {
    const data = section('.data');
    expectFormatError(corrupt((v) => v.setUint32(shdr(data) + SHDR.name, 0xffffff, true)), shdr(data) + SHDR.name, /section \d+ name: name offset 0xffffff is outside string table/);
  });

  it('symbol name offset outside .strtab', () => {
    const symtab = section('.symtab');
    const at = symtab.offset + 1 * ELF64_SYM_SIZE + SYM.name;
    expectFormatError(corrupt((v) => v.setUint32(at, 0xfffff, true)), at, /symbol 1: name offset 0xfffff is outside string table/);
  });

  it('symbol name not NUL-terminated', () => {
    const symtab = section('.symtab');
    const strtab = section('.strtab');
    const at = symtab.offset + 1 * ELF64_SYM_SIZE + SYM.name;
    const bytes = corrupt((v, b) => {
      v.setUint32(at, strtab.size - 1, true);
      b[strtab.offset + strtab.size - 1] = 0x78; // the table's final NUL becomes 'x'
    });
    expectFormatError(bytes, at, /not NUL-terminated/);
  });

  it('relocation symbol index outside the symbol table', () => {
    const rela = section('.rela.text');
    const at = rela.offset + 2 * 24 + RELA.info;
    expectFormatError(corrupt((v) => v.setUint32(at + 4, elf.symbols.length, true)), at, new RegExp(`relocation 2 in section ${rela.index} \\(.rela.text\\): symbol index ${elf.symbols.length} out of range`));
  });

  it('relocation applying past the end of its section', () => {
    const rela = section('.rela.text');
    const at = rela.offset + RELA.offset;
    expectFormatError(corrupt((v) => v.setBigUint64(at, BigInt(section('.text').size - 2), true)), at, /extends past the end of section \d+ \(.text\)/);
  });

  it('sh_link out of range, or naming the wrong kind of section', () => {
    const symtab = section('.symtab');
    const rela = section('.rela.text');
    expectFormatError(corrupt((v) => v.setUint32(shdr(symtab) + SHDR.link, elf.sections.length, true)), shdr(symtab) + SHDR.link, /sh_link \d+ out of range/);
    expectFormatError(corrupt((v) => v.setUint32(shdr(rela) + SHDR.link, section('.text').index, true)), shdr(rela) + SHDR.link, /names a section of type 1/);
    expectFormatError(corrupt((v) => v.setUint32(shdr(symtab) + SHDR.link, section('.text').index, true)), shdr(symtab) + SHDR.link, /names a section of type 1/);
  });

  it('relocation sh_info out of range', () => {
    const rela = section('.rela.text');
    expectFormatError(corrupt((v) => v.setUint32(shdr(rela) + SHDR.info, 5000, true)), shdr(rela) + SHDR.info, /sh_info 5000 out of range/);
  });

  it('wrong symbol table entry size', () => {
    const symtab = section('.symtab');
    expectFormatError(corrupt((v) => v.setBigUint64(shdr(symtab) + SHDR.entsize, 16n, true)), shdr(symtab) + SHDR.entsize, /sh_entsize is 16, expected 24/);
    expectFormatError(corrupt((v) => v.setBigUint64(shdr(symtab) + SHDR.size, BigInt(symtab.size - 8), true)), shdr(symtab) + SHDR.size, /not a multiple of the entry size 24/);
  });

  it('st_shndx out of range, and SHN_XINDEX without SHT_SYMTAB_SHNDX', () => {
    const symtab = section('.symtab');
    const shared = findSymbol(elf, 'shared');
    const at = symtab.offset + shared * ELF64_SYM_SIZE + SYM.shndx;
    expectFormatError(corrupt((v) => v.setUint16(at, elf.sections.length, true)), at, new RegExp(`symbol ${shared}: st_shndx \\d+ out of range`));
    expectFormatError(corrupt((v) => v.setUint16(at, SHN_XINDEX, true)), at, /SHN_XINDEX but there is no SHT_SYMTAB_SHNDX/);
  });
});

function findSymbol(file: ElfFile, name: string): number {
  const sym = file.symbols.find((s) => s.name === name);
  assert.ok(sym !== undefined);
  return sym.index;
}

describe('section groups', () => {
  const asm = `
  .section .text.g,"axG",@progbits,gsig,comdat
  .globl gsig
gsig: ret
`;
  const bytes = new Uint8Array(readFileSync(work.assemble('group', asm)));
  const file = parseElf(bytes, NAME);
  const group = file.sections.find((s) => s.type === 17) ?? assert.fail('no group');

  it('rejects a member index of 0', () => {
    const copy = bytes.slice();
    new DataView(copy.buffer).setUint32(group.offset + 4, 0, true);
    assert.throws(() => parseElf(copy, NAME), (e: unknown) => e instanceof FormatError && e.offset === group.offset + 4 && /member 0 has invalid section index 0/.test(e.message));
  });

  it('rejects a signature symbol index outside the symbol table', () => {
    const copy = bytes.slice();
    const at = file.header.shoff + group.index * 64 + SHDR.info;
    new DataView(copy.buffer).setUint32(at, 999, true);
    assert.throws(() => parseElf(copy, NAME), (e: unknown) => e instanceof FormatError && e.offset === at && /signature symbol index 999/.test(e.message));
  });
});
