/**
 * What identifies a version of tsplice's own code, for the caches that keep its answers
 * (update-cache.ts, derivation-store.ts): the compiled modules an entry point reaches, hashed.
 * A change anywhere else (the target side, the release's packaging) keeps what was made.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { projectRoot } from '../host/project.js';

/** The compiled modules `entry` imports, itself included, following relative imports. */
export function modulesReachedFrom(entry: string): string[] {
  const seen = new Set<string>();
  const queue = [entry];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(/(?:\bfrom\s+|\bimport\s*\(?\s*)(['"])(\.{1,2}\/[^'"]+\.js)\1/g)) queue.push(resolve(dirname(file), m[2] as string));
  }
  return [...seen].sort();
}

/** A hash of files' names (relative to the project) and bytes. */
export function filesFingerprint(files: readonly string[]): string {
  const root = projectRoot();
  const hash = createHash('sha256');
  for (const file of files) {
    const bytes = readFileSync(file);
    hash.update(`${relative(root, file)}\0${bytes.length}\0`).update(bytes);
  }
  return hash.digest('hex').slice(0, 16);
}
