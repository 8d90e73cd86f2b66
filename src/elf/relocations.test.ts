import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { SHF_ALLOC, SHF_WRITE, SHN_UNDEF, SHT_PROGBITS, SHT_REL, STB_GLOBAL, STT_NOTYPE } from './constants.js';
import { SHDR } from './layout.js';
import type { ModelSection, ModelSymbol } from './model.js';
import { parseElf } from './read.js';
import { assertMatchesReadelf } from './test-support/compare.js';
import { readelfRelocations } from './test-support/readelf.js';
import { Workdir } from './test-support/toolchain.js';
import { writeElf } from './write.js';
import {
  R_X86_64_16,
  R_X86_64_32,
  R_X86_64_32S,
  R_X86_64_64,
  R_X86_64_PC32,
  R_X86_64_PC8,
  R_X86_64_PLT32,
  R_X86_64_REX_GOTPCRELX,
  readRelocatedField,
  relocationInfo,
  relocationName,
  relocationType,
} from './x86-64-relocations.js';

const work = new Workdir();
after(() => work.remove());

describe('x86-64 relocation types', () => {
  it('have the numbers and names binutils uses', () => {
    // gas maps each name to a number, readelf maps the number back to a name.
    const known = [...Array(64).keys()].filter((t) => relocationInfo(t) !== undefined);
    assert.equal(known.length, 41);
    const asm = ['.text', 'sym: .space 64', ...known.map((t) => `.reloc 0, ${relocationInfo(t)?.name}, sym`)].join('\n');
    const entries = readelfRelocations(work.assemble('relocs', `${asm}\n`));
    assert.deepEqual(
      entries.map((e) => [e.type, e.typeName]),
      known.map((t) => [t, relocationInfo(t)?.name]),
    );
  });

  it('know field widths and PC-relativity', () => {
    const summary = (t: number) => {
      const i = relocationInfo(t);
      return i === undefined ? undefined : [i.size, i.pcRelative, i.signed];
    };
    assert.deepEqual(summary(R_X86_64_64), [8, false, true]);
    assert.deepEqual(summary(R_X86_64_PC32), [4, true, true]);
    assert.deepEqual(summary(R_X86_64_PLT32), [4, true, true]);
    assert.deepEqual(summary(R_X86_64_32), [4, false, false]);
    assert.deepEqual(summary(R_X86_64_32S), [4, false, true]);
    assert.deepEqual(summary(R_X86_64_16), [2, false, false]);
    assert.deepEqual(summary(R_X86_64_PC8), [1, true, true]);
    assert.deepEqual(summary(R_X86_64_REX_GOTPCRELX), [4, true, true]);
    assert.equal(relocationInfo(39), undefined);
    assert.equal(relocationName(200), 'R_X86_64_<200>');
  });
});

describe('x86-64 PC-relativity, per the psABI calculations', () => {
  it('marks exactly the types whose calculation subtracts P', () => {
    // psABI "Relocation Types": S + A - P (PC32, PC16, PC8, PC64), L + A - P (PLT32),
    // G + GOT + A - P (GOTPCREL, GOTPCRELX, REX_GOTPCRELX, GOTPCREL64), GOT + A - P
    // (GOTPC32, GOTPC64), and the TLS forms that are relative to the place.
    const pcRelative = [...Array(64).keys()].filter((t) => relocationInfo(t)?.pcRelative === true).map(relocationName);
    assert.deepEqual(pcRelative.sort(), [
      'R_X86_64_GOTPC32',
      'R_X86_64_GOTPC32_TLSDESC',
      'R_X86_64_GOTPC64',
      'R_X86_64_GOTPCREL',
      'R_X86_64_GOTPCREL64',
      'R_X86_64_GOTPCRELX',
      'R_X86_64_GOTTPOFF',
      'R_X86_64_PC16',
      'R_X86_64_PC32',
      'R_X86_64_PC64',
      'R_X86_64_PC8',
      'R_X86_64_PLT32',
      'R_X86_64_REX_GOTPCRELX',
      'R_X86_64_TLSGD',
      'R_X86_64_TLSLD',
    ]);
  });

  it('does not take PLTOFF64 (L - GOT + A) or GOTOFF64 (S + A - GOT) for PC-relative', () => {
    for (const name of ['R_X86_64_PLTOFF64', 'R_X86_64_GOTOFF64', 'R_X86_64_GOTPLT64', 'R_X86_64_GOT64', 'R_X86_64_32S', 'R_X86_64_64']) {
      const type = relocationType(name) ?? assert.fail(`no type named ${name}`);
      assert.equal(relocationInfo(type)?.pcRelative, false, name);
    }
    for (const name of ['R_X86_64_PC32', 'R_X86_64_PLT32', 'R_X86_64_PC64', 'R_X86_64_GOTPCREL', 'R_X86_64_GOTPCRELX', 'R_X86_64_REX_GOTPCRELX']) {
      const type = relocationType(name) ?? assert.fail(`no type named ${name}`);
      assert.equal(relocationInfo(type)?.pcRelative, true, name);
    }
    assert.deepEqual(
      ['R_X86_64_PC32', 'R_X86_64_PLTOFF64', 'R_X86_64_PC64'].map((n) => relocationInfo(relocationType(n) ?? -1)?.size),
      [4, 8, 8],
    );
  });

  it('maps every psABI name back to its number', () => {
    for (const type of [...Array(64).keys()].filter((t) => relocationInfo(t) !== undefined)) assert.equal(relocationType(relocationName(type)), type);
    assert.equal(relocationType('R_X86_64_<200>'), undefined);
    assert.equal(relocationType('PC32'), undefined);
  });

  it('reads a relocated field with the width and extension of its type', () => {
    const bytes = Uint8Array.from([0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80]);
    assert.equal(readRelocatedField(bytes, 0, 4, true), -4n);
    assert.equal(readRelocatedField(bytes, 0, 4, false), 0xfffffffcn);
    assert.equal(readRelocatedField(bytes, 0, 8, false), 0xfffffffffffffffcn);
    assert.equal(readRelocatedField(bytes, 7, 2, true), -0x7f01n);
    assert.equal(readRelocatedField(bytes, 8, 1, false), 0x80n);
    assert.throws(() => readRelocatedField(bytes, 0, 16, false), RangeError);
  });
});

describe('SHT_REL sections', () => {
  it('read the implicit addend from the relocated field, with the width and signedness of the type', () => {
    const data = new Uint8Array(24);
    const view = new DataView(data.buffer);
    view.setUint32(0, 0xfffffff0, true); // R_X86_64_32: zero-extended
    view.setInt32(4, -4, true); // R_X86_64_PC32: sign-extended
    view.setBigInt64(8, -100n, true); // R_X86_64_64
    view.setUint16(16, 0xfffe, true); // R_X86_64_16: zero-extended
    view.setInt8(18, -1); // R_X86_64_PC8: sign-extended
    const target: ModelSymbol = { name: 'target', value: 0n, size: 0, bind: STB_GLOBAL, type: STT_NOTYPE, visibility: 0, section: SHN_UNDEF };
    const section: ModelSection = {
      name: '.data',
      type: SHT_PROGBITS,
      flags: SHF_ALLOC | SHF_WRITE,
      addralign: 8,
      data,
      relocations: [
        [0, R_X86_64_32],
        [4, R_X86_64_PC32],
        [8, R_X86_64_64],
        [16, R_X86_64_16],
        [18, R_X86_64_PC8],
      ].map(([offset, type]) => ({ offset: offset as number, type: type as number, symbol: target, addend: 0n })),
    };
    const bytes = writeElf({ sections: [section], symbols: [target] });

    // gas never emits SHT_REL for x86-64, so turn the written .rela.data into
    // a .rel.data in place: 16-byte entries, no addend field.
    const rela = parseElf(bytes).sectionByName('.rela.data') ?? assert.fail('no .rela.data');
    const shstrtab = parseElf(bytes).sections.at(-1) ?? assert.fail();
    const dv = new DataView(bytes.buffer);
    const header = parseElf(bytes).header.shoff + rela.index * 64;
    const count = rela.size / 24;
    for (let i = 0; i < count; i++) bytes.copyWithin(rela.offset + i * 16, rela.offset + i * 24, rela.offset + i * 24 + 16);
    dv.setUint32(header + SHDR.type, SHT_REL, true);
    dv.setBigUint64(header + SHDR.size, BigInt(count * 16), true);
    dv.setBigUint64(header + SHDR.entsize, 16n, true);
    const nameAt = shstrtab.offset + dv.getUint32(header + SHDR.name, true);
    bytes.set(new TextEncoder().encode('.rel.data\0'), nameAt);

    const path = work.write('rel.o', bytes);
    const elf = parseElf(bytes, path);
    const rel = elf.sectionByName('.rel.data') ?? assert.fail('no .rel.data');
    assert.equal(rel.type, SHT_REL);
    assertMatchesReadelf(elf, path);
    assert.deepEqual(
      elf.relaFor(elf.sectionByName('.data') ?? assert.fail()).map((r) => [r.offset, r.type, r.addend]),
      [
        [0, R_X86_64_32, 0xfffffff0n],
        [4, R_X86_64_PC32, -4n],
        [8, R_X86_64_64, -100n],
        [16, R_X86_64_16, 0xfffen],
        [18, R_X86_64_PC8, -1n],
      ],
    );
  });
});
