// Test helpers: run the host toolchain (gcc, as, ld, readelf, objdump) in a
// temporary directory. Tests compare our reader and writer against binutils,
// which is the reference implementation of the ELF format on Linux.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export class Workdir {
  readonly path = mkdtempSync(join(tmpdir(), 'tsplice-elf-'));

  file(name: string): string {
    return join(this.path, name);
  }

  write(name: string, contents: string | Uint8Array): string {
    const path = this.file(name);
    writeFileSync(path, contents);
    return path;
  }

  read(name: string): Uint8Array {
    return new Uint8Array(readFileSync(this.file(name)));
  }

  /** Compiles C source to `<name>.o` with `gcc -c <flags>` and returns the object's path. */
  compileC(name: string, source: string, flags: readonly string[] = []): string {
    const src = this.write(`${name}.c`, source);
    const obj = this.file(`${name}.o`);
    run('gcc', ['-c', ...flags, src, '-o', obj]);
    return obj;
  }

  /** Assembles GNU as source to `<name>.o`. */
  assemble(name: string, source: string): string {
    const src = this.write(`${name}.s`, source);
    const obj = this.file(`${name}.o`);
    run('as', ['--64', src, '-o', obj]);
    return obj;
  }

  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** Runs a tool and returns its stdout; throws with the tool's stderr if it fails. */
export function run(command: string, args: readonly string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a tool and returns stdout, stderr and the exit status without throwing. */
export function runAll(command: string, args: readonly string[]): { stdout: string; stderr: string; status: number | null } {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 30 });
  return { stdout: result.stdout, stderr: result.stderr, status: result.status };
}
