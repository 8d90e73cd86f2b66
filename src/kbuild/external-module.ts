/**
 * Building out-of-tree kernel modules with kbuild against a kernel's unpacked headers, the
 * way a distribution user builds one against an installed linux-headers package. The result
 * carries the kernel's vermagic and symbol versions (the headers' Module.symvers), so the
 * stock kernel loads it (unsigned: the kernel is tainted, which is fine in the lab).
 *
 * Every module tsplice builds goes through buildExternalModule: the update module (a stub and
 * the payload object, src/update/module.ts), the core module (kmod/, src/update/core-module-build.ts)
 * and the test modules (kmod/tests/*, the lab's). It builds in a temporary copy, so a source
 * folder never collects build products, and returns the .ko's bytes.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../host/errors.js';
import { run } from '../host/exec.js';
import type { LabKernel } from '../debian/fetch.js';

/** A module build that failed: one sentence in the message, everything make printed in `output`. */
export class ModuleBuildError extends UserError {
  constructor(
    message: string,
    /** The whole output of make, for a caller that shows more than the sentence. */
    readonly output: string,
  ) {
    super(message);
  }
}

/** Files kbuild writes beside the sources: never copied into a build. */
function isBuildProduct(file: string): boolean {
  return file.startsWith('.') || /\.(o|ko|mod|mod\.c|cmd|order|symvers)$/.test(file) || file === 'Module.symvers' || file === 'modules.order';
}

export interface ModuleSources {
  /** A folder whose files (not its subfolders, not build products) are copied into the build. */
  from?: string;
  /** Of `from`'s files, those to copy (default: all). */
  filter?: (file: string) => boolean;
  /**
   * Files written into the build after the copy, by name: a generated Kbuild, a stub, an
   * object; or a function of the build folder's path that gives them.
   */
  files?: Readonly<Record<string, string | Uint8Array>> | ((dir: string) => Readonly<Record<string, string | Uint8Array>>);
}

export interface ModuleBuildOptions {
  /** Extra make variables (`KBUILD_MODPOST_WARN=1`). */
  makeVariables?: readonly string[];
  /** What the module is, for messages (default: `the module <name>`). */
  what?: string;
  /** The temporary folder's name prefix: its path is compiled into the module's debug info. */
  tmpPrefix?: string;
}

/**
 * gcc's, ld's or modpost's first error line, with the temporary folder taken out of its
 * paths; else make's. ld says "multiple definition of" or "undefined reference to" without
 * the word error.
 */
export function firstError(output: string, dir: string): string {
  const lines = output.split('\n').map((l) => l.split(`${dir}/`).join('').trim());
  const isMake = (l: string): boolean => /^make(\[\d+\])?: /.test(l);
  const line =
    lines.find((l) => /\b(error|Error|ERROR)\b|fatal|multiple definition of|undefined reference to/.test(l) && !isMake(l)) ??
    lines.find((l) => /\*\*\*/.test(l)) ??
    lines.filter(Boolean).pop() ??
    'no output';
  return line.replace(/[.\s]+$/, '');
}

/**
 * Runs `make -C <headersDir> M=<copy> modules` on a temporary copy of `sources` and returns
 * the bytes of `<name>.ko`. A failed build is a ModuleBuildError naming the module and the
 * compiler's first error.
 */
export async function buildExternalModule(headersDir: string, name: string, sources: ModuleSources, options: ModuleBuildOptions = {}): Promise<Buffer> {
  const what = options.what ?? `the module ${name}`;
  const dir = mkdtempSync(join(tmpdir(), options.tmpPrefix ?? 'tsplice-module-'));
  try {
    if (sources.from) {
      for (const entry of readdirSync(sources.from, { withFileTypes: true })) {
        if (!entry.isFile() || isBuildProduct(entry.name) || (sources.filter && !sources.filter(entry.name))) continue;
        copyFileSync(join(sources.from, entry.name), join(dir, entry.name));
      }
    }
    const files = typeof sources.files === 'function' ? sources.files(dir) : (sources.files ?? {});
    for (const [file, content] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, file)), { recursive: true });
      writeFileSync(join(dir, file), content);
    }
    if (!existsSync(join(dir, 'Kbuild')) && !existsSync(join(dir, 'Makefile'))) {
      throw new UserError(`Cannot build ${what}: ${sources.from ?? 'its sources'} has no Kbuild or Makefile.`, { kind: 'missing-file', ...(sources.from !== undefined ? { object: sources.from } : {}) });
    }
    const output: string[] = [];
    try {
      await run(['make', '-C', headersDir, `M=${dir}`, ...(options.makeVariables ?? []), 'modules'], { purpose: `building ${what}`, onLine: (line) => output.push(line) });
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      const all = output.join('\n');
      throw new ModuleBuildError(`Building ${what} failed: ${firstError(all || error.message, dir)}.`, all || error.message);
    }
    const ko = join(dir, `${name}.ko`);
    if (!existsSync(ko)) throw new ModuleBuildError(`Building ${what} produced no ${name}.ko.`, output.join('\n'));
    return readFileSync(ko);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Builds the module of the folder `dir` for a lab kernel and puts `<name>.ko` into `dir`;
 * returns its path.
 */
export async function buildModule(kernel: LabKernel, dir: string, name = basename(dir)): Promise<string> {
  const bytes = await buildExternalModule(kernel.headersDir, name, { from: dir });
  const ko = join(dir, `${name}.ko`);
  writeFileSync(ko, bytes);
  return ko;
}
