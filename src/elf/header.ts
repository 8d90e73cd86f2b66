import { ByteReader } from './byte-reader.js';
import {
  EI_ABIVERSION,
  EI_CLASS,
  EI_DATA,
  EI_OSABI,
  EI_VERSION,
  ELF64_EHDR_SIZE,
  ELF64_PHDR_SIZE,
  ELF64_SHDR_SIZE,
  ELFCLASS64,
  ELFDATA2LSB,
  ELFMAG,
  EV_CURRENT,
  PN_XNUM,
  SHN_UNDEF,
  SHN_XINDEX,
} from './constants.js';
import { EHDR, PHDR, SHDR } from './layout.js';
import type { ElfHeader, ProgramHeader } from './types.js';

export interface ElfHeaders {
  readonly header: ElfHeader;
  readonly programHeaders: readonly ProgramHeader[];
}

/**
 * Reads only the file header and the program headers. Unlike parseElf it needs
 * nothing past the program header table (nor section header 0, unless extended
 * numbering is used), so it works on the first page of a huge or unreadable-
 * beyond-the-headers file such as /proc/kcore (an ET_CORE file whose PT_LOAD
 * segments describe kernel memory).
 */
export function parseElfHeaders(bytes: Uint8Array, fileName?: string): ElfHeaders {
  return readHeaders(new ByteReader(bytes, fileName));
}

/**
 * parseElfHeaders for a file that cannot be read whole, such as /proc/kcore
 * (its size is that of the kernel's address space). `read(offset, length)`
 * returns the file's bytes at [offset, offset + length), fewer only where the
 * file ends. Reads the file header, then the prefix holding the program header
 * table (and section header 0 when extended numbering needs it); a file that
 * ends too soon is refused with the offset of what is missing, as by
 * parseElfHeaders.
 */
export function readElfHeaders(read: (offset: number, length: number) => Uint8Array, fileName?: string): ElfHeaders {
  let prefix = read(0, ELF64_EHDR_SIZE);
  for (;;) {
    const needed = headersExtent(new ByteReader(prefix, fileName));
    if (needed <= prefix.length) break;
    const longer = read(0, needed);
    if (longer.length <= prefix.length) break; // the file ends here: parseElfHeaders says where
    prefix = longer;
  }
  return parseElfHeaders(prefix, fileName);
}

/**
 * How many bytes from the start of the file readHeaders looks at, as far as
 * the prefix `r` tells (section header 0 may hold the real e_phnum). At most
 * r.length when a field is out of range, so that readHeaders reports it.
 */
function headersExtent(r: ByteReader): number {
  checkIdentification(r);
  const phoff = r.u64(EHDR.phoff);
  const shoff = r.u64(EHDR.shoff);
  if (phoff > BigInt(Number.MAX_SAFE_INTEGER) || shoff > BigInt(Number.MAX_SAFE_INTEGER)) return r.length;
  let phnum = r.u16(EHDR.phnum);
  let end = ELF64_EHDR_SIZE;
  if (needsSection0(Number(shoff), r.u16(EHDR.shnum), r.u16(EHDR.shstrndx), phnum)) {
    end = Math.max(end, Number(shoff) + ELF64_SHDR_SIZE);
    if (phnum === PN_XNUM) {
      if (end > r.length) return end;
      phnum = r.u32(Number(shoff) + SHDR.info);
    }
  }
  return Math.max(end, Number(phoff) + phnum * ELF64_PHDR_SIZE);
}

export function readHeaders(r: ByteReader): ElfHeaders {
  const header = readFileHeader(r);
  return { header, programHeaders: readProgramHeaders(r, header) };
}

/** e_ident: magic, class, data encoding and version; and the file header's size. */
function checkIdentification(r: ByteReader): void {
  // Check the magic before the size so that a short non-ELF file is reported
  // as "not ELF" rather than "truncated".
  for (let i = 0; i < ELFMAG.length; i++) {
    if (i >= r.length || r.u8(i) !== ELFMAG[i]) {
      throw r.error('bad magic number (not an ELF file)', 0);
    }
  }
  r.require(0, ELF64_EHDR_SIZE, 'ELF header');
  const elfClass = r.u8(EI_CLASS);
  if (elfClass !== ELFCLASS64) {
    throw r.error(`unsupported ELF class ${elfClass} (only ELFCLASS64 is supported)`, EI_CLASS);
  }
  const data = r.u8(EI_DATA);
  if (data !== ELFDATA2LSB) {
    throw r.error(`unsupported data encoding ${data} (only ELFDATA2LSB is supported)`, EI_DATA);
  }
  const identVersion = r.u8(EI_VERSION);
  if (identVersion !== EV_CURRENT) {
    throw r.error(`unsupported e_ident[EI_VERSION] ${identVersion}`, EI_VERSION);
  }
}

/**
 * Extended numbering (gABI "Sections"): when a count or index does not fit
 * 16 bits, the header holds an escape value and section header 0 the real one.
 */
function needsSection0(shoff: number, shnum: number, shstrndx: number, phnum: number): boolean {
  return shoff !== 0 && (shnum === 0 || shstrndx === SHN_XINDEX || phnum === PN_XNUM);
}

function readFileHeader(r: ByteReader): ElfHeader {
  checkIdentification(r);
  const version = r.u32(EHDR.version);
  if (version !== EV_CURRENT) {
    throw r.error(`unsupported e_version ${version}`, EHDR.version);
  }
  const ehsize = r.u16(EHDR.ehsize);
  if (ehsize !== ELF64_EHDR_SIZE) {
    throw r.error(`e_ehsize is ${ehsize}, expected ${ELF64_EHDR_SIZE}`, EHDR.ehsize);
  }
  const phoff = r.safeU64(EHDR.phoff, 'e_phoff');
  const shoff = r.safeU64(EHDR.shoff, 'e_shoff');
  const phentsize = r.u16(EHDR.phentsize);
  const shentsize = r.u16(EHDR.shentsize);
  let phnum = r.u16(EHDR.phnum);
  let shnum = r.u16(EHDR.shnum);
  let shstrndx = r.u16(EHDR.shstrndx);
  let shstrndxField = EHDR.shstrndx;

  if (shoff !== 0 && shentsize !== ELF64_SHDR_SIZE) {
    throw r.error(`e_shentsize is ${shentsize}, expected ${ELF64_SHDR_SIZE}`, EHDR.shentsize);
  }
  if (shoff === 0 && shnum !== 0) {
    throw r.error(`e_shnum is ${shnum} but there is no section header table (e_shoff is 0)`, EHDR.shnum);
  }
  if (needsSection0(shoff, shnum, shstrndx, phnum)) {
    r.require(shoff, ELF64_SHDR_SIZE, 'section header 0');
    if (shnum === 0) shnum = r.safeU64(shoff + SHDR.size, 'section header 0 sh_size (section count)');
    if (shstrndx === SHN_XINDEX) {
      shstrndxField = shoff + SHDR.link;
      shstrndx = r.u32(shstrndxField);
    }
    if (phnum === PN_XNUM) phnum = r.u32(shoff + SHDR.info);
  }
  if (shstrndx !== SHN_UNDEF && shstrndx >= shnum) {
    throw r.error(`section name table index ${shstrndx} out of range (${shnum} sections)`, shstrndxField);
  }
  if (phnum !== 0 && phentsize !== ELF64_PHDR_SIZE) {
    throw r.error(`e_phentsize is ${phentsize}, expected ${ELF64_PHDR_SIZE}`, EHDR.phentsize);
  }
  return Object.freeze({
    osabi: r.u8(EI_OSABI),
    abiVersion: r.u8(EI_ABIVERSION),
    type: r.u16(EHDR.type),
    machine: r.u16(EHDR.machine),
    version,
    entry: r.u64(EHDR.entry),
    phoff,
    shoff,
    flags: r.u32(EHDR.flags),
    ehsize,
    phentsize,
    phnum,
    shentsize,
    shnum,
    shstrndx,
  });
}

function readProgramHeaders(r: ByteReader, header: ElfHeader): ProgramHeader[] {
  const result: ProgramHeader[] = [];
  for (let index = 0; index < header.phnum; index++) {
    const at = header.phoff + index * ELF64_PHDR_SIZE;
    r.require(at, ELF64_PHDR_SIZE, `program header ${index}`);
    result.push(
      Object.freeze({
        index,
        type: r.u32(at + PHDR.type),
        flags: r.u32(at + PHDR.flags),
        offset: r.u64(at + PHDR.offset),
        vaddr: r.u64(at + PHDR.vaddr),
        paddr: r.u64(at + PHDR.paddr),
        filesz: r.u64(at + PHDR.filesz),
        memsz: r.u64(at + PHDR.memsz),
        align: r.u64(at + PHDR.align),
      }),
    );
  }
  return result;
}
