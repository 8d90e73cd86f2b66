// Field-by-field comparison of a parsed ElfFile with what readelf prints for
// the same file. Shared by the reader tests and the writer tests (which check
// written files the same way).

import assert from 'node:assert/strict';

import { SHT_DYNSYM, SHT_REL, SHT_RELA, SHT_SYMTAB, STT_SECTION } from '../constants.js';
import type { ElfFile, ElfSymbol } from '../types.js';
import { relocationInfo } from '../x86-64-relocations.js';
import {
  flagLetters,
  ndxName,
  readelfRelocations,
  readelfSections,
  readelfSymbols,
  symbolBindName,
  symbolTypeName,
  visibilityName,
} from './readelf.js';

/** Asserts that sections, symbols and relocations agree exactly; returns counts so callers can check something was compared. */
export function assertMatchesReadelf(elf: ElfFile, file: string): { sections: number; symbols: number; relocations: number } {
  const sections = readelfSections(file);
  assert.equal(elf.sections.length, sections.length, 'section count');
  for (const expected of sections) {
    const s = elf.sections[expected.index];
    assert.ok(s !== undefined);
    const what = `section ${expected.index} (${expected.name})`;
    assert.equal(s.name, expected.name, `${what} name`);
    assert.equal(s.type, expected.type, `${what} type`);
    assert.equal(s.addr, expected.addr, `${what} addr`);
    assert.equal(s.offset, expected.offset, `${what} offset`);
    assert.equal(s.size, expected.size, `${what} size`);
    assert.equal(s.entsize, expected.entsize, `${what} entsize`);
    assert.equal(flagLetters(s.flags), expected.flags, `${what} flags`);
    assert.equal(s.link, expected.link, `${what} link`);
    assert.equal(s.info, expected.info, `${what} info`);
    assert.equal(s.addralign, expected.addralign, `${what} addralign`);
  }

  const displayName = (sym: ElfSymbol): string =>
    sym.type === STT_SECTION && sym.name === '' ? (elf.sections[sym.shndx]?.name ?? '') : sym.name;

  const symbols = readelfSymbols(file);
  for (const [tableName, ours] of [
    ['.symtab', elf.symbols],
    ['.dynsym', elf.dynamicSymbols],
  ] as const) {
    const theirs = symbols.filter((s) => s.table === tableName);
    assert.equal(ours.length, theirs.length, `${tableName} symbol count`);
    for (const expected of theirs) {
      const sym = ours[expected.index];
      assert.ok(sym !== undefined);
      const what = `${tableName} symbol ${expected.index} (${expected.name})`;
      assert.equal(sym.index, expected.index, `${what} index`);
      assert.equal(sym.value, expected.value, `${what} value`);
      assert.equal(sym.size, expected.size, `${what} size`);
      assert.equal(symbolTypeName(sym.type), expected.type, `${what} type`);
      assert.equal(symbolBindName(sym.bind), expected.bind, `${what} bind`);
      assert.equal(visibilityName(sym.visibility), expected.visibility, `${what} visibility`);
      assert.equal(ndxName(sym.shndx, sym.special), expected.ndx, `${what} shndx`);
      assert.equal(displayName(sym), expected.name, `${what} name`);
    }
  }

  const relocations = readelfRelocations(file);
  let compared = 0;
  const relocationSections = elf.sections.filter((s) => s.type === SHT_RELA || s.type === SHT_REL);
  assert.deepEqual(
    relocationSections.filter((s) => s.size > 0).map((s) => s.name),
    [...new Set(relocations.map((r) => r.section))],
    'relocation sections',
  );
  for (const section of relocationSections) {
    const ours = elf.relocations(section);
    const theirs = relocations.filter((r) => r.section === section.name);
    assert.equal(ours.length, theirs.length, `${section.name} entry count`);
    const table = elf.sections[section.link];
    const symbolsOfTable = table !== undefined && (table.type === SHT_SYMTAB || table.type === SHT_DYNSYM) ? elf.symbolTable(table) : [];
    ours.forEach((r, i) => {
      const expected = theirs[i];
      assert.ok(expected !== undefined);
      const what = `${section.name} entry ${i}`;
      assert.equal(BigInt(r.offset), expected.offset, `${what} offset`);
      assert.equal(r.type, expected.type, `${what} type`);
      assert.equal(relocationInfo(r.type)?.name, expected.typeName, `${what} type name`);
      assert.equal(r.symbolIndex, expected.symbolIndex, `${what} symbol index`);
      const sym = symbolsOfTable[r.symbolIndex];
      assert.equal(r.symbolIndex === 0 ? '' : sym !== undefined ? displayName(sym) : '?', expected.symbolName, `${what} symbol name`);
      if (expected.addend !== undefined) assert.equal(r.addend, expected.addend, `${what} addend`);
      compared++;
    });
  }
  return { sections: sections.length, symbols: symbols.length, relocations: compared };
}
