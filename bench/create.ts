/**
 * `npm run bench:create`: the cost of `tsplice create` for a one-file patch on a warm cache,
 * against compiling that file twice with plain kbuild `make` (what any pre-post tool must at
 * least do). Prints median and spread over several runs, and the ratio of the medians.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../src/host/project.js';
import { chooseRelease } from '../src/debian/kernel-choice.js';
import { prepareTree } from '../src/kbuild/tree.js';
import { median, spreadOf } from '../src/host/stats.js';

const RUNS = 5;
const quiet = (): void => {};
const unit = process.argv[2] ?? 'fs/proc/version.c';
const patch = join(projectRoot(), 'test', 'patches', process.argv[3] ?? 'proc-version-string.patch');
const cli = join(projectRoot(), 'bin', 'tsplice.js');

function seconds(argv: string[], cwd?: string): number {
  const started = process.hrtime.bigint();
  const r = spawnSync(argv[0] as string, argv.slice(1), { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr.slice(-500)}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function describe(values: number[]): string {
  const s = spreadOf(values);
  return `median ${median(values).toFixed(2)} s (min ${s?.min.toFixed(2)}, max ${s?.max.toFixed(2)}, n=${values.length})`;
}

const tree = await prepareTree(await chooseRelease(undefined, quiet), quiet);
const object = unit.replace(/\.c$/, '.o');
const out = mkdtempSync(join(tmpdir(), 'tsplice-bench-create-'));
try {
  // Warm: the pre object exists (one create before measuring).
  seconds([process.execPath, cli, 'create', '--patch', patch, '-o', join(out, 'warm.tsplice')]);
  const create = Array.from({ length: RUNS }, (_, i) => seconds([process.execPath, cli, 'create', '--patch', patch, '-o', join(out, `u${i}.tsplice`)]));
  const twice = Array.from({ length: RUNS }, () => {
    let total = 0;
    for (let k = 0; k < 2; k++) {
      rmSync(join(tree.dir, object), { force: true });
      total += seconds(['make', ...tree.makeVariables, object], tree.dir);
    }
    return total;
  });
  process.stdout.write(`unit                         ${unit}\n`);
  process.stdout.write(`tsplice create (warm)        ${describe(create)}\n`);
  process.stdout.write(`plain make of the unit, x2   ${describe(twice)}\n`);
  process.stdout.write(`ratio (medians)              ${(median(create) / median(twice)).toFixed(2)} (target <= 1.5)\n`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
