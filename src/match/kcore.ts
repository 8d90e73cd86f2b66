/**
 * Reading the running kernel's memory through /proc/kcore, an ELF core file whose PT_LOAD
 * program headers map kernel virtual addresses to file offsets. The offsets can exceed 2^53
 * (seen with 5-level paging), so they stay bigint and reads use a bigint position.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { UserError } from '../host/errors.js';

const PT_LOAD = 1;
const ELF_HEADER_SIZE = 64;
const PROGRAM_HEADER_SIZE = 56;

/** One PT_LOAD segment: kernel addresses [virtualAddress, +size) live at fileOffset. */
export interface KcoreSegment {
  virtualAddress: bigint;
  fileOffset: bigint;
  size: bigint;
}

export class Kcore {
  private constructor(
    private readonly fd: number,
    readonly path: string,
    readonly segments: KcoreSegment[],
  ) {}

  static open(path = '/proc/kcore'): Kcore {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UserError(
        code === 'EACCES' || code === 'EPERM'
          ? `Cannot open ${path}: reading kernel memory needs root, and a kernel locked down for confidentiality refuses it.`
          : `Cannot open ${path}: ${(e as Error).message}.`,
      );
    }
    try {
      return new Kcore(fd, path, readSegments(fd, path));
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** `length` bytes of kernel memory at `address`; a UserError if no segment covers them. */
  read(address: bigint, length: number): Uint8Array {
    const end = address + BigInt(length);
    const segment = this.segments.find((s) => s.virtualAddress <= address && end <= s.virtualAddress + s.size);
    if (!segment) throw new UserError(`${this.path} maps no memory at 0x${address.toString(16)} (+${length}).`);
    const buffer = Buffer.alloc(length);
    const position = segment.fileOffset + (address - segment.virtualAddress);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buffer, done, length - done, position + BigInt(done));
      if (n === 0) throw new UserError(`${this.path}: short read at 0x${(address + BigInt(done)).toString(16)}.`);
      done += n;
    }
    return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
  }

  close(): void {
    closeSync(this.fd);
  }
}

function readExactly(fd: number, length: number, position: bigint, path: string): Buffer {
  const buffer = Buffer.alloc(length);
  const n = readSync(fd, buffer, 0, length, position);
  if (n !== length) throw new UserError(`${path}: offset 0x${position.toString(16)}: file ends inside the ELF headers.`);
  return buffer;
}

/** The PT_LOAD segments of a kcore file (ELF64 little-endian core). */
function readSegments(fd: number, path: string): KcoreSegment[] {
  const header = readExactly(fd, ELF_HEADER_SIZE, 0n, path);
  if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) {
    throw new UserError(`${path}: offset 0x0: not an ELF64 little-endian file.`);
  }
  const phoff = header.readBigUInt64LE(0x20);
  const phentsize = header.readUInt16LE(0x36);
  const phnum = header.readUInt16LE(0x38);
  if (phentsize !== PROGRAM_HEADER_SIZE) {
    throw new UserError(`${path}: offset 0x36: program header size ${phentsize}, expected ${PROGRAM_HEADER_SIZE}.`);
  }
  const table = readExactly(fd, phnum * phentsize, phoff, path);
  const segments: KcoreSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    if (table.readUInt32LE(at) !== PT_LOAD) continue;
    segments.push({
      fileOffset: table.readBigUInt64LE(at + 0x08),
      virtualAddress: table.readBigUInt64LE(at + 0x10),
      size: table.readBigUInt64LE(at + 0x20),
    });
  }
  return segments;
}
