/**
 * `node dist/tools/corpus/module-loads-cli.js [--manifest PATH]`: boots the lab guest once,
 * loads and unloads each module of the corpus manifest (module-loads.ts), and writes whether
 * it loads into the manifest's entries. About a minute to boot and a fraction of a second
 * per module.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chooseRelease } from '../../src/debian/kernel-choice.js';
import { labKernel } from '../../src/debian/fetch.js';
import { projectRoot } from '../../src/host/project.js';
import { runInGuest } from '../lab/qemu.js';
import { readManifest } from '../../src/release/derive.js';
import { loadScript, manifestModules, parseLoadLines, recordLoads } from './module-loads.js';

const { values } = parseArgs({ options: { manifest: { type: 'string' } } });
const manifestPath = values.manifest ?? join(projectRoot(), 'test', 'corpus', 'manifest.json');
const manifest = readManifest(manifestPath);
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const release = await chooseRelease(undefined, log);
const kernel = await labKernel(release, log);
const modules = manifestModules(manifest);
const share = mkdtempSync(join(tmpdir(), 'tsplice-module-loads-'));
const lines: string[] = [];
const started = Date.now();
try {
  writeFileSync(join(share, 'loads.sh'), loadScript(modules));
  log(`Loading ${modules.length} modules in the lab guest, one at a time...`);
  await runInGuest({ kernel, command: 'sh loads.sh', cwd: share, shares: [share], timeoutSeconds: 300 + 20 * modules.length, onLine: (line) => lines.push(line) });
} finally {
  rmSync(share, { recursive: true, force: true });
}
const found = parseLoadLines(lines);
recordLoads(manifest, found, { at: new Date().toISOString(), release, command: 'npm run build && node dist/tools/corpus/module-loads-cli.js' });
writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
const failed = [...found.entries()].filter(([, r]) => !r.loads);
log(
  `${found.size} of ${modules.length} modules tried in ${((Date.now() - started) / 1000).toFixed(0)} s: ${found.size - failed.length} load, ${failed.length} do not` +
    `${failed.length > 0 ? ` (${failed.map(([m]) => m).join(', ')})` : ''}.`,
);
