/**
 * Each file's derivation, kept on disk between runs of `tsplice release`: deriving the fixes of
 * a whole stable release compiles hundreds of units against both trees, and a run killed
 * half-way (a maintainer's Ctrl-C, a CI timeout) should not start again from the first file.
 * A file's result is kept under the hash of what decides it: the file and its unit, both trees'
 * source versions, and the compiled code of the derivation (every module derive.js reaches), so
 * a changed tsplice never hands out an old answer. Writes are renamed into place: a killed
 * write leaves nothing to be trusted.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../host/project.js';
import type { PreparedTree } from '../kbuild/tree.js';
import type { Candidate, DerivationStore, DerivedFile } from './derive.js';
import { filesFingerprint, modulesReachedFrom } from './code-fingerprint.js';

let fingerprint: string | undefined;

/** A hash of the compiled derivation code: derive.js and every module it reaches. */
export function deriveFingerprint(): string {
  return (fingerprint ??= filesFingerprint(modulesReachedFrom(join(projectRoot(), 'dist', 'src', 'release', 'derive.js'))));
}

/**
 * The store of `dir` for derivations of `newTree`'s changes against `oldTree`. `code` is the
 * derivation's fingerprint (default deriveFingerprint(); a test passes its own).
 */
export function derivationStore(dir: string, oldTree: PreparedTree, newTree: PreparedTree, code: string = deriveFingerprint()): DerivationStore {
  mkdirSync(dir, { recursive: true });
  const pathOf = (c: Candidate): string => {
    const key = JSON.stringify({ code, release: oldTree.release, from: oldTree.sourceVersion, to: newTree.sourceVersion, file: c.file, unit: c.unit, includedInto: c.includedInto ?? null, status: c.status });
    return join(dir, `${createHash('sha256').update(key).digest('hex').slice(0, 24)}.json`);
  };
  return {
    kept(c) {
      const path = pathOf(c);
      if (!existsSync(path)) return undefined;
      const derived = JSON.parse(readFileSync(path, 'utf8')) as DerivedFile;
      // A file named by another candidate (a hash collision, an edited file) is not this one's.
      const file = 'deriveError' in derived ? derived.file : derived.entry.file;
      return file === c.file ? derived : undefined;
    },
    keep(c, derived) {
      const path = pathOf(c);
      writeFileSync(`${path}.tmp`, JSON.stringify(derived));
      renameSync(`${path}.tmp`, path);
    },
  };
}
