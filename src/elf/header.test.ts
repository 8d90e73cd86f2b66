import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';

import { ELF64_PHDR_SIZE, EM_X86_64, ET_CORE, PF_R, PF_W, PF_X, PN_XNUM, PT_LOAD, PT_NOTE } from './constants.js';
import { FormatError } from './format-error.js';
import { parseElfHeaders, readElfHeaders } from './header.js';
import { EHDR, PHDR, SHDR } from './layout.js';
import { parseElf } from './read.js';
import { readelfSegments } from './test-support/readelf.js';
import { PROGRAM_C } from './test-support/sources.js';
import { run, Workdir } from './test-support/toolchain.js';

const work = new Workdir();
after(() => work.remove());

interface Segment {
  type: number;
  flags: number;
  offset: bigint;
  vaddr: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
  align: bigint;
}

/**
 * The first bytes of an ET_CORE file laid out like /proc/kcore: file header,
 * then the program headers, and nothing else (the segments' data would follow
 * at offsets far beyond what we hand over).
 */
function coreHeaders(segments: readonly Segment[], options: { extendedPhnum?: boolean } = {}): Uint8Array {
  const phoff = 64;
  const shoff = phoff + segments.length * ELF64_PHDR_SIZE;
  const bytes = new Uint8Array(shoff + (options.extendedPhnum === true ? 64 : 0));
  const view = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  view.setUint16(EHDR.type, ET_CORE, true);
  view.setUint16(EHDR.machine, EM_X86_64, true);
  view.setUint32(EHDR.version, 1, true);
  view.setBigUint64(EHDR.phoff, BigInt(phoff), true);
  view.setUint16(EHDR.ehsize, 64, true);
  view.setUint16(EHDR.phentsize, ELF64_PHDR_SIZE, true);
  if (options.extendedPhnum === true) {
    // More than 0xfffe segments: e_phnum is PN_XNUM and section 0's sh_info has the count.
    view.setUint16(EHDR.phnum, PN_XNUM, true);
    view.setBigUint64(EHDR.shoff, BigInt(shoff), true);
    view.setUint16(EHDR.shentsize, 64, true);
    view.setUint16(EHDR.shnum, 1, true);
    view.setUint32(shoff + SHDR.info, segments.length, true);
  } else {
    view.setUint16(EHDR.phnum, segments.length, true);
  }
  segments.forEach((s, i) => {
    const at = phoff + i * ELF64_PHDR_SIZE;
    view.setUint32(at + PHDR.type, s.type, true);
    view.setUint32(at + PHDR.flags, s.flags, true);
    view.setBigUint64(at + PHDR.offset, s.offset, true);
    view.setBigUint64(at + PHDR.vaddr, s.vaddr, true);
    view.setBigUint64(at + PHDR.paddr, s.paddr, true);
    view.setBigUint64(at + PHDR.filesz, s.filesz, true);
    view.setBigUint64(at + PHDR.memsz, s.memsz, true);
    view.setBigUint64(at + PHDR.align, s.align, true);
  });
  return bytes;
}

// Shaped like a real x86-64 /proc/kcore: a note, the kernel text mapping, and
// the direct map at a file offset of ~128 TiB.
const KCORE_SEGMENTS: Segment[] = [
  { type: PT_NOTE, flags: 0, offset: 0x1000n, vaddr: 0n, paddr: 0n, filesz: 0xa8cn, memsz: 0n, align: 4n },
  {
    type: PT_LOAD,
    flags: PF_R | PF_W | PF_X,
    offset: 0x7fff81001000n,
    vaddr: 0xffffffff81000000n,
    paddr: 0x1000000n,
    filesz: 0x2a00000n,
    memsz: 0x2a00000n,
    align: 0x1000n,
  },
  {
    type: PT_LOAD,
    flags: PF_R | PF_W | PF_X,
    offset: 0x7f0000001000n,
    vaddr: 0xffff888000000000n,
    paddr: 0xffffffffffffffffn,
    filesz: 0x7ffe0000n,
    memsz: 0x7ffe0000n,
    align: 0x1000n,
  },
];

describe('parseElfHeaders', () => {
  it('reads the headers of a kcore-like ET_CORE prefix exactly, as readelf does', () => {
    const bytes = coreHeaders(KCORE_SEGMENTS);
    const { header, programHeaders } = parseElfHeaders(bytes, 'kcore');
    assert.equal(header.type, ET_CORE);
    assert.equal(header.phnum, 3);
    assert.deepEqual(
      programHeaders.map((p) => [p.type, p.flags, p.offset, p.vaddr, p.paddr, p.filesz, p.memsz, p.align]),
      KCORE_SEGMENTS.map((s) => [s.type, s.flags, s.offset, s.vaddr, s.paddr, s.filesz, s.memsz, s.align]),
    );
    // binutils decodes our hand-made bytes the same way.
    const path = work.write('kcore-prefix', bytes);
    assert.deepEqual(
      readelfSegments(path).map((s) => [BigInt(s.offset), s.vaddr, s.paddr, BigInt(s.filesz), BigInt(s.memsz), BigInt(s.align)]),
      programHeaders.map((p) => [p.offset, p.vaddr, p.paddr, p.filesz, p.memsz, p.align]),
    );
  });

  it('parseElf refuses the same prefix: the segments lie past its end', () => {
    const bytes = coreHeaders(KCORE_SEGMENTS);
    assert.throws(
      () => parseElf(bytes, 'kcore'),
      (e: unknown) => e instanceof FormatError && e.offset === 64 + PHDR.offset && e.message.startsWith('kcore: offset 0x48: program header 0 segment'),
    );
  });

  it('resolves PN_XNUM through section header 0', () => {
    const { header, programHeaders } = parseElfHeaders(coreHeaders(KCORE_SEGMENTS, { extendedPhnum: true }));
    assert.equal(header.phnum, 3);
    assert.equal(programHeaders[2]?.vaddr, 0xffff888000000000n);
  });

  it('reports a truncated program header table at the first header that does not fit', () => {
    const bytes = coreHeaders(KCORE_SEGMENTS).subarray(0, 64 + 2 * ELF64_PHDR_SIZE + 10);
    assert.throws(
      () => parseElfHeaders(bytes),
      (e: unknown) => e instanceof FormatError && e.offset === 64 + 2 * ELF64_PHDR_SIZE && /program header 2 extends past end of file/.test(e.message),
    );
  });

  it('keeps segment offsets and sizes beyond 2^53 exact (kcore with 5-level paging)', () => {
    const segments = [KCORE_SEGMENTS[1], KCORE_SEGMENTS[2]].map((s, i) => ({ ...(s as Segment), offset: 0xeeffff81001000n + BigInt(i) * 0x1000n, filesz: 0x32000000000000n }));
    const { programHeaders } = parseElfHeaders(coreHeaders(segments));
    assert.deepEqual(
      programHeaders.map((p) => [p.offset, p.filesz]),
      segments.map((s) => [s.offset, s.filesz]),
    );
  });

  it('matches parseElf on the first bytes of a linked executable', () => {
    const exe = work.file('prog');
    run('gcc', ['-O2', '-no-pie', work.write('prog.c', PROGRAM_C), '-o', exe]);
    const whole = new Uint8Array(readFileSync(exe));
    const full = parseElf(whole, exe);
    const prefix = whole.subarray(0, full.header.phoff + full.header.phnum * ELF64_PHDR_SIZE);
    const headers = parseElfHeaders(prefix, exe);
    assert.ok(headers.programHeaders.length > 5);
    assert.deepEqual(headers.header, full.header);
    assert.deepEqual(headers.programHeaders, full.programHeaders);
    // The whole-file reader needs the section headers, which the prefix lacks.
    assert.throws(() => parseElf(prefix, exe), FormatError);
  });
});

describe('readElfHeaders', () => {
  /** A file read piece by piece, as Kcore reads /proc/kcore; `reads` records each request. */
  function pieces(bytes: Uint8Array): { read: (offset: number, length: number) => Uint8Array; reads: Array<[number, number]> } {
    const reads: Array<[number, number]> = [];
    return { reads, read: (offset, length) => (reads.push([offset, length]), bytes.subarray(offset, offset + length)) };
  }

  // An ELF64 ET_CORE with two PT_LOAD entries: kernel text and the direct map.
  const TWO_LOADS = KCORE_SEGMENTS.filter((s) => s.type === PT_LOAD);

  it('reads the file header, then exactly the program header table', () => {
    const bytes = coreHeaders(TWO_LOADS);
    // The segments' data would follow; the reader must not ask for it.
    const file = new Uint8Array(bytes.length + 4096);
    file.set(bytes);
    const { read, reads } = pieces(file);
    const { header, programHeaders } = readElfHeaders(read, 'kcore');
    assert.equal(header.type, ET_CORE);
    assert.deepEqual(reads, [
      [0, 64],
      [0, 64 + 2 * ELF64_PHDR_SIZE],
    ]);
    assert.deepEqual(
      programHeaders.map((p) => [p.index, p.type, p.offset, p.vaddr, p.filesz]),
      [
        [0, PT_LOAD, 0x7fff81001000n, 0xffffffff81000000n, 0x2a00000n],
        [1, PT_LOAD, 0x7f0000001000n, 0xffff888000000000n, 0x7ffe0000n],
      ],
    );
    assert.deepEqual(programHeaders, parseElfHeaders(bytes).programHeaders);
  });

  it('finds the program header count in section header 0 (PN_XNUM)', () => {
    const { read, reads } = pieces(coreHeaders(TWO_LOADS, { extendedPhnum: true }));
    const { header, programHeaders } = readElfHeaders(read);
    assert.equal(header.phnum, 2);
    assert.equal(programHeaders[1]?.vaddr, 0xffff888000000000n);
    // Section header 0 follows the table here: one read covers both.
    assert.deepEqual(reads.at(-1), [0, 64 + 2 * ELF64_PHDR_SIZE + 64]);
  });

  it('refuses a file that ends inside the program header table, at the header cut short', () => {
    const { read } = pieces(coreHeaders(TWO_LOADS).subarray(0, 64 + ELF64_PHDR_SIZE + 20));
    assert.throws(
      () => readElfHeaders(read, 'kcore'),
      (e: unknown) =>
        e instanceof FormatError &&
        e.offset === 64 + ELF64_PHDR_SIZE &&
        e.message === `kcore: offset 0x${(64 + ELF64_PHDR_SIZE).toString(16)}: program header 1 extends past end of file (file size 0x${(64 + ELF64_PHDR_SIZE + 20).toString(16)})`,
    );
  });

  it('refuses a file that is not ELF, or ends inside the file header, without reading more', () => {
    const notElf = pieces(new TextEncoder().encode('MemTotal:        8000000 kB\n'.repeat(4)));
    assert.throws(() => readElfHeaders(notElf.read, 'meminfo'), (e: unknown) => e instanceof FormatError && e.offset === 0 && /bad magic number/.test(e.message));
    assert.deepEqual(notElf.reads, [[0, 64]]);
    assert.throws(
      () => readElfHeaders(pieces(coreHeaders(TWO_LOADS).subarray(0, 40)).read),
      (e: unknown) => e instanceof FormatError && e.offset === 0 && /ELF header extends past end of file/.test(e.message),
    );
  });
});
