// Hand-assembled DWARF for what gcc does not emit by default: every attribute form
// (skipped or read), DW_FORM_indirect, strx through .debug_str_offsets, DWARF 2 style
// member locations and bit offsets, data1 enumerators whose sign the enum's type decides,
// 64-bit DWARF, cross-unit DW_FORM_ref_addr, and a DWARF 4 unit header.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AT, FORM, TAG } from './constants.js';
import { readTypeLayouts } from './index.js';

/** A little byte assembler with labels, for references that point forward. */
class Asm {
  readonly bytes: number[] = [];
  private readonly labels = new Map<string, number>();
  private readonly fixups: { at: number; size: number; label: string; base: () => number; uleb: boolean }[] = [];

  get pos(): number {
    return this.bytes.length;
  }
  u8(...v: number[]): this {
    this.bytes.push(...v.map((x) => x & 0xff));
    return this;
  }
  uint(v: number | bigint, size: number): this {
    let x = BigInt(v);
    for (let i = 0; i < size; i++, x >>= 8n) this.bytes.push(Number(x & 0xffn));
    return this;
  }
  uleb(v: number | bigint): this {
    let x = BigInt(v);
    do {
      const b = Number(x & 0x7fn);
      x >>= 7n;
      this.bytes.push(x !== 0n ? b | 0x80 : b);
    } while (x !== 0n);
    return this;
  }
  sleb(v: number): this {
    let x = BigInt(v);
    for (;;) {
      const b = Number(x & 0x7fn);
      x >>= 7n;
      const done = (x === 0n && (b & 0x40) === 0) || (x === -1n && (b & 0x40) !== 0);
      this.bytes.push(done ? b : b | 0x80);
      if (done) return this;
    }
  }
  str(s: string): this {
    this.bytes.push(...Buffer.from(s, 'utf8'), 0);
    return this;
  }
  label(name: string): this {
    this.labels.set(name, this.pos);
    return this;
  }
  /** A reference to a label, relative to base(), as a fixed-size number or a 4-byte padded ULEB128. */
  ref(label: string, size: number, base: () => number = () => 0, uleb = false): this {
    this.fixups.push({ at: this.pos, size, label, base, uleb });
    for (let i = 0; i < size; i++) this.bytes.push(0);
    return this;
  }
  patch(at: number, value: number | bigint, size: number): void {
    let x = BigInt(value);
    for (let i = 0; i < size; i++, x >>= 8n) this.bytes[at + i] = Number(x & 0xffn);
  }
  finish(): Uint8Array {
    for (const f of this.fixups) {
      const target = this.labels.get(f.label);
      assert.ok(target !== undefined, `label ${f.label}`);
      const v = target - f.base();
      if (f.uleb) for (let i = 0; i < f.size; i++) this.bytes[f.at + i] = ((v >> (7 * i)) & 0x7f) | (i < f.size - 1 ? 0x80 : 0);
      else this.patch(f.at, v, f.size);
    }
    return Uint8Array.from(this.bytes);
  }
}

type Spec = [attr: number, form: number, implicit?: number];
function abbrevTable(a: Asm, entries: [code: number, tag: number, children: boolean, attrs: Spec[]][]): void {
  for (const [code, tag, children, attrs] of entries) {
    a.uleb(code).uleb(tag).u8(children ? 1 : 0);
    for (const [attr, form, implicit] of attrs) {
      a.uleb(attr).uleb(form);
      if (form === FORM.implicit_const) a.sleb(implicit ?? 0);
    }
    a.u8(0, 0);
  }
  a.u8(0);
}

/** Every form, each on an attribute nobody reads, with a value of the right size. */
const SKIPPED: [number, (a: Asm) => void][] = [
  [FORM.addr, (a) => a.uint(0x1234, 8)],
  [FORM.block2, (a) => a.uint(3, 2).u8(1, 2, 3)],
  [FORM.block4, (a) => a.uint(2, 4).u8(1, 2)],
  [FORM.data2, (a) => a.uint(7, 2)],
  [FORM.data4, (a) => a.uint(7, 4)],
  [FORM.data8, (a) => a.uint(7, 8)],
  [FORM.string, (a) => a.str('skipped')],
  [FORM.block, (a) => a.uleb(200).u8(...new Array<number>(200).fill(9))],
  [FORM.block1, (a) => a.u8(1, 0x55)],
  [FORM.data1, (a) => a.u8(1)],
  [FORM.flag, (a) => a.u8(1)],
  [FORM.sdata, (a) => a.sleb(-1000000)],
  [FORM.strp, (a) => a.uint(1, 4)],
  [FORM.udata, (a) => a.uleb(1n << 60n)],
  [FORM.ref_addr, (a) => a.uint(0, 4)],
  [FORM.ref1, (a) => a.u8(0)],
  [FORM.ref2, (a) => a.uint(0, 2)],
  [FORM.ref4, (a) => a.uint(0, 4)],
  [FORM.ref8, (a) => a.uint(0, 8)],
  [FORM.ref_udata, (a) => a.uleb(300)],
  [FORM.sec_offset, (a) => a.uint(0, 4)],
  [FORM.exprloc, (a) => a.uleb(2).u8(0x9c, 0x9c)],
  [FORM.flag_present, () => undefined],
  [FORM.strx, (a) => a.uleb(0)],
  [FORM.addrx, (a) => a.uleb(129)],
  [FORM.ref_sup4, (a) => a.uint(0, 4)],
  [FORM.strp_sup, (a) => a.uint(0, 4)],
  [FORM.data16, (a) => a.uint(0, 16)],
  [FORM.line_strp, (a) => a.uint(0, 4)],
  [FORM.ref_sig8, (a) => a.uint(0xdeadbeefn, 8)],
  [FORM.implicit_const, () => undefined],
  [FORM.loclistx, (a) => a.uleb(1)],
  [FORM.rnglistx, (a) => a.uleb(1)],
  [FORM.ref_sup8, (a) => a.uint(0, 8)],
  [FORM.strx1, (a) => a.u8(0)],
  [FORM.strx2, (a) => a.uint(0, 2)],
  [FORM.strx3, (a) => a.uint(0, 3)],
  [FORM.strx4, (a) => a.uint(0, 4)],
  [FORM.addrx1, (a) => a.u8(0)],
  [FORM.addrx2, (a) => a.uint(0, 2)],
  [FORM.addrx3, (a) => a.uint(0, 3)],
  [FORM.addrx4, (a) => a.uint(0, 4)],
  [FORM.GNU_addr_index, (a) => a.uleb(5)],
  [FORM.GNU_str_index, (a) => a.uleb(5)],
  [FORM.GNU_ref_alt, (a) => a.uint(0, 4)],
  [FORM.GNU_strp_alt, (a) => a.uint(0, 4)],
  [FORM.indirect, (a) => a.uleb(FORM.data2).uint(5, 2)],
];

function assemble(): { info: Uint8Array; abbrev: Uint8Array; str: Uint8Array; strOffsets: Uint8Array } {
  const str = new Asm().u8(0).str('hand').str('wide').finish(); // "hand" at 1, "wide" at 6
  const strOffsets = new Asm().uint(8, 4).uint(5, 2).uint(0, 2).uint(1, 4).uint(6, 4).finish();

  const ab = new Asm();
  abbrevTable(ab, [
    [1, TAG.compile_unit, true, [[AT.name, FORM.string], [AT.str_offsets_base, FORM.sec_offset]]],
    [2, TAG.base_type, false, [[AT.name, FORM.string], [AT.encoding, FORM.data1], [AT.byte_size, FORM.data1]]],
    [3, TAG.structure_type, true, [[AT.name, FORM.strx1], [AT.byte_size, FORM.data2]]],
    [4, TAG.member, false, [[AT.name, FORM.string], [AT.type, FORM.ref_udata], [AT.data_member_location, FORM.exprloc]]],
    [
      5,
      TAG.member,
      false,
      [[AT.name, FORM.string], [AT.type, FORM.ref1], [AT.byte_size, FORM.data1], [AT.bit_size, FORM.data1], [AT.bit_offset, FORM.data1], [AT.data_member_location, FORM.block1]],
    ],
    [6, TAG.enumeration_type, true, [[AT.name, FORM.string], [AT.type, FORM.ref4], [AT.byte_size, FORM.implicit_const, 4]]],
    [7, TAG.enumerator, false, [[AT.name, FORM.string], [AT.const_value, FORM.data1]]],
    [8, TAG.member, false, [[AT.name, FORM.string], [AT.type, FORM.ref_addr], [AT.data_member_location, FORM.udata]]],
    [9, TAG.member, false, [[AT.name, FORM.indirect], [AT.type, FORM.indirect], [AT.data_member_location, FORM.indirect]]],
    [10, 0x4242, false, SKIPPED.map(([form], i) => [0x2101 + i, form, -5] as Spec)],
  ]);
  const abbrev2 = ab.pos;
  abbrevTable(ab, [
    [1, TAG.compile_unit, true, [[AT.name, FORM.strp]]],
    [2, TAG.structure_type, true, [[AT.name, FORM.strp], [AT.byte_size, FORM.data1]]],
    [3, TAG.member, false, [[AT.name, FORM.string], [AT.type, FORM.ref_addr], [AT.data_member_location, FORM.data1]]],
  ]);
  const abbrev3 = ab.pos;
  abbrevTable(ab, [
    [1, TAG.compile_unit, true, [[AT.name, FORM.string]]],
    [2, TAG.base_type, false, [[AT.name, FORM.string], [AT.encoding, FORM.data1], [AT.byte_size, FORM.data1]]],
    [3, TAG.structure_type, true, [[AT.name, FORM.string], [AT.byte_size, FORM.data1]]],
    [4, TAG.member, false, [[AT.name, FORM.string], [AT.type, FORM.ref4], [AT.data_member_location, FORM.data1]]],
  ]);

  const a = new Asm();
  // Unit 1: DWARF 5, 32-bit.
  const u1 = a.pos;
  const base1 = () => u1;
  a.uint(0, 4).uint(5, 2).u8(1, 8).uint(0, 4);
  a.uleb(1).str('hand.c').uint(8, 4);
  a.label('int').uleb(2).str('int').u8(5, 4);
  a.label('uint').uleb(2).str('unsigned int').u8(7, 4);
  a.uleb(10);
  SKIPPED.forEach(([, write]) => write(a));
  a.uleb(3).u8(0).uint(24, 2);
  a.uleb(4).str('a').ref('int', 4, base1, true).uleb(2).u8(0x23, 4);
  a.uleb(5).str('bf').ref('uint', 1, base1).u8(4, 3, 27).u8(2, 0x23, 8);
  a.uleb(8).str('viaaddr').ref('int', 4).uleb(12);
  a.uleb(9).uleb(FORM.string).str('ind').uleb(FORM.ref2).ref('uint', 2, base1).uleb(FORM.data4).uint(16, 4);
  a.u8(0);
  a.uleb(6).str('sgn').ref('int', 4, base1);
  a.uleb(7).str('NEG').u8(0xfd);
  a.uleb(7).str('POS').u8(5);
  a.u8(0);
  a.uleb(6).str('uns').ref('uint', 4, base1);
  a.uleb(7).str('BIG').u8(0xfd);
  a.u8(0);
  a.u8(0);
  a.patch(u1, a.pos - u1 - 4, 4);

  // Unit 2: DWARF 5, 64-bit, with a reference into unit 1.
  const u2 = a.pos;
  a.uint(0xffffffff, 4).uint(0, 8).uint(5, 2).u8(1, 8).uint(abbrev2, 8);
  a.uleb(1).uint(6, 8);
  a.uleb(2).uint(6, 8).u8(8);
  a.uleb(3).str('w').ref('int', 8).u8(0);
  a.u8(0, 0);
  a.patch(u2 + 4, a.pos - u2 - 12, 8);

  // Unit 3: DWARF 4 header order (abbreviation offset before address size).
  const u3 = a.pos;
  const base3 = () => u3;
  a.uint(0, 4).uint(4, 2).uint(abbrev3, 4).u8(8);
  a.uleb(1).str('old.c');
  a.label('int4').uleb(2).str('int').u8(5, 4);
  a.uleb(3).str('old').u8(4);
  a.uleb(4).str('o').ref('int4', 4, base3).u8(0);
  a.u8(0, 0);
  a.patch(u3, a.pos - u3 - 4, 4);

  return { info: a.finish(), abbrev: ab.finish(), str, strOffsets };
}

test('hand-assembled DWARF: every form, indirect forms, strx, DWARF 2 locations, 64-bit and DWARF 4 units', () => {
  const layouts = readTypeLayouts(assemble());
  assert.deepEqual(layouts.conflicts, []);
  const hand = layouts.types.get('struct hand');
  assert.ok(hand, [...layouts.types.keys()].join(', '));
  assert.equal(hand.unit, 'hand.c');
  assert.equal(hand.size, 24);
  assert.deepEqual(
    hand.members.map((m) => [m.name, m.offset, m.bitOffset, m.bitSize, m.type]),
    [
      ['a', 4, undefined, undefined, 'int'],
      // DWARF 2 bit offset 27 in a 4-byte unit at 8: bits 2..4 on a little-endian machine.
      ['bf', 8, 2, 3, 'unsigned int'],
      ['viaaddr', 12, undefined, undefined, 'int'],
      ['ind', 16, undefined, undefined, 'unsigned int'],
    ],
  );
  assert.deepEqual(
    layouts.types.get('enum sgn')?.enumerators.map((e) => [e.name, e.value]),
    [
      ['NEG', -3n],
      ['POS', 5n],
    ],
  );
  assert.equal(layouts.types.get('enum sgn')?.size, 4, 'DW_FORM_implicit_const');
  assert.deepEqual(layouts.types.get('enum uns')?.enumerators.map((e) => e.value), [253n]);
  const wide = layouts.types.get('struct wide');
  assert.deepEqual([wide?.unit, wide?.size, wide?.members[0]?.type], ['wide', 8, 'int']);
  const old = layouts.types.get('struct old');
  assert.deepEqual([old?.unit, old?.members[0]?.name, old?.members[0]?.type], ['old.c', 'o', 'int']);
});
