import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';

import { SHF_ALLOC, SHN_ABS, SHN_UNDEF, SHT_PROGBITS, STB_GLOBAL, STB_LOCAL, STT_FUNC, STT_NOTYPE, STT_OBJECT, STV_DEFAULT } from './constants.js';
import { modelFromElf, type ModelSection, type ModelSymbol, type ObjectModel } from './model.js';
import { parseElf } from './read.js';
import { assertMatchesReadelf } from './test-support/compare.js';
import { readelfGroups } from './test-support/readelf.js';
import { assertSameObject } from './test-support/same-object.js';
import { BASIC_C, GROUPS_CC, KERNEL_C, PROGRAM_C } from './test-support/sources.js';
import { run, runAll, Workdir } from './test-support/toolchain.js';
import type { ElfFile } from './types.js';
import { writeElf } from './write.js';
import { R_X86_64_32S, R_X86_64_64, R_X86_64_PC32, R_X86_64_PLT32 } from './x86-64-relocations.js';

const work = new Workdir();
after(() => work.remove());

function parseFile(path: string): ElfFile {
  return parseElf(new Uint8Array(readFileSync(path)), path);
}

/** Writes the model to `name` and returns its path. */
function writeModel(name: string, model: ObjectModel): string {
  return work.write(name, writeElf(model));
}

/** readelf -a must accept the file silently. */
function assertReadelfClean(path: string): void {
  const result = runAll('readelf', ['-a', '-W', path]);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stderr, '', `readelf warnings for ${path}`);
  assert.doesNotMatch(result.stdout, /warning/i);
}

function symbolNamed(model: ObjectModel, name: string): ModelSymbol {
  return model.symbols.find((s) => s.name === name) ?? assert.fail(`no symbol ${name}`);
}

describe('round trip: parse -> model -> write -> parse', () => {
  const objects: Array<[string, () => string]> = [
    ['-O2 -ffunction-sections -fdata-sections', () => work.compileC('split', BASIC_C, ['-O2', '-ffunction-sections', '-fdata-sections', '-fcommon'])],
    ['-O2 -fPIC', () => work.compileC('pic', BASIC_C, ['-O2', '-fPIC', '-fcommon'])],
    ['-g', () => work.compileC('debug', BASIC_C, ['-g', '-O1', '-ffunction-sections', '-fcommon'])],
    ['-mcmodel=kernel', () => work.compileC('kernel', KERNEL_C, ['-O2', '-mcmodel=kernel', '-fno-pic', '-ffunction-sections'])],
    [
      'ld -r of several objects (how a .ko is made)',
      () => {
        const a = work.compileC('ko-a', BASIC_C, ['-O2', '-g', '-ffunction-sections', '-fdata-sections', '-fcommon']);
        const b = work.compileC('ko-b', KERNEL_C, ['-O2', '-mcmodel=kernel', '-fno-pic']);
        const c = work.file('ko-c.o');
        run('g++', ['-c', '-O2', work.write('ko-c.cc', GROUPS_CC), '-o', c]);
        const out = work.file('module.ko');
        run('ld', ['-r', a, b, c, '-o', out]);
        return out;
      },
    ],
    [
      'C++ COMDAT groups',
      () => {
        const out = work.file('groups.o');
        run('g++', ['-c', '-O2', '-ffunction-sections', work.write('groups.cc', GROUPS_CC), '-o', out]);
        return out;
      },
    ],
  ];
  for (const [name, build] of objects) {
    it(name, () => {
      const file = build();
      const original = parseFile(file);
      const written = writeModel(`${name.replace(/\W+/g, '_')}.out.o`, modelFromElf(original));
      const reparsed = parseFile(written);
      assertSameObject(reparsed, original);
      for (const s of reparsed.sections) assert.equal(s.offset % Math.max(1, s.addralign), 0, `${s.name} offset is aligned`);
      assertMatchesReadelf(reparsed, written);
      assertReadelfClean(written);
    });
  }

  it('keeps COMDAT groups valid: same members, and ld still deduplicates them', () => {
    const src = work.write('dedup.cc', GROUPS_CC);
    const a = work.file('dedup-a.o');
    run('g++', ['-c', '-O2', src, '-o', a]);
    const written = writeModel('dedup-a.out.o', modelFromElf(parseFile(a)));
    const groups = readelfGroups(written);
    assert.ok(groups.length >= 2);
    assert.deepEqual(groups, readelfGroups(a));
    // A second object defining the same inline function: without a valid
    // group, linking both would fail with a multiple-definition error; and
    // 18 needs both calls to share one copy of sq's static counter.
    const b = work.file('dedup-b.o');
    run('g++', ['-c', '-O2', '-x', 'c++', work.write('dedup-b.cc', `${GROUPS_CC.replace('use', 'use2')}\nint use(int);\nint main() { return use(2) + use2(3) == 18 ? 0 : 1; }\n`), '-o', b]);
    const exe = work.file('dedup');
    run('g++', [written, b, '-o', exe]);
    assert.equal(runAll(exe, []).status, 0);
  });

  it('links into a program that runs and prints the expected output', () => {
    for (const flags of [['-O2', '-ffunction-sections', '-fdata-sections'], ['-O0', '-g']]) {
      const obj = work.compileC('program', PROGRAM_C, flags);
      const written = writeModel('program.out.o', modelFromElf(parseFile(obj)));
      assertReadelfClean(written);
      const exe = work.file('program');
      run('gcc', [written, '-o', exe]);
      assert.equal(run(exe, []), 'round trip 43 42 100\n');
    }
  });
});

describe('editing a model', () => {
  it('turns undefined symbols into SHN_ABS kernel addresses that the linker resolves exactly', () => {
    const source = `
extern void ext_func(int);
extern int ext_var;
extern int ext_arr[];
int entry(long i) { ext_func(ext_var); return ext_arr[i]; }
`;
    const obj = work.compileC('abs', source, ['-O2', '-fno-pic', '-mcmodel=kernel', '-fno-asynchronous-unwind-tables']);
    const model = modelFromElf(parseFile(obj));
    const addresses = new Map([
      ['ext_func', 0xffffffff81234560n],
      ['ext_var', 0xffffffff82000010n],
      ['ext_arr', 0xffffffff82100000n],
    ]);
    for (const [name, value] of addresses) {
      const sym = symbolNamed(model, name);
      assert.equal(sym.section, SHN_UNDEF);
      sym.section = SHN_ABS;
      sym.value = value;
    }
    const written = writeModel('abs.out.o', model);
    assertReadelfClean(written);
    const reparsed = parseFile(written);
    for (const [name, value] of addresses) {
      const sym = reparsed.symbols.find((s) => s.name === name);
      assert.deepEqual([sym?.shndx, sym?.value], [SHN_ABS, value]);
    }

    // Link at the kernel's text address and check every relocated field.
    const exe = work.file('abs.elf');
    run('ld', ['-e', 'entry', '-Ttext=0xffffffff81000000', written, '-o', exe]);
    const linked = parseFile(exe);
    const text = linked.sectionByName('.text') ?? assert.fail('no .text');
    const textIn = reparsed.sectionByName('.text') ?? assert.fail('no .text in object');
    const relocations = reparsed.relaFor(textIn);
    assert.deepEqual(
      relocations.map((r) => r.type).sort(),
      [R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_32S].sort(),
    );
    const view = new DataView(text.data.buffer, text.data.byteOffset, text.data.byteLength);
    for (const r of relocations) {
      const field = BigInt(view.getInt32(r.offset, true));
      const place = text.addr + BigInt(r.offset);
      const symbolValue = r.type === R_X86_64_32S ? field - r.addend : field + place - r.addend;
      assert.equal(BigInt.asUintN(64, symbolValue), addresses.get(reparsed.symbols[r.symbolIndex]?.name ?? ''), `relocation at ${r.offset}`);
    }
    // And binutils' disassembler agrees on the call target.
    assert.match(run('objdump', ['-d', exe]), /call\s+ffffffff81234560 <ext_func>/);
  });

  it('drops a section and adds a section with a new global symbol, then links', () => {
    const source = `
#include <stdio.h>
extern const char tsplice_msg[];
__attribute__((noinline)) int unused_helper(int x) { return x * 7; }
int main(void) { puts(tsplice_msg); return 0; }
`;
    const obj = work.compileC('edit', source, ['-O2', '-ffunction-sections', '-fdata-sections', '-fno-asynchronous-unwind-tables']);
    const model = modelFromElf(parseFile(obj));
    // Drop unused_helper's section and every symbol defined in it.
    const dropped = model.sections.find((s) => s.name === '.text.unused_helper') ?? assert.fail('no .text.unused_helper');
    model.sections = model.sections.filter((s) => s !== dropped);
    model.symbols = model.symbols.filter((s) => s.section !== dropped);
    // Define tsplice_msg in a new section.
    const rodata: ModelSection = { name: '.rodata.tsplice', type: SHT_PROGBITS, flags: SHF_ALLOC, addralign: 16, data: new TextEncoder().encode('patched!\0') };
    model.sections.push(rodata);
    const msg = symbolNamed(model, 'tsplice_msg');
    Object.assign(msg, { section: rodata, value: 0n, size: 9, type: STT_OBJECT });

    const written = writeModel('edit.out.o', model);
    assertReadelfClean(written);
    const reparsed = parseFile(written);
    assert.equal(reparsed.sectionByName('.text.unused_helper'), undefined);
    assert.equal(reparsed.symbols.some((s) => s.name === 'unused_helper'), false);
    const section = reparsed.sectionByName('.rodata.tsplice') ?? assert.fail('no .rodata.tsplice');
    assert.equal(section.offset % 16, 0);
    assert.equal(reparsed.symbols.find((s) => s.name === 'tsplice_msg')?.shndx, section.index);

    const exe = work.file('edit');
    run('gcc', [written, '-o', exe]);
    assert.equal(run(exe, []), 'patched!\n');
  });

  it('puts local symbols first and remaps relocation symbol indices', () => {
    const data: ModelSection = { name: '.data', type: SHT_PROGBITS, flags: SHF_ALLOC | 1n, addralign: 8, data: new Uint8Array(16) };
    const sym = (name: string, bind: number, section: ModelSection | number): ModelSymbol => ({
      name,
      value: 0n,
      size: 0,
      bind,
      type: STT_NOTYPE,
      visibility: STV_DEFAULT,
      section,
    });
    const external = sym('external', STB_GLOBAL, SHN_UNDEF);
    const local = sym('local', STB_LOCAL, data);
    const exported = { ...sym('exported', STB_GLOBAL, data), type: STT_FUNC, value: 8n };
    data.relocations = [
      { offset: 0, type: R_X86_64_64, symbol: external, addend: -8n },
      { offset: 8, type: R_X86_64_64, symbol: local, addend: 0x7fffffffffffffffn },
    ];
    const model: ObjectModel = { sections: [data], symbols: [external, exported, local] };
    const path = writeModel('locals.o', model);
    assertReadelfClean(path);
    const elf = parseFile(path);
    assertMatchesReadelf(elf, path);
    assert.deepEqual(
      elf.symbols.map((s) => [s.name, s.bind]),
      [['', STB_LOCAL], ['local', STB_LOCAL], ['external', STB_GLOBAL], ['exported', STB_GLOBAL]],
    );
    assert.equal(elf.sectionByName('.symtab')?.info, 2);
    const relocations = elf.relaFor(elf.sectionByName('.data') ?? assert.fail());
    assert.deepEqual(
      relocations.map((r) => [elf.symbols[r.symbolIndex]?.name, r.addend]),
      [['external', -8n], ['local', 0x7fffffffffffffffn]],
    );
  });

  it('refuses references to sections and symbols missing from the model', () => {
    const text: ModelSection = { name: '.text', type: SHT_PROGBITS, flags: SHF_ALLOC, data: new Uint8Array(8) };
    const orphanSection: ModelSection = { name: '.orphan', type: SHT_PROGBITS };
    const orphan: ModelSymbol = { name: 'orphan', value: 0n, size: 0, bind: STB_GLOBAL, type: STT_NOTYPE, visibility: 0, section: SHN_UNDEF };
    text.relocations = [{ offset: 0, type: R_X86_64_64, symbol: orphan, addend: 0n }];
    assert.throws(() => writeElf({ sections: [text], symbols: [] }), /refers to symbol orphan, which is not in model.symbols/);
    text.relocations = [];
    assert.throws(() => writeElf({ sections: [text], symbols: [{ ...orphan, section: orphanSection }] }), /refers to section .orphan, which is not in model.sections/);
    assert.throws(() => writeElf({ sections: [{ ...text, addralign: 3 }], symbols: [] }), /not a power of two/);
    assert.throws(() => writeElf({ sections: [text], symbols: [{ ...orphan, section: 5 }] }), /not a special section index/);
  });
});
