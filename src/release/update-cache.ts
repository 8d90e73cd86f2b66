/**
 * Updates a release made before, kept so that a re-run reuses what is built: creating the
 * updates of a stable release takes the better part of an hour, and a maintainer re-runs it
 * after adding one adapted patch. An update is kept under the hash of everything that decides
 * its bytes: the patch text, the tree it was made against, and the part of tsplice that makes
 * it (toolFingerprint), so a changed tool never hands out an old answer.
 * Refusals are kept too, as their diagnostics: a refused fix is asked again only when one of
 * those inputs changes.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createUpdate } from '../create/create.js';
import { UserError, type Diagnostic } from '../host/errors.js';
import { AUTHOR_HEADER, projectRoot } from '../host/project.js';
import type { PreparedTree } from '../kbuild/tree.js';
import { filesFingerprint, modulesReachedFrom } from './code-fingerprint.js';
import { parseUpdate, serializeUpdate, type UpdatePackage } from '../update/format.js';

let fingerprint: string | undefined;

/**
 * A hash of what decides an update's bytes: the compiled code `createUpdate` runs (every module
 * create.js reaches) and the core module's sources, which each update carries built. A change
 * to the release's own steps or to the target side keeps the updates made before.
 */
export function toolFingerprint(): string {
  if (fingerprint !== undefined) return fingerprint;
  const root = projectRoot();
  const kmod = join(root, 'kmod');
  return (fingerprint = filesFingerprint([
    ...modulesReachedFrom(join(root, 'dist', 'src', 'create', 'create.js')),
    ...readdirSync(kmod).filter((n) => n === 'Kbuild' || n.endsWith('.c') || n.endsWith('.h')).sort().map((n) => join(kmod, n)),
    join(kmod, AUTHOR_HEADER),
  ]));
}

/** What a kept refusal holds: enough to throw the same UserError again. */
interface KeptRefusal {
  message: string;
  diagnostics: readonly Diagnostic[];
}

export interface UpdateCacheOptions {
  /** The folder the updates are kept in. */
  dir: string;
  tree: PreparedTree;
  headersDir: string;
  distributionVersion: string;
  /** Makes the update when it is not kept (default createUpdate with the fields above). */
  make?: (patch: string) => Promise<UpdatePackage>;
}

/**
 * `createUpdate` for one patch, answered from `dir` when the same patch was made against the
 * same tree by the same tsplice. Writes are renamed into place, so a killed run leaves nothing
 * half-written to be trusted.
 */
export function cachedCreate(options: UpdateCacheOptions): (patch: string) => Promise<UpdatePackage> {
  mkdirSync(options.dir, { recursive: true });
  return async (patch: string): Promise<UpdatePackage> => {
    const text = readFileSync(patch);
    const key = createHash('sha256')
      .update(`${toolFingerprint()}\0${basename(patch)}\0${options.tree.release}\0${options.tree.sourceVersion}\0${options.distributionVersion}\0${options.headersDir}\0`)
      .update(text)
      .digest('hex')
      .slice(0, 24);
    const updatePath = join(options.dir, `${key}.tsplice`);
    const refusalPath = join(options.dir, `${key}.refused.json`);
    if (existsSync(updatePath)) return parseUpdate(readFileSync(updatePath), updatePath);
    if (existsSync(refusalPath)) {
      const kept = JSON.parse(readFileSync(refusalPath, 'utf8')) as KeptRefusal;
      const [first, ...more] = kept.diagnostics;
      throw new UserError(kept.message, first ?? { kind: 'unclassified' }, { more });
    }
    const keep = (path: string, bytes: Buffer | string): void => {
      writeFileSync(`${path}.tmp`, bytes);
      renameSync(`${path}.tmp`, path);
    };
    try {
      const update = options.make
        ? await options.make(patch)
        : (await createUpdate({ tree: options.tree, patches: [patch], distributionVersion: options.distributionVersion, headersDir: options.headersDir, log: () => {} })).update;
      keep(updatePath, serializeUpdate(update));
      return update;
    } catch (error) {
      // Only a refusal is an answer worth keeping; a crash is asked again next time.
      if (error instanceof UserError) keep(refusalPath, JSON.stringify({ message: error.message, diagnostics: error.diagnostics } satisfies KeptRefusal));
      throw error;
    }
  };
}
