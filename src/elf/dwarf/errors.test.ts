// Bad input must fail with an error that names the section and the byte offset.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DwarfError, readTypeLayouts } from './index.js';
import { compileDwarf } from './test-helpers.js';

const sections = compileDwarf('struct s { int a; long b; }; long f(struct s *p) { return p->a + p->b; }\n');

function patched(bytes: Uint8Array, at: number, ...values: number[]): Uint8Array {
  const copy = Uint8Array.from(bytes);
  values.forEach((v, i) => (copy[at + i] = v));
  return copy;
}

test('the compiled sections parse', () => {
  assert.equal(readTypeLayouts(sections).types.get('struct s')?.size, 16);
});

test('a truncated .debug_info names .debug_info and the unit offset', () => {
  const info = sections.info.subarray(0, sections.info.length - 10);
  assert.throws(
    () => readTypeLayouts({ ...sections, info }),
    (e: unknown) => e instanceof DwarfError && e.section === '.debug_info' && /unit length \d+ runs past the end/.test(e.message) && e.offset === 0,
  );
});

test('a unit cut short inside a DIE names the offset', () => {
  // Shrink the unit length so that the unit ends in the middle of its DIEs.
  const view = new DataView(sections.info.buffer, sections.info.byteOffset);
  const length = view.getUint32(0, true);
  const info = Uint8Array.from(sections.info.subarray(0, 4 + length - 7));
  new DataView(info.buffer).setUint32(0, length - 7, true);
  assert.throws(() => readTypeLayouts({ ...sections, info }), (e: unknown) => e instanceof DwarfError && /^\.debug_info at offset 0x[0-9a-f]+: /.test(e.message));
});

test('an unsupported version is reported at the unit header', () => {
  const info = patched(sections.info, 4, 9, 0);
  assert.throws(() => readTypeLayouts({ ...sections, info }), /\.debug_info at offset 0x0: unsupported DWARF version 9/);
});

test('an unknown abbreviation code names the DIE offset', () => {
  // DWARF 5, 32-bit: the first DIE follows the 12-byte unit header.
  const info = patched(sections.info, 12, 0x7f);
  assert.throws(() => readTypeLayouts({ ...sections, info }), /\.debug_info at offset 0xc: abbreviation code 127 not in the table/);
});

test('an abbreviation table offset past .debug_abbrev names .debug_abbrev', () => {
  const info = patched(sections.info, 8, 0xff, 0xff, 0, 0);
  assert.throws(() => readTypeLayouts({ ...sections, info }), /\.debug_abbrev at offset 0xffff: abbreviation table offset past the end/);
});

test('a missing string section is named', () => {
  assert.throws(() => readTypeLayouts({ info: sections.info, abbrev: sections.abbrev }), /there is no \.debug_(line_)?str section/);
});

test('a corrupt abbreviation table names .debug_abbrev', () => {
  const abbrev = patched(sections.abbrev, 2, 7); // children flag of the first abbreviation
  assert.throws(() => readTypeLayouts({ ...sections, abbrev }), /\.debug_abbrev at offset 0x2: abbreviation \d+ has invalid children flag 7/);
});

test('an unknown attribute form is named', () => {
  // Find the first abbreviation's first (attribute, form) pair and give it form 0x7e.
  const a = sections.abbrev;
  let p = 0;
  while (a[p]! & 0x80) p++; // code
  p++;
  while (a[p]! & 0x80) p++; // tag
  p += 2; // past the tag's last byte and the children flag
  assert.ok(a[p]! < 0x80, 'first attribute is one byte');
  const abbrev = patched(a, p + 1, 0x7e); // its form

  assert.throws(() => readTypeLayouts({ ...sections, abbrev }), /\.debug_info at offset 0x[0-9a-f]+: (unknown attribute form 0x7e|form 0x7e is not a string)/);
});
