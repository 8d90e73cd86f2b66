import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';

import {
  ET_DYN,
  ET_EXEC,
  ET_REL,
  SHN_ABS,
  SHN_COMMON,
  SHN_UNDEF,
  SHT_GROUP,
  STB_LOCAL,
  STB_WEAK,
  STT_FUNC,
  STT_TLS,
  STV_HIDDEN,
} from './constants.js';
import { readGroup } from './groups.js';
import { parseElf } from './read.js';
import { assertMatchesReadelf } from './test-support/compare.js';
import { readelfGroups, readelfSegments, readelfSymbols } from './test-support/readelf.js';
import { BASIC_C, GROUPS_CC, KERNEL_C, PROGRAM_C } from './test-support/sources.js';
import { run, Workdir } from './test-support/toolchain.js';
import type { ElfFile } from './types.js';
import { R_X86_64_32, R_X86_64_32S, R_X86_64_64, relocationInfo } from './x86-64-relocations.js';

const work = new Workdir();
after(() => work.remove());

function parseFile(path: string): ElfFile {
  return parseElf(new Uint8Array(readFileSync(path)), path);
}

function symbol(elf: ElfFile, name: string) {
  const sym = elf.symbols.find((s) => s.name === name);
  assert.ok(sym !== undefined, `symbol ${name} not found`);
  return sym;
}

describe('parseElf agrees with readelf on gcc output', () => {
  // [name, build, minimum counts compared: guards against a vacuous comparison]
  const objects: Array<[string, () => string, number]> = [
    ['-O2 -ffunction-sections -fdata-sections -fno-pic', () => work.compileC('split', BASIC_C, ['-O2', '-ffunction-sections', '-fdata-sections', '-fcommon', '-fno-pic']), 10],
    ['-O2 -fPIC', () => work.compileC('pic', BASIC_C, ['-O2', '-fPIC', '-fcommon']), 10],
    ['-g -O1 (DWARF sections and their relocations)', () => work.compileC('debug', BASIC_C, ['-g', '-O1', '-ffunction-sections', '-fcommon']), 30],
    ['-mcmodel=kernel', () => work.compileC('kernel', KERNEL_C, ['-O2', '-mcmodel=kernel', '-fno-pic', '-mno-red-zone', '-ffunction-sections']), 5],
  ];
  for (const [name, build, minimum] of objects) {
    it(name, () => {
      const file = build();
      const elf = parseFile(file);
      assert.equal(elf.header.type, ET_REL);
      const counts = assertMatchesReadelf(elf, file);
      assert.ok(counts.sections > minimum && counts.symbols > minimum && counts.relocations > minimum, JSON.stringify(counts));
    });
  }

  it('reads special symbols exactly (ABS kernel address, COMMON, TLS, hidden, weak)', () => {
    const elf = parseFile(work.compileC('special', BASIC_C, ['-O2', '-fcommon', '-fno-pic']));
    const abs = symbol(elf, 'abs_sym');
    assert.equal(abs.shndx, SHN_ABS);
    assert.equal(abs.value, 0xffffffff81000000n);
    assert.equal(abs.special, true);
    assert.equal(symbol(elf, 'common_var').shndx, SHN_COMMON);
    assert.equal(symbol(elf, 'common_var').special, true);
    assert.equal(symbol(elf, 'shared').special, false);
    assert.equal(symbol(elf, 'tls_var').type, STT_TLS);
    assert.equal(symbol(elf, 'hidden_var').visibility, STV_HIDDEN);
    assert.equal(symbol(elf, 'weak_fn').bind, STB_WEAK);
    assert.equal(symbol(elf, 'ext_value').shndx, SHN_UNDEF);
    assert.equal(symbol(elf, 'counter').bind, STB_LOCAL);
  });

  it('reads negative addends exactly', () => {
    const elf = parseFile(work.compileC('addends', BASIC_C, ['-O2', '-fcommon', '-fno-pic', '-fdata-sections']));
    const data = elf.sectionByName('.data.before_end');
    assert.ok(data !== undefined);
    const [reloc] = elf.relaFor(data);
    assert.ok(reloc !== undefined);
    assert.equal(reloc.type, R_X86_64_64);
    assert.equal(reloc.addend, -100n);
    assert.equal(elf.symbols[reloc.symbolIndex]?.name, 'end_marker');
    const nearEnd = elf.relaFor(elf.sectionByName('.text') ?? assert.fail('no .text')).filter(
      (r) => elf.symbols[r.symbolIndex]?.name === 'end_marker',
    );
    assert.deepEqual(
      nearEnd.map((r) => [r.type, r.addend]),
      [[R_X86_64_32, -16n]], // -fno-pic: mov $end_marker-16, %eax
    );
  });

  it('reads R_X86_64_32S relocations of the kernel code model', () => {
    const elf = parseFile(work.compileC('kernel32s', KERNEL_C, ['-O2', '-mcmodel=kernel', '-fno-pic']));
    const text = elf.sectionByName('.text') ?? assert.fail('no .text');
    const r32s = elf.relaFor(text).filter((r) => r.type === R_X86_64_32S);
    assert.ok(r32s.length > 0);
    assert.deepEqual(relocationInfo(R_X86_64_32S), { name: 'R_X86_64_32S', size: 4, pcRelative: false, signed: true });
  });

  it('reads COMDAT groups as readelf -g does', () => {
    const src = work.write('groups.cc', GROUPS_CC);
    const file = work.file('groups.o');
    run('g++', ['-c', '-O2', src, '-o', file]);
    const elf = parseFile(file);
    assertMatchesReadelf(elf, file);
    const expected = readelfGroups(file);
    assert.ok(expected.length >= 2, 'expected at least two COMDAT groups');
    const ours = elf.sections
      .filter((s) => s.type === SHT_GROUP)
      .map((s) => ({ index: s.index, signature: elf.symbols[s.info]?.name, members: [...readGroup(s).members] }));
    assert.deepEqual(ours, expected);
  });
});

describe('ElfFile queries', () => {
  const file = work.compileC('queries', BASIC_C, ['-O2', '-fcommon', '-fno-pic']);
  const elf = parseFile(file);

  it('symbolsIn returns the section symbols sorted by value', () => {
    const text = elf.sectionByName('.text') ?? assert.fail('no .text');
    const ours = elf.symbolsIn(text);
    const expected = readelfSymbols(file)
      .filter((s) => s.table === '.symtab' && s.ndx === String(text.index))
      .sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : a.index - b.index))
      .map((s) => s.index);
    assert.deepEqual(
      ours.map((s) => s.index),
      expected,
    );
    assert.ok(ours.filter((s) => s.type === STT_FUNC).length >= 4);
    for (let i = 1; i < ours.length; i++) assert.ok((ours[i - 1] as { value: bigint }).value <= (ours[i] as { value: bigint }).value);
  });

  it('relaFor returns the relocations of the section named by sh_info', () => {
    const text = elf.sectionByName('.text') ?? assert.fail('no .text');
    const rela = elf.sectionByName('.rela.text') ?? assert.fail('no .rela.text');
    assert.equal(rela.info, text.index);
    assert.deepEqual(elf.relocationSectionsFor(text), [rela]);
    assert.deepEqual(elf.relaFor(text), elf.relocations(rela));
    assert.equal(elf.relaFor(elf.sectionByName('.bss') ?? assert.fail('no .bss')).length, 0);
  });

  it('rejects sections of another file', () => {
    const other = parseFile(file);
    const text = other.sectionByName('.text') ?? assert.fail('no .text');
    assert.throws(() => elf.relaFor(text), TypeError);
  });
});

describe('parseElf on linked programs', () => {
  const main = work.compileC('prog', PROGRAM_C, ['-O2']);
  const programs: Array<[string, string[], number]> = [
    ['PIE (ET_DYN)', ['-pie'], ET_DYN],
    ['non-PIE (ET_EXEC)', ['-no-pie'], ET_EXEC],
  ];
  for (const [name, flags, type] of programs) {
    it(name, () => {
      const exe = work.file(`prog-${type}`);
      run('gcc', [...flags, main, '-o', exe]);
      const elf = parseFile(exe);
      assert.equal(elf.header.type, type);
      const counts = assertMatchesReadelf(elf, exe);
      assert.ok(elf.dynamicSymbols.length > 1 && counts.relocations > 0, JSON.stringify(counts));
      const segments = readelfSegments(exe);
      assert.ok(segments.length > 5);
      assert.deepEqual(
        elf.programHeaders.map((p) => ({
          offset: p.offset,
          vaddr: p.vaddr,
          paddr: p.paddr,
          filesz: p.filesz,
          memsz: p.memsz,
          flags: `${p.flags & 4 ? 'R' : ' '}${p.flags & 2 ? 'W' : ' '}${p.flags & 1 ? 'E' : ' '}`,
          align: p.align,
        })),
        segments.map(({ type: _type, offset, filesz, memsz, align, ...rest }) => ({
          ...rest,
          offset: BigInt(offset),
          filesz: BigInt(filesz),
          memsz: BigInt(memsz),
          align: BigInt(align),
        })),
      );
    });
  }
});
