/**
 * The set-up the apply tests share before their one guest boot: the lab kernel, its prepared
 * tree, and updates created from test/patches into a fresh folder that the guest sees. Used by
 * tests only; it lives beside them so each test states just what it adds.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUpdate } from '../create/create.js';
import { labKernel, type LabKernel } from '../debian/fetch.js';
import { chooseRelease } from '../debian/kernel-choice.js';
import { projectRoot } from '../host/project.js';
import { prepareTree, type PreparedTree } from '../kbuild/tree.js';
import { type UpdatePackage, writeUpdate } from '../update/format.js';

const quiet = (): void => {};

/** A patch of test/patches by name. */
export const testPatch = (name: string): string => join(projectRoot(), 'test', 'patches', `${name}.patch`);

export interface LabUpdates {
  release: string;
  kernel: LabKernel;
  tree: PreparedTree;
  /** The folder the guest shares. */
  share: string;
  /** Creates the update of test/patches/NAME.patch and writes it to the share as FILE.tsplice. */
  create(name: string, file?: string): Promise<UpdatePackage>;
}

export async function labUpdates(label: string): Promise<LabUpdates> {
  const release = await chooseRelease(undefined, quiet);
  const kernel = await labKernel(release, quiet);
  const tree = await prepareTree(release, quiet);
  const share = mkdtempSync(join(tmpdir(), `tsplice-${label}-test-`));
  const create = async (name: string, file = name): Promise<UpdatePackage> => {
    const { update } = await createUpdate({ tree, patches: [testPatch(name)], headersDir: kernel.headersDir, distributionVersion: kernel.version, log: quiet });
    writeUpdate(join(share, `${file}.tsplice`), update);
    return update;
  };
  return { release, kernel, tree, share, create };
}
