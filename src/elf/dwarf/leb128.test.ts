import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DwarfError } from './errors.js';
import { readSleb, readSlebBig, readUleb, readUlebBig, skipLeb } from './leb128.js';

const src = (...bytes: number[]) => ({ bytes: Uint8Array.from(bytes), section: '.debug_test', pos: 0 });

test('unsigned LEB128: the examples of DWARF 5 figure 22', () => {
  const cases: [number[], number][] = [
    [[2], 2],
    [[127], 127],
    [[0x80, 1], 128],
    [[0x81, 1], 129],
    [[0x82, 1], 130],
    [[0xb9, 0x64], 12857],
  ];
  for (const [bytes, value] of cases) {
    const s = src(...bytes);
    assert.equal(readUleb(s), value);
    assert.equal(s.pos, bytes.length, 'cursor after the number');
    assert.equal(readUlebBig(src(...bytes)), BigInt(value));
  }
});

test('signed LEB128: the examples of DWARF 5 figure 23', () => {
  const cases: [number[], number][] = [
    [[2], 2],
    [[0x7e], -2],
    [[0xff, 0], 127],
    [[0x81, 0x7f], -127],
    [[0x80, 1], 128],
    [[0x80, 0x7f], -128],
    [[0x81, 1], 129],
    [[0xff, 0x7e], -129],
  ];
  for (const [bytes, value] of cases) {
    const s = src(...bytes);
    assert.equal(readSleb(s), value);
    assert.equal(s.pos, bytes.length);
  }
});

test('LEB128 beyond 53 bits: bigint variants are exact, the number variant refuses', () => {
  // 2^64 - 1 and INT64_MIN, as gcc writes 64-bit enumerators.
  const max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
  assert.equal(readUlebBig(src(...max)), 0xffffffffffffffffn);
  assert.throws(() => readUleb(src(...max)), DwarfError);
  const min = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f];
  assert.equal(readSlebBig(src(...min)), -(2n ** 63n));
});

test('a LEB128 number cut off by the end of the section names the section and offset', () => {
  const s = { bytes: Uint8Array.from([0, 0, 0x80, 0x80]), section: '.debug_abbrev', pos: 2 };
  assert.throws(() => readUleb(s), /\.debug_abbrev at offset 0x2: LEB128 number runs past the end/);
  assert.throws(() => skipLeb(s), DwarfError);
  assert.equal(s.pos, 2, 'position unchanged after a failed read');
});

test('skipLeb steps over numbers of any length', () => {
  const s = src(0x80, 0x80, 0x01, 0x05);
  skipLeb(s);
  assert.equal(s.pos, 3);
  assert.equal(readUleb(s), 5);
});
