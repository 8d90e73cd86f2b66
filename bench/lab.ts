/**
 * `npm run bench:lab`: what the lab costs. Prints cold fetch+prepare (into an empty cache),
 * warm fetch+prepare (everything cached), the wall time of `tsplice lab run -- true`, the
 * guest's own uptime when the command starts, and Node's start time inside the guest.
 * `--skip-cold` leaves out the cold run (it downloads about 360 MB).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../src/host/project.js';

const cli = join(projectRoot(), 'bin', 'tsplice.js');
const RUNS = 3;

function timed(args: string[], env: NodeJS.ProcessEnv = process.env): { seconds: number; stdout: string } {
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`tsplice ${args.join(' ')} failed with status ${r.status}`);
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, stdout: r.stdout };
}

function summary(values: number[], unit = 's'): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  return `median ${median.toFixed(2)} ${unit} (min ${sorted[0]?.toFixed(2)}, max ${sorted.at(-1)?.toFixed(2)}, n=${values.length})`;
}

const rows: [string, string][] = [];
if (!process.argv.includes('--skip-cold')) {
  const cache = mkdtempSync(join(tmpdir(), 'tsplice-bench-cache-'));
  try {
    const env = { ...process.env, TSPLICE_CACHE: cache };
    const cold = timed(['lab', 'prepare'], env);
    rows.push(['cold fetch+prepare (empty cache)', `${cold.seconds.toFixed(1)} s`]);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}
timed(['lab', 'prepare']);
rows.push(['warm fetch+prepare', summary(Array.from({ length: RUNS }, () => timed(['lab', 'prepare']).seconds))]);
rows.push(['warm lab run -- true (wall)', summary(Array.from({ length: RUNS }, () => timed(['lab', 'run', '--', 'true']).seconds))]);

// One boot measures both: the guest's uptime when the command starts, then node -e 0 five times.
const probe = timed([
  'lab', 'run', '--', 'sh', '-c',
  'cut -d" " -f1 /proc/uptime; for i in 1 2 3 4 5; do a=$(cut -d" " -f1 /proc/uptime); node -e 0; b=$(cut -d" " -f1 /proc/uptime); echo "node $a $b"; done',
]);
const lines = probe.stdout.trim().split('\n');
rows.push(['guest boot to command (guest uptime)', `${Number(lines[0]).toFixed(2)} s`]);
const nodeStarts = lines.filter((l) => l.startsWith('node ')).map((l) => {
  const [, a, b] = l.split(' ');
  return Number(b) - Number(a);
});
rows.push(['node -e 0 in the guest', summary(nodeStarts)]);

const width = Math.max(...rows.map(([k]) => k.length));
for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
