/**
 * Test support: compile small C sources with the host gcc the way kbuild compiles the kernel
 * (optimised, one section per function and per object, no PIC) and load them for differencing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiffObject } from './object.js';

export const KERNEL_LIKE_FLAGS = [
  '-O2',
  '-g',
  '-ffunction-sections',
  '-fdata-sections',
  '-fno-pic',
  '-fno-asynchronous-unwind-tables',
  '-fno-common',
  '-mno-red-zone',
];

let scratch: string | undefined;

/**
 * Compiles `source` (named `name`.c, so __FILE__ is stable) and returns the object's path;
 * `flags` are added to the kernel-like ones (`-DMODULE` for a unit of a module).
 */
export function compileC(source: string, name = 'unit', label = 'x', flags: readonly string[] = []): string {
  scratch ??= mkdtempSync(join(tmpdir(), 'tsplice-diff-'));
  const dir = mkdtempSync(join(scratch, `${label}-`));
  const c = join(dir, `${name}.c`);
  const o = join(dir, `${name}.o`);
  writeFileSync(c, source);
  execFileSync('gcc', [...KERNEL_LIKE_FLAGS, ...flags, '-c', `${name}.c`, '-o', `${name}.o`], { cwd: dir, stdio: 'pipe' });
  return o;
}

/** Compiles a pre and a post version of one unit, with `flags` added to the kernel-like ones. */
export function compilePair(preSource: string, postSource: string, name = 'unit', flags: readonly string[] = []): { pre: DiffObject; post: DiffObject } {
  return { pre: DiffObject.load(compileC(preSource, name, 'pre', flags)), post: DiffObject.load(compileC(postSource, name, 'post', flags)) };
}
