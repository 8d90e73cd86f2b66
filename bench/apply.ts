/**
 * `npm run bench:apply`: what applying a ten-function update costs in a running kernel, and
 * above all the pause, as the number of tasks grows. On the host it makes the update from
 * test/patches/bench-ten-functions.patch; one guest boot then, at each task count (the guest's
 * own tasks, then sleeping `sleep` processes added up to about 500 and 5,000), runs several
 * apply + undo cycles through the same code as `tsplice apply` and `tsplice undo`, and
 * between them measures an empty stop_machine with the core module's `measure`. It prints
 * median and spread of the match time, the stage time, the pause and the empty stop_machine,
 * and the ratios apply/empty, measured the same way in the same run. It asserts nothing about
 * timings; it fails only if the update does not apply or undo.
 *
 * The pause is shown two ways, both measured in the kernel with ktime_get_ns():
 *   pause         on the patching CPU, from its entry into the stop_machine callback to its
 *                 exit (the task check, the byte re-check and the writes);
 *   stop_machine  the whole stop_machine call as its caller saw it (waking the stopper
 *                 threads, every CPU disabling interrupts, the callback, getting back).
 * An empty stop_machine does nothing in the callback, so its `pause` is only the exit path
 * (a few µs); the fair comparison for the time the machine is stopped is the second.
 *
 * When the core module has the `prescan` and `text_poke` parameters, each cycle is run in
 * three settings, so that all show in one run: `new` (the default: tasks pre-scanned before
 * the stop, only the stacks of tasks that ran since read inside it, sites written through
 * an alias mapped before it), `prescan+poke` (the pre-scan, but text_poke() inside the stop)
 * and `old` (every stack read and every site text_poke()d inside the stop, as before).
 *
 * Options: --runs N (cycles per task count and setting, default 7), --tasks 50,500,5000,
 * --memory MiB (guest memory, default 3072), --core KO (load this build of tsplice_core
 * instead of the one the update carries, e.g. an older one), --timeout S (the guest's, default
 * 3600), --append WORDS (extra guest kernel command line, e.g. ignore_loglevel), --verbose (the
 * guest's console).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labKernel } from '../src/debian/fetch.js';
import { projectRoot } from '../src/host/project.js';
import { chooseRelease } from '../src/debian/kernel-choice.js';
import { runInGuest } from '../tools/lab/qemu.js';
import type { CoreMeasurement, CoreUpdate } from '../src/switch/core-status.js';
import { median, spreadOf } from '../src/host/stats.js';

const quiet = (): void => {};
const cli = join(projectRoot(), 'bin', 'tsplice.js');
const patch = join(projectRoot(), 'test', 'patches', 'bench-ten-functions.patch');

if (process.argv.includes('--help')) {
  process.stdout.write(`Usage: node dist/bench/apply.js [options]
Applies and undoes a ten-function update in one boot of the lab kernel, at several task
counts and settings of the core module, and prints the pauses (median and spread).
  --runs N        apply + undo cycles per point (default 7)
  --tasks A,B,C   task counts to measure at (default 50,500,5000)
  --memory MIB    guest memory (default 3072)
  --core KO       a tsplice_core.ko to load instead of the one the update carries
  --verbose       stream the guest's console
`);
  process.exit(0);
}

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
}

const runs = Number(option('--runs', '7'));
const levels = option('--tasks', '50,500,5000').split(',').map(Number);
const memoryMiB = Number(option('--memory', '3072'));
const verbose = process.argv.includes('--verbose');
const coreKo = option('--core', '');

/** One setting of the core module's parameters; cycles run in each when the module has them. */
interface Mode {
  name: string;
  prescan: boolean;
  textPoke: boolean;
}

const MODES: Mode[] = [
  { name: 'new', prescan: true, textPoke: false },
  { name: 'prescan+poke', prescan: true, textPoke: true },
  { name: 'old', prescan: false, textPoke: true },
];

/** One switch as the kernel reported it: the figures CoreUpdate and CoreMeasurement share. */
type Figures = Pick<CoreMeasurement, 'pauseNs' | 'callNs' | 'waitNs' | 'tasks' | 'scanned' | 'prescanNs'> & Partial<Pick<CoreUpdate, 'attempts'>>;

interface Cycle {
  mode: string | null;
  apply: Figures & { matchMs: number; stageMs: number };
  scan: Figures;
  undo: Figures;
}

interface Level {
  target: number;
  threads: number;
  memAvailableKiB: number;
  spawnSeconds: number;
  empty: Figures[];
  cycles: Cycle[];
}

interface Report {
  done: boolean;
  hasParams: boolean;
  levels: Level[];
  failure?: string;
}

/** Runs in the guest (Node, root), in the shared folder; writes report.json as it goes. */
const GUEST_SCRIPT = String.raw`
import { execSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
const P = '/opt/tsplice/dist/src';
const { readUpdate } = await import(P + '/update/format.js');
const { applyUpdate, undoUpdate, unloadUpdate } = await import(P + '/apply/apply.js');
const { CoreModule } = await import(P + '/switch/core-module.js');

const config = JSON.parse(readFileSync('config.json', 'utf8'));
const report = { done: false, hasParams: false, levels: [] };
const save = () => writeFileSync('report.json', JSON.stringify(report, null, 1));
const update = readUpdate('bench.tsplice');
const PARAMS = '/sys/module/tsplice_core/parameters/';
const retry = { tries: 20, retryMs: 100 };
const threads = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[3].split('/')[1]);
const memAvailable = () => Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))[1]);
const marked = () => readFileSync('/proc/cmdline', 'utf8').includes('tsplice_bench');
const figures = (x) => ({ pauseNs: x.pauseNs, callNs: x.callNs, waitNs: x.waitNs, tasks: x.tasks,
  scanned: x.scanned, prescanNs: x.prescanNs, attempts: x.attempts });

function setMode(mode) {
  writeFileSync(PARAMS + 'prescan', mode.prescan ? 'Y' : 'N');
  writeFileSync(PARAMS + 'text_poke', mode.textPoke ? 'Y' : 'N');
}

async function cycle(core, mode) {
  if (mode !== null) setMode(mode);
  const a = await applyUpdate(update, retry);
  if (a.functions.length !== 10) throw new Error('applied ' + a.functions.length + ' functions, not 10');
  if (!marked()) throw new Error('applied, but /proc/cmdline shows no tsplice_bench marker');
  const scan = await core.measure(update.id);
  const u = await undoUpdate(update.id, retry);
  if (marked()) throw new Error('undone, but /proc/cmdline still shows the tsplice_bench marker');
  await unloadUpdate(update.id, retry);
  return { mode: mode && mode.name, apply: { ...figures(a.core), matchMs: a.matchMs, stageMs: a.stageMs }, scan: figures(scan), undo: figures(u) };
}

try {
  // The core module: a given build, or the one the update carries (loaded by the first
  // apply). A first cycle warms every cache; not counted.
  if (config.core) await CoreModule.load(config.core);
  await applyUpdate(update, retry);
  await undoUpdate(update.id, retry);
  await unloadUpdate(update.id, retry);
  const core = new CoreModule();
  report.hasParams = ['prescan', 'text_poke'].every((p) => existsSync(PARAMS + p));
  const modes = report.hasParams ? config.modes : [null];
  for (const target of config.levels) {
    const started = Date.now();
    const missing = target - (threads() + config.cpus);
    if (missing > 0) {
      execSync('i=0; while [ $i -lt ' + missing + ' ]; do sleep 100000 </dev/null >/dev/null 2>&1 & i=$((i+1)); done', { stdio: 'ignore' });
    }
    const spawnSeconds = (Date.now() - started) / 1000;
    execSync('sleep 2');
    const level = { target, threads: threads(), memAvailableKiB: memAvailable(), spawnSeconds, empty: [], cycles: [] };
    report.levels.push(level);
    console.log('bench: ' + level.threads + ' threads, ' + level.memAvailableKiB + ' KiB available');
    for (let r = 0; r < config.runs; r++) {
      for (const mode of modes) {
        for (let k = 0; k < 2; k++) level.empty.push(figures(await core.measure()));
        const c = await cycle(core, mode);
        level.cycles.push(c);
        console.log('bench: ' + target + ' tasks, run ' + (r + 1) + ', ' + (c.mode ?? 'as built') + ': pause ' + c.apply.pauseNs + ' ns, undo ' + c.undo.pauseNs + ' ns');
      }
      save();
    }
    if (report.hasParams) setMode(config.modes[0]);
  }
  report.done = true;
} catch (e) {
  report.failure = String((e && e.stack) || e);
  console.log('bench failed: ' + report.failure);
}
save();
console.log('bench done');
`;

function create(out: string): { id: string; functions: string[] } {
  const r = spawnSync(process.execPath, [cli, 'create', '--patch', patch, '-o', out, '--json'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', verbose ? 'inherit' : 'pipe'],
  });
  if (r.status !== 0) throw new Error(`tsplice create failed with status ${r.status}: ${r.stderr?.slice(-1000) ?? ''}`);
  const json = JSON.parse(r.stdout) as { id: string; functions: { name: string; status: string }[] };
  return { id: json.id, functions: json.functions.filter((f) => f.status === 'changed' || f.status === 'new').map((f) => f.name) };
}

/** "median (min–max)" in the unit given, from values in ns or ms. */
function spread(values: number[], scale: number, digits: number): string {
  const s = spreadOf(values);
  if (!s) return '-';
  const f = (v: number): string => (v / scale).toFixed(digits);
  return `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

const us = (values: number[]): string => spread(values, 1000, 0);
const ms = (values: number[]): string => spread(values, 1, 0);

function printTable(rows: string[][]): void {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  for (const row of rows) process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()}\n`);
}

const share = mkdtempSync(join(tmpdir(), 'tsplice-bench-apply-'));
try {
  const made = create(join(share, 'bench.tsplice'));
  process.stdout.write(`update ${made.id}: ${made.functions.length} functions (${made.functions.join(', ')})\n`);
  const cpus = 2;
  if (coreKo) copyFileSync(coreKo, join(share, 'tsplice_core.ko'));
  writeFileSync(join(share, 'config.json'), JSON.stringify({ levels, runs, cpus, modes: MODES, core: coreKo ? './tsplice_core.ko' : '' }));
  writeFileSync(join(share, 'bench.mjs'), GUEST_SCRIPT);
  const kernel = await labKernel(await chooseRelease(undefined, quiet), quiet);
  const guest = await runInGuest({
    kernel,
    // When the script dies, the kernel's last words say why (an oops kills the task that hit it).
    command: 'node bench.mjs || { dmesg | tail -n 80; exit 1; }',
    cwd: share,
    shares: [share],
    timeoutSeconds: Number(option('--timeout', '3600')),
    memoryMiB,
    cpus,
    append: option('--append', ''),
    onLine: verbose ? undefined : quiet,
  });
  const report = JSON.parse(readFileSync(join(share, 'report.json'), 'utf8')) as Report;
  if (!report.done) {
    throw new Error(`the guest did not finish: ${report.failure ?? guest.lines.slice(-20).join('\n')}`);
  }
  process.stdout.write(
    `guest: QEMU TCG, ${cpus} vCPUs, ${memoryMiB} MiB; ${runs} apply + undo cycles per task count` +
      `${report.hasParams ? ' and per setting' : ''}${coreKo ? `; core module ${coreKo}` : ''}; median (min–max)\n\n`,
  );
  const modes = report.hasParams ? MODES.map((m) => m.name) : [null];
  const rows: string[][] = [[
    'tasks', 'setting', 'match ms', 'stage ms', 'pause µs', 'stop_machine µs', 'empty pause µs', 'empty stop_machine µs',
    'pause/empty', 'stop_machine/empty', 'scan alone µs', 'undo pause µs', 'stacks read in stop', 'pre-scan ms',
  ]];
  for (const level of report.levels) {
    const emptyPause = median(level.empty.map((e) => e.pauseNs));
    const emptyCall = median(level.empty.map((e) => e.callNs));
    for (const mode of modes) {
      const cycles = level.cycles.filter((c) => c.mode === mode);
      const apply = cycles.map((c) => c.apply);
      const scanned = apply.map((a) => a.scanned).filter((v): v is number => v !== undefined);
      const prescan = apply.map((a) => a.prescanNs).filter((v): v is number => v !== undefined);
      rows.push([
        String(apply[0]?.tasks ?? level.threads),
        mode ?? 'as built',
        ms(apply.map((a) => a.matchMs)),
        ms(apply.map((a) => a.stageMs)),
        us(apply.map((a) => a.pauseNs)),
        us(apply.map((a) => a.callNs)),
        spread(level.empty.map((e) => e.pauseNs), 1000, 1),
        us(level.empty.map((e) => e.callNs)),
        `${(median(apply.map((a) => a.pauseNs)) / emptyPause).toFixed(1)}x`,
        `${(median(apply.map((a) => a.callNs)) / emptyCall).toFixed(2)}x`,
        us(cycles.map((c) => c.scan.pauseNs)),
        us(cycles.map((c) => c.undo.pauseNs)),
        scanned.length ? spread(scanned, 1, 0) : '-',
        prescan.length ? spread(prescan, 1e6, 1) : '-',
      ]);
    }
  }
  printTable(rows);
  process.stdout.write(
    '\npause: on the patching CPU inside stop_machine; stop_machine: the whole call as its caller saw it.\n' +
      'scan alone: `measure ID` while applied (the task check of undo, no write). Target: stop_machine/empty <= 1.5 at 500 tasks.\n',
  );
  for (const level of report.levels) {
    process.stdout.write(`${level.target} tasks asked: ${level.threads} threads, spawned in ${level.spawnSeconds.toFixed(0)} s, ${Math.round(level.memAvailableKiB / 1024)} MiB available\n`);
  }
} finally {
  rmSync(share, { recursive: true, force: true });
}
