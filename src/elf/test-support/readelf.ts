// Parses `readelf -W` output into plain values, so tests can compare parseElf's
// result with binutils field by field. Only the formats readelf 2.40 prints
// for x86-64 are handled; anything unrecognised throws, so a format change
// fails the test instead of silently comparing nothing.

import { run } from './toolchain.js';

export interface ReadelfSection {
  index: number;
  name: string;
  type: number;
  addr: bigint;
  offset: number;
  size: number;
  entsize: number;
  flags: string;
  link: number;
  info: number;
  addralign: number;
}

export interface ReadelfSymbol {
  table: string;
  index: number;
  value: bigint;
  size: number;
  type: string;
  bind: string;
  visibility: string;
  /** "UND", "ABS", "COM" or a decimal section index. */
  ndx: string;
  name: string;
}

export interface ReadelfRelocation {
  section: string;
  offset: bigint;
  type: number;
  typeName: string;
  symbolIndex: number;
  /** The symbol's name as printed (section name for section symbols, version suffix stripped). */
  symbolName: string;
  /** undefined for SHT_REL entries, which print no addend. */
  addend: bigint | undefined;
}

export interface ReadelfSegment {
  type: string;
  offset: number;
  vaddr: bigint;
  paddr: bigint;
  filesz: number;
  memsz: number;
  flags: string;
  align: number;
}

const SECTION_TYPES: Record<string, number> = {
  NULL: 0,
  PROGBITS: 1,
  SYMTAB: 2,
  STRTAB: 3,
  RELA: 4,
  HASH: 5,
  DYNAMIC: 6,
  NOTE: 7,
  NOBITS: 8,
  REL: 9,
  DYNSYM: 11,
  INIT_ARRAY: 14,
  FINI_ARRAY: 15,
  PREINIT_ARRAY: 16,
  GROUP: 17,
  'SYMTAB SECTION INDICES': 18,
  GNU_ATTRIBUTES: 0x6ffffff5,
  GNU_HASH: 0x6ffffff6,
  VERDEF: 0x6ffffffd,
  VERNEED: 0x6ffffffe,
  VERSYM: 0x6fffffff,
  X86_64_UNWIND: 0x70000001,
};

const SECTION_LINE =
  /^\s*\[\s*(\d+)\] (.*?)\s+([A-Z][A-Za-z0-9_+ ]*?)\s+([0-9a-f]{16}) ([0-9a-f]+) ([0-9a-f]+) ([0-9a-f]+)\s+(?:([A-Za-z]+)\s+)?(\d+)\s+(\d+)\s+(\d+)$/;

export function readelfSections(file: string): ReadelfSection[] {
  const out = run('readelf', ['-W', '-S', file]);
  const result: ReadelfSection[] = [];
  for (const line of out.split('\n')) {
    if (!/^\s*\[\s*\d+\]/.test(line)) continue;
    const m = SECTION_LINE.exec(line);
    if (m === null) throw new Error(`unrecognised readelf section line: ${line}`);
    const type = SECTION_TYPES[m[3] as string];
    if (type === undefined) throw new Error(`unknown readelf section type ${m[3]}`);
    result.push({
      index: Number(m[1]),
      name: m[2] as string,
      type,
      addr: BigInt(`0x${m[4]}`),
      offset: parseInt(m[5] as string, 16),
      size: parseInt(m[6] as string, 16),
      entsize: parseInt(m[7] as string, 16),
      flags: m[8] ?? '',
      link: Number(m[9]),
      info: Number(m[10]),
      addralign: Number(m[11]),
    });
  }
  return result;
}

const SYMBOL_LINE = /^\s*(\d+): ([0-9a-f]{16})\s+(\d+|0x[0-9a-f]+) (\S+)\s+(\S+)\s+(\S+)\s+(\S+) ?(.*)$/;

/** Symbols of every table readelf prints (.symtab, .dynsym), each tagged with its table's name. */
export function readelfSymbols(file: string): ReadelfSymbol[] {
  const out = run('readelf', ['-W', '-s', file]);
  const result: ReadelfSymbol[] = [];
  let table = '';
  for (const line of out.split('\n')) {
    const header = /^Symbol table '([^']+)'/.exec(line);
    if (header !== null) {
      table = header[1] as string;
      continue;
    }
    if (!/^\s*\d+:/.test(line)) continue;
    const m = SYMBOL_LINE.exec(line);
    if (m === null) throw new Error(`unrecognised readelf symbol line: ${line}`);
    let name = m[8] as string;
    // Dynamic symbols carry version suffixes: "printf@GLIBC_2.2.5 (2)".
    if (table === '.dynsym') name = name.replace(/@.*$/, '');
    result.push({
      table,
      index: Number(m[1]),
      value: BigInt(`0x${m[2]}`),
      size: Number(m[3]),
      type: m[4] as string,
      bind: m[5] as string,
      visibility: m[6] as string,
      ndx: m[7] as string,
      name,
    });
  }
  return result;
}

const RELOCATION_LINE = /^([0-9a-f]{16})\s+([0-9a-f]{16}) (\S+)\s*(.*)$/;

export function readelfRelocations(file: string): ReadelfRelocation[] {
  const out = run('readelf', ['-W', '-r', file]);
  const result: ReadelfRelocation[] = [];
  let section = '';
  let isRela = true;
  for (const line of out.split('\n')) {
    const header = /^Relocation section '([^']+)' at offset/.exec(line);
    if (header !== null) {
      section = header[1] as string;
      isRela = section.startsWith('.rela');
      continue;
    }
    const m = RELOCATION_LINE.exec(line);
    if (m === null) continue;
    const info = BigInt(`0x${m[2]}`);
    const symbolIndex = Number(info >> 32n);
    const rest = (m[4] as string).trim();
    let symbolName = '';
    let addend: bigint | undefined;
    if (symbolIndex === 0) {
      // No symbol: RELA prints just the addend, REL nothing.
      if (isRela) {
        const a = /^(-?)([0-9a-f]+)$/.exec(rest);
        if (a === null) throw new Error(`unrecognised readelf relocation line: ${line}`);
        addend = BigInt(`0x${a[2]}`) * (a[1] === '-' ? -1n : 1n);
      }
    } else if (isRela) {
      const a = /^[0-9a-f]{16}\s+(.*) ([+-]) ([0-9a-f]+)$/.exec(rest);
      if (a === null) throw new Error(`unrecognised readelf relocation line: ${line}`);
      symbolName = a[1] as string;
      addend = BigInt(`0x${a[3]}`) * (a[2] === '-' ? -1n : 1n);
    } else {
      const a = /^[0-9a-f]{16}\s+(.*)$/.exec(rest);
      if (a === null) throw new Error(`unrecognised readelf relocation line: ${line}`);
      symbolName = a[1] as string;
    }
    result.push({
      section,
      offset: BigInt(`0x${m[1]}`),
      type: Number(info & 0xffffffffn),
      typeName: m[3] as string,
      symbolIndex,
      symbolName: symbolName.replace(/@.*$/, ''),
      addend,
    });
  }
  return result;
}

const SEGMENT_LINE =
  /^\s+([A-Z][A-Z_0-9+]*)\s+0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) ([RWE ]{3}) 0x([0-9a-f]+)$/;

export function readelfSegments(file: string): ReadelfSegment[] {
  const out = run('readelf', ['-W', '-l', file]);
  const result: ReadelfSegment[] = [];
  for (const line of out.split('\n')) {
    const m = SEGMENT_LINE.exec(line);
    if (m === null) continue;
    result.push({
      type: m[1] as string,
      offset: parseInt(m[2] as string, 16),
      vaddr: BigInt(`0x${m[3]}`),
      paddr: BigInt(`0x${m[4]}`),
      filesz: parseInt(m[5] as string, 16),
      memsz: parseInt(m[6] as string, 16),
      flags: m[7] as string,
      align: parseInt(m[8] as string, 16),
    });
  }
  return result;
}

/** readelf's one-letter section flags ("Key to Flags"), in the bit order readelf prints them. */
export function flagLetters(flags: bigint): string {
  const letters: Array<[bigint, string]> = [
    [0x1n, 'W'],
    [0x2n, 'A'],
    [0x4n, 'X'],
    [0x10n, 'M'],
    [0x20n, 'S'],
    [0x40n, 'I'],
    [0x80n, 'L'],
    [0x100n, 'O'],
    [0x200n, 'G'],
    [0x400n, 'T'],
    [0x800n, 'C'],
    [0x200000n, 'R'],
    [0x10000000n, 'l'],
    [0x80000000n, 'E'],
  ];
  let rest = flags;
  let result = '';
  for (const [bit, letter] of letters) {
    if ((flags & bit) !== 0n) {
      result += letter;
      rest &= ~bit;
    }
  }
  if (rest !== 0n) throw new Error(`flagLetters: unhandled flags 0x${rest.toString(16)}`);
  return result;
}

const SYMBOL_TYPES = ['NOTYPE', 'OBJECT', 'FUNC', 'SECTION', 'FILE', 'COMMON', 'TLS'];
const SYMBOL_BINDS: Record<number, string> = { 0: 'LOCAL', 1: 'GLOBAL', 2: 'WEAK', 10: 'UNIQUE' };
const VISIBILITIES = ['DEFAULT', 'INTERNAL', 'HIDDEN', 'PROTECTED'];

export function symbolTypeName(type: number): string {
  return type === 10 ? 'IFUNC' : (SYMBOL_TYPES[type] ?? `<${type}>`);
}

export function symbolBindName(bind: number): string {
  return SYMBOL_BINDS[bind] ?? `<${bind}>`;
}

export function visibilityName(visibility: number): string {
  return VISIBILITIES[visibility] ?? `<${visibility}>`;
}

/** How readelf prints st_shndx. */
export function ndxName(shndx: number, special: boolean): string {
  if (shndx === 0) return 'UND';
  if (special && shndx === 0xfff1) return 'ABS';
  if (special && shndx === 0xfff2) return 'COM';
  return String(shndx);
}

export interface ReadelfGroup {
  index: number;
  signature: string;
  members: number[];
}

/** `readelf -g`: each group section with its signature symbol's name and member section indices. */
export function readelfGroups(file: string): ReadelfGroup[] {
  const out = run('readelf', ['-W', '-g', file]);
  const result: ReadelfGroup[] = [];
  for (const line of out.split('\n')) {
    const header = /^\S+ group section \[\s*(\d+)\] `[^']*' \[([^\]]*)\] contains \d+ sections?:$/.exec(line);
    if (header !== null) {
      result.push({ index: Number(header[1]), signature: header[2] as string, members: [] });
      continue;
    }
    const member = /^\s+\[\s*(\d+)\]\s+\S+$/.exec(line);
    if (member !== null) result.at(-1)?.members.push(Number(member[1]));
  }
  return result;
}
