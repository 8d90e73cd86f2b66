// Test support: compile C with the host gcc and extract relocated DWARF sections.
// Linking into a shared object (-shared -nostdlib) makes the linker apply the debug
// sections' relocations, so the tests never need an ELF relocation reader.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DwarfSections } from './model.js';

const SECTIONS: readonly (readonly [keyof DwarfSections, string])[] = [
  ['info', '.debug_info'],
  ['abbrev', '.debug_abbrev'],
  ['str', '.debug_str'],
  ['lineStr', '.debug_line_str'],
  ['strOffsets', '.debug_str_offsets'],
  ['addr', '.debug_addr'],
];

/** A scratch directory removed by the returned function. */
export function scratch(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tsplice-dwarf-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Dump the named sections of an ELF file (suffix: '.dwo' for split DWARF files). */
export function dumpSections(file: string, dir: string, suffix = ''): DwarfSections {
  const present = new Set(
    execFileSync('readelf', ['-SW', file], { encoding: 'utf8' })
      .split('\n')
      .map((line) => /\]\s+(\S+)/.exec(line)?.[1])
      .filter((s): s is string => s !== undefined),
  );
  const out: Partial<Record<keyof DwarfSections, Uint8Array>> = {};
  const args: string[] = [];
  for (const [field, name] of SECTIONS) {
    if (!present.has(name + suffix)) continue;
    const path = join(dir, `${field}.bin`);
    args.push('--dump-section', `${name}${suffix}=${path}`);
  }
  execFileSync('objcopy', [...args, file, join(dir, 'objcopy-out.tmp')]);
  for (const [field] of SECTIONS) {
    const path = join(dir, `${field}.bin`);
    if (existsSync(path)) out[field] = new Uint8Array(readFileSync(path));
  }
  if (out.info === undefined || out.abbrev === undefined) throw new Error(`${file} has no DWARF`);
  return { ...out, info: out.info, abbrev: out.abbrev };
}

/**
 * Compile C sources (one compile unit each) into a shared object with -g and return its
 * relocated DWARF sections. flags default to gcc's defaults plus -O2.
 */
export function compileDwarf(sources: string | readonly string[], flags: readonly string[] = ['-O2']): DwarfSections {
  const { dir, cleanup } = scratch();
  try {
    // Relative names, so that unit names (DW_AT_name) are cu0.c, cu1.c, ...
    const files = (typeof sources === 'string' ? [sources] : sources).map((src, i) => {
      writeFileSync(join(dir, `cu${i}.c`), src);
      return `cu${i}.c`;
    });
    const so = join(dir, 't.so');
    execFileSync('gcc', ['-g', ...flags, '-shared', '-fPIC', '-nostdlib', '-o', so, ...files], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    return dumpSections(so, dir);
  } finally {
    cleanup();
  }
}

/** Compile and run a C program, returning its standard output. */
export function runC(source: string): string {
  const { dir, cleanup } = scratch();
  try {
    const path = join(dir, 'p.c');
    writeFileSync(path, source);
    const exe = join(dir, 'p');
    execFileSync('gcc', ['-O0', '-o', exe, path], { stdio: ['ignore', 'ignore', 'pipe'] });
    return execFileSync(exe, { encoding: 'utf8' });
  } finally {
    cleanup();
  }
}

/**
 * A large synthetic compilation unit shaped like kernel code: many structs that point at
 * each other, bit-fields, anonymous unions, enums, typedefs, and functions that inline
 * helpers. n scales everything.
 */
export function syntheticKernelC(n: number): string {
  const lines: string[] = ['typedef unsigned int u32;', 'typedef unsigned long u64;', 'extern int sink(void *);'];
  for (let i = 0; i < n; i++) {
    lines.push(`enum e${i} { E${i}_A = -1, E${i}_B, ${Array.from({ length: 12 }, (_, j) => `E${i}_X${j}`).join(', ')}, E${i}_MAX };`);
    lines.push(`struct s${i} {`);
    lines.push(`  struct s${(i + 1) % n} *next; struct s${(i * 7 + 3) % n} *other; u32 a${i}; u64 b${i};`);
    lines.push(`  unsigned int f0:3, f1:5, f2:9; int arr[${(i % 7) + 1}][3];`);
    lines.push(`  union { long ul; char uc[8]; struct { short x, y; } pt; };`);
    lines.push(`  enum e${i} state; const char *name; void (*cb)(struct s${i} *, int);`);
    lines.push(`};`);
    lines.push(`typedef struct s${i} s${i}_t;`);
    lines.push(`static inline __attribute__((always_inline)) int h${i}(s${i}_t *p, int k) {`);
    lines.push(`  int t = p->a${i} + p->f1 + k; struct s${(i + 2) % n} *q = (void *)p->other;`);
    lines.push(`  if (p->state == E${i}_X3) t += sink(q); return t + p->arr[0][k & 1]; }`);
  }
  for (let i = 0; i < n; i++) {
    const calls = [0, 1, 2, 3].map((j) => `h${(i + j * 5) % n}((void *)p, ${j})`).join(' + ');
    lines.push(`int fn${i}(struct s${i} *p) { return ${calls} + sink(p); }`);
  }
  return lines.join('\n') + '\n';
}

/** Compile one C source with -gsplit-dwarf and return the DWARF of its .dwo file (strx forms, split units). */
export function compileDwo(source: string, flags: readonly string[] = ['-O2']): DwarfSections {
  const { dir, cleanup } = scratch();
  try {
    const path = join(dir, 'split.c');
    writeFileSync(path, source);
    const obj = join(dir, 'split.o');
    execFileSync('gcc', ['-g', '-gsplit-dwarf', ...flags, '-c', '-o', obj, path], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    return dumpSections(join(dir, 'split.dwo'), dir, '.dwo');
  } finally {
    cleanup();
  }
}
