/**
 * Building out-of-tree kernel modules with kbuild against a lab kernel's unpacked headers, the
 * way a distribution user builds one against an installed linux-headers package. The result
 * carries the kernel's vermagic and symbol versions (the headers' Module.symvers), so the
 * stock kernel loads it (unsigned: the kernel is tainted, which is fine in the lab).
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { UserError } from '../host/errors.js';
import { run } from '../host/exec.js';
import type { LabKernel } from '../debian/fetch.js';

/** Runs `make -C <headers> M=<dir> modules` and returns the path of `<name>.ko`. */
export async function buildModule(kernel: LabKernel, dir: string, name = basename(dir)): Promise<string> {
  if (!existsSync(join(dir, 'Kbuild')) && !existsSync(join(dir, 'Makefile'))) {
    throw new UserError(`${dir} has no Kbuild or Makefile to build a module from.`);
  }
  await run(['make', '-C', kernel.headersDir, `M=${dir}`, 'modules'], { purpose: `building the module in ${dir}` });
  const ko = join(dir, `${name}.ko`);
  if (!existsSync(ko)) throw new UserError(`Building the module in ${dir} did not produce ${ko}.`);
  return ko;
}
