/**
 * Reading the running kernel's memory through /proc/kcore, an ELF core file whose PT_LOAD
 * program headers map kernel virtual addresses to file offsets. The offsets can exceed 2^53
 * (seen with 5-level paging), so they stay bigint and reads use a bigint position.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { PT_LOAD, readElfHeaders } from '../elf/index.js';
import { UserError } from '../host/errors.js';
import type { KernelMemory } from './run-pre.js';

/** One PT_LOAD segment: kernel addresses [virtualAddress, +size) live at fileOffset. */
export interface KcoreSegment {
  virtualAddress: bigint;
  fileOffset: bigint;
  size: bigint;
}

export class Kcore implements KernelMemory {
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
        { kind: code === 'EACCES' || code === 'EPERM' ? 'not-root' : 'cannot-read', object: path },
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
    if (!segment) throw new UserError(`${this.path} maps no memory at 0x${address.toString(16)} (+${length}).`, { kind: 'cannot-read', object: this.path });
    const buffer = Buffer.alloc(length);
    const position = segment.fileOffset + (address - segment.virtualAddress);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buffer, done, length - done, position + BigInt(done));
      if (n === 0) throw new UserError(`${this.path}: short read at 0x${(address + BigInt(done)).toString(16)}.`, { kind: 'cannot-read', object: this.path });
      done += n;
    }
    return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** The PT_LOAD segments of a kcore file, from its ELF headers (src/elf). */
function readSegments(fd: number, path: string): KcoreSegment[] {
  const { programHeaders } = readElfHeaders((offset, length) => {
    const buffer = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, buffer, done, length - done, offset + done);
      if (n === 0) break; // end of file: readElfHeaders names what is missing
      done += n;
    }
    return buffer.subarray(0, done);
  }, path);
  return programHeaders
    .filter((p) => p.type === PT_LOAD)
    .map((p) => ({ virtualAddress: p.vaddr, fileOffset: p.offset, size: p.filesz }));
}
