/**
 * `node dist/tools/corpus/derive-cli.js`: derives the corpus (src/release/derive.ts) from the
 * lab kernel's prepared tree and the later one, and writes test/corpus/manifest.json with the
 * patches (test/corpus/patches/, or the cache when they pass 5 MB).
 *
 *   --to VERSION      the later Debian source version (default 6.1.176-1)
 *   --kernel RELEASE  the lab kernel (default: the lab's default release)
 *   --status S        built-in (default: the manifest's main list), module, or all
 *   --under DIR       only changed files under this folder (net/netfilter)
 *   --only A,B        only these changed files (a slice; writes the manifest all the same)
 *   --limit N         only the first N of the files chosen
 *   --why FILE        say why FILE is or is not a candidate, and its status and module; derive nothing
 *   --jobs N          files derived at once (default: the number of CPUs); the pre objects are
 *                     built first in one `make -jN`
 *   --manifest PATH   where to write the manifest (default test/corpus/manifest.json); the
 *                     patches go to the folder `patches` beside it
 *
 * Progress goes to stderr, one `[n/total] FILE...` line per file; the summary counts the files
 * whose derivation failed (the manifest's `deriveErrors`).
 */
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { labKernel } from '../../src/debian/fetch.js';
import { cachePath } from '../../src/host/cache.js';
import { projectRoot } from '../../src/host/project.js';
import { chooseRelease } from '../../src/debian/kernel-choice.js';
import { prepareTree } from '../../src/kbuild/tree.js';
import { deriveCorpus, whyFile, writeCorpus, type StatusChoice } from '../../src/release/derive.js';

export const DEFAULT_TO_VERSION = '6.1.176-1';

export function defaultManifestPath(): string {
  return join(projectRoot(), 'test', 'corpus', 'manifest.json');
}

const args = process.argv.slice(2);
const { values } = parseArgs({
  args,
  options: {
    to: { type: 'string', default: DEFAULT_TO_VERSION },
    kernel: { type: 'string' },
    status: { type: 'string', default: 'built-in' },
    under: { type: 'string' },
    only: { type: 'string' },
    limit: { type: 'string' },
    why: { type: 'string' },
    manifest: { type: 'string' },
    jobs: { type: 'string' },
  },
});
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const status = values.status as StatusChoice;
if (!['built-in', 'module', 'all'].includes(status)) {
  log(`--status ${values.status} is not one of built-in, module, all.`);
  process.exit(2);
}
const choice = {
  status,
  ...(values.under ? { under: values.under } : {}),
  ...(values.only ? { only: values.only.split(',').filter((f) => f !== '') } : {}),
  ...(values.limit ? { limit: Number(values.limit) } : {}),
};
const release = await chooseRelease(values.kernel, log);
const kernel = await labKernel(release, log);
const oldTree = await prepareTree(release, log, kernel.version);
const newTree = await prepareTree(release, log, values.to);
if (values.why) {
  for (const line of await whyFile(oldTree, newTree, values.why, choice)) process.stdout.write(`${line}\n`);
  process.exit(0);
}
const started = Date.now();
const derived = await deriveCorpus({
  oldTree,
  newTree,
  log,
  ...choice,
  jobs: values.jobs ? Number(values.jobs) : availableParallelism(),
  // The manifest records how it was made; with no options, the command of the main list.
  command: ['npm run build && node dist/tools/corpus/derive-cli.js', ...args].join(' '),
});
const manifestPath = values.manifest ?? defaultManifestPath();
const manifest = writeCorpus(
  derived,
  manifestPath,
  join(dirname(manifestPath), 'patches'),
  cachePath('corpus', `${kernel.version}-${values.to ?? DEFAULT_TO_VERSION}`, 'patches'),
);
const by = (k: string): number => manifest.files.filter((f) => f.compile === k).length;
const modules = manifest.files.filter((f) => f.status === 'module').length;
const refused = manifest.files.filter((f) => f.moduleRefusal).length;
const failed = manifest.deriveErrors?.length ?? 0;
log(
  `${manifest.files.length} corpus files (${by('alone')} compile alone, ${by('with-headers')} with header hunks, ${by('fails')} fail; ` +
    `${modules} of modules, ${refused} with a module refusal), ${failed} not derived (deriveErrors), ` +
    `${(manifest.totalPatchBytes / 1024).toFixed(0)} KiB of patches in ${manifest.patchesStored === 'repository' ? join(dirname(manifestPath), manifest.patchesDir) : manifest.patchesDir}; ` +
    `manifest ${manifestPath}; ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
