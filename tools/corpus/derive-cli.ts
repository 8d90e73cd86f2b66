/**
 * `node dist/tools/corpus/derive-cli.js`: derives the corpus (tools/corpus/derive.ts) from the
 * lab kernel's prepared tree and the later one, and writes test/corpus/manifest.json with the
 * patches (test/corpus/patches/, or the cache when they pass 5 MB).
 *
 *   --to VERSION      the later Debian source version (default 6.1.176-1)
 *   --kernel RELEASE  the lab kernel (default: the lab's default release)
 *   --only A,B        only these changed files (a slice; writes the manifest all the same)
 *   --limit N         only the first N built-in files
 *   --manifest PATH   where to write the manifest (default test/corpus/manifest.json)
 */
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { labKernel } from '../../src/debian/fetch.js';
import { cachePath } from '../../src/host/cache.js';
import { projectRoot } from '../../src/host/project.js';
import { chooseRelease } from '../../src/debian/kernel-choice.js';
import { prepareTree } from '../../src/kbuild/tree.js';
import { deriveCorpus, writeCorpus } from './derive.js';

export const DEFAULT_TO_VERSION = '6.1.176-1';

export function defaultManifestPath(): string {
  return join(projectRoot(), 'test', 'corpus', 'manifest.json');
}

const { values } = parseArgs({
  options: {
    to: { type: 'string', default: DEFAULT_TO_VERSION },
    kernel: { type: 'string' },
    only: { type: 'string' },
    limit: { type: 'string' },
    manifest: { type: 'string' },
  },
});
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const release = await chooseRelease(values.kernel, log);
const kernel = await labKernel(release, log);
const oldTree = await prepareTree(release, log, kernel.version);
const newTree = await prepareTree(release, log, values.to);
const started = Date.now();
const derived = await deriveCorpus({
  oldTree,
  newTree,
  log,
  ...(values.only ? { only: values.only.split(',') } : {}),
  ...(values.limit ? { limit: Number(values.limit) } : {}),
});
const manifestPath = values.manifest ?? defaultManifestPath();
const manifest = writeCorpus(
  derived,
  manifestPath,
  join(dirname(manifestPath), 'patches'),
  cachePath('corpus', `${kernel.version}-${values.to ?? DEFAULT_TO_VERSION}`, 'patches'),
);
const by = (k: string): number => manifest.files.filter((f) => f.compile === k).length;
log(
  `${manifest.files.length} corpus files (${by('alone')} compile alone, ${by('with-headers')} with header hunks, ${by('fails')} fail), ` +
    `${(manifest.totalPatchBytes / 1024).toFixed(0)} KiB of patches in ${manifest.patchesStored === 'repository' ? join(dirname(manifestPath), manifest.patchesDir) : manifest.patchesDir}; ` +
    `manifest ${manifestPath}; ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
