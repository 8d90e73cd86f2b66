/**
 * The corpus run inside the lab guest: `node /opt/tsplice/dist/tools/corpus/guest.js PLAN`.
 *
 * For each update of the plan, in order: `modprobe` of the modules it replaces functions of (a
 * module that does not load is its own outcome), `tsplice apply FILE --json` (the command-line
 * program, run in this process: see tsplice() below), the kernel's own record of it
 * (/proc/tsplice/status, what `tsplice list --json` prints), the running bytes of each replaced
 * function (a jmp to the new code at the recorded site, read through /proc/kcore as `tsplice
 * peek` does), a short smoke workload with a dmesg check,
 * `tsplice undo ID --json`, and the original bytes back; for an item marked `late`, then the
 * late path (lateCycle). One JSON line per step goes to the
 * results file in the share (fsync'ed), so that a guest that dies mid-way leaves a record of
 * where; exit status 3 asks the host for a fresh boot (the kernel oopsed or a check says it is
 * no longer trustworthy).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { runProgram, tspliceProgram } from '../../src/cli/main.js';
import { CoreModule } from '../../src/switch/core-module.js';
import { linesNamed, parseKallsyms } from '../../src/match/kallsyms.js';
import { Kcore } from '../../src/match/kcore.js';
import { readUpdate } from '../../src/update/format.js';
import { classifyApplyError, dmesgProblems, type ApplyFailure, type GuestPlan, type GuestResult, type FunctionCheck, type LateResult } from './outcome.js';
import type { CoreUpdate } from '../../src/switch/core-status.js';

/** Asks the host for a new boot before the next update. */
export const EXIT_REBOOT = 3;

function record(path: string, value: object): void {
  const fd = openSync(path, 'a');
  try {
    writeSync(fd, `${JSON.stringify(value)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** New kernel log lines since the last call (read and clear). */
function takeDmesg(): string[] {
  const r = spawnSync('dmesg', ['-c'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').filter(Boolean);
}

interface TspliceRun {
  status: number;
  stdout: string;
  ms: number;
  /** What went wrong, for the record: the CLI's --json error, or how it ended. */
  failure: ApplyFailure & { error?: { kind: string; message?: string } };
  /** One line saying what went wrong: the error's sentence, or stderr. */
  message: string;
}

const PREFIX = 'tsplice: ';

/**
 * Runs a tsplice command as the command line does (the same program, parsing and output), in
 * this process: under emulation a Node start and the loading of tsplice's modules cost seconds,
 * three times per update (apply, undo, unload), where the work itself is a fraction of that.
 * What the command writes is captured; a command that throws anything but a refusal is reported
 * as crashed. A command still running after `timeoutMs` cannot be stopped here: the host's
 * guest timeout ends such a boot.
 */
async function tsplice(args: string[], timeoutMs: number): Promise<TspliceRun> {
  const started = process.hrtime.bigint();
  const stdout: string[] = [];
  const stderr: string[] = [];
  const realStdout = process.stdout.write.bind(process.stdout);
  const realStderr = process.stderr.write.bind(process.stderr);
  const capture =
    (into: string[]) =>
    (chunk: string | Uint8Array): boolean => {
      into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    };
  process.stdout.write = capture(stdout) as typeof process.stdout.write;
  process.stderr.write = capture(stderr) as typeof process.stderr.write;
  process.exitCode = 0;
  let crash: string | undefined;
  try {
    await runProgram(tspliceProgram(), ['node', 'tsplice', ...args]);
  } catch (error) {
    crash = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } finally {
    process.stdout.write = realStdout;
    process.stderr.write = realStderr;
  }
  const status = crash ? 70 : Number(process.exitCode ?? 0);
  process.exitCode = 0;
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const out = stdout.join('');
  const err = stderr.join('').trim();
  if (crash) return { status, stdout: out, ms, failure: {}, message: `tsplice ${args.join(' ')} threw ${crash}` };
  if (ms > timeoutMs) realStderr(`corpus: tsplice ${args.join(' ')} took ${Math.round(ms)} ms (more than ${timeoutMs})\n`);
  // With --json a refusal is data on stdout: {"error": {kind, ..., message}}.
  let error: { kind: string; message?: string } | undefined;
  if (status !== 0) {
    try {
      error = (JSON.parse(out) as { error?: { kind: string; message?: string } }).error;
    } catch {
      error = undefined;
    }
  }
  const lastLine = err.split('\n').filter((l) => l.startsWith(PREFIX)).pop() ?? err;
  const message = error?.message ?? (lastLine.startsWith(PREFIX) ? lastLine.slice(PREFIX.length) : lastLine);
  return { status, stdout: out, ms, failure: error ? { error } : {}, message };
}

/** A file, fork/exec and pipe workload in busybox sh; fails on any error. */
const SMOKE_SHELL = [
  'set -e',
  'd=$(mktemp -d)',
  'dd if=/dev/urandom of=$d/a bs=64k count=16 2>/dev/null',
  'cp $d/a $d/b && cmp $d/a $d/b && sync',
  'echo line > $d/c && mv $d/c $d/e && cat $d/e >/dev/null && ln -s $d/e $d/f && cat $d/f >/dev/null',
  'ls -l $d >/dev/null && rm -r $d',
  'i=0; while [ $i -lt 20 ]; do sh -c "exit 0"; /bin/true; i=$((i+1)); done',
  'test "$(yes tsplice | head -n 20000 | wc -l)" = 20000',
  'test "$(seq 1 1000 | sort -rn | head -n 1)" = 1000',
  'cat /proc/meminfo /proc/stat /proc/self/status /proc/self/maps /proc/version /proc/loadavg /proc/uptime /proc/interrupts >/dev/null',
  'for f in /proc/[0-9]*/stat; do cat $f >/dev/null 2>&1 || true; done',
  'cat /sys/kernel/mm/transparent_hugepage/enabled >/dev/null 2>&1 || true',
  'ps >/dev/null; uname -a >/dev/null; date >/dev/null; sleep 0.1',
].join('\n');

/** Loopback TCP through node's net: 256 KiB echoed back by a server on 127.0.0.1. */
function loopbackTcp(): Promise<string | undefined> {
  return new Promise((resolve) => {
    const payload = Buffer.alloc(256 * 1024, 'tsplice ');
    const server = createServer((socket) => socket.pipe(socket));
    const timer = setTimeout(() => {
      server.close();
      resolve('loopback TCP echo did not finish in 20 s');
    }, 20_000);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const chunks: Buffer[] = [];
      let received = 0;
      const client = connect(port, '127.0.0.1', () => client.write(payload));
      client.on('data', (c: Buffer) => {
        chunks.push(c);
        received += c.length;
        if (received >= payload.length) {
          client.end();
          clearTimeout(timer);
          server.close();
          resolve(Buffer.concat(chunks).equals(payload) ? undefined : 'loopback TCP echo returned other bytes');
        }
      });
      client.on('error', (e) => {
        clearTimeout(timer);
        server.close();
        resolve(`loopback TCP: ${e.message}`);
      });
    });
  });
}

async function smoke(): Promise<string | undefined> {
  const r = spawnSync('sh', ['-c', SMOKE_SHELL], { encoding: 'utf8', timeout: 120_000 });
  if (r.error || r.status !== 0) return `smoke workload failed (${r.error?.message ?? `status ${r.status}`}): ${`${r.stderr ?? ''}`.trim().slice(-300)}`;
  return loopbackTcp();
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/**
 * Loads the modules an update replaces functions of (`modprobe`, with their dependencies, from
 * the stock image's /lib/modules): the error of the first that does not load, else undefined.
 */
function loadModules(modules: readonly string[]): string | undefined {
  for (const module of modules) {
    const r = spawnSync('modprobe', [module], { encoding: 'utf8', timeout: 60_000 });
    if (r.error || r.status !== 0) return `modprobe ${module} failed (${r.error?.message ?? `status ${r.status}`}): ${`${r.stderr ?? ''}`.trim().slice(-300)}`;
  }
  return undefined;
}

/** Whether each function the kernel lists for an update runs its new code: a jmp to it at the site. */
function jumpChecks(listed: CoreUpdate | undefined): FunctionCheck[] {
  const checks: FunctionCheck[] = [];
  const core = Kcore.open();
  try {
    for (const f of listed?.functions ?? []) {
      const bytes = core.read(f.oldAddress, 16);
      const at = f.site;
      const rel = Buffer.from(bytes).readInt32LE(at + 1);
      const target = f.oldAddress + BigInt(at + 5) + BigInt(rel);
      const jumps = bytes[at] === 0xe9 && target === f.newAddress;
      checks.push({ name: f.name, oldAddress: `0x${f.oldAddress.toString(16)}`, newAddress: `0x${f.newAddress.toString(16)}`, site: at, applied: hex(bytes), jumps });
    }
  } finally {
    core.close();
  }
  return checks;
}

/** Unloads `modules` (and their unused dependencies); the ones still loaded afterwards. */
function unloadModules(modules: readonly string[]): string[] {
  for (const module of modules) spawnSync('modprobe', ['-r', module], { encoding: 'utf8', timeout: 60_000 });
  const loaded = new Set(readFileSync('/proc/modules', 'utf8').split('\n').map((l) => l.split(' ')[0]));
  return modules.filter((m) => loaded.has(m));
}

/**
 * The late path, after the regular cycle left the update unloaded and its modules removed:
 * apply while the modules are not loaded (every part waits), `modprobe` (each function
 * jumps to its new code), `modprobe -r` (the parts wait again), `modprobe` (jumps again),
 * undo and unload. The first step that fails ends it, named.
 */
async function lateCycle(item: GuestPlan['items'][number], modules: readonly string[]): Promise<LateResult> {
  const stuck = unloadModules(modules);
  if (stuck.length > 0) return { ok: false, error: `${stuck.join(', ')} would not unload before the late path` };
  const parts = async (): Promise<CoreUpdate | undefined> => (await new CoreModule().status()).updates.find((u) => u.id === item.id);
  const apply = await tsplice(['apply', item.update, '--json', '--tries', '3', '--retry-ms', '200'], 240_000);
  if (apply.status !== 0) return { ok: false, error: `apply with the modules unloaded: ${apply.message}` };
  const late: LateResult = { ok: false };
  const step = async (): Promise<string | undefined> => {
    const waiting = await parts();
    if (!waiting || waiting.parts.length === 0 || waiting.parts.some((p) => p.state !== 'waiting')) return `after apply, the parts are ${waiting?.parts.map((p) => p.state).join(', ') || 'none'}, not all waiting`;
    const expected = waiting.parts.length;
    for (const [round, key] of [['first load', 'firstLoad'], ['reload', 'reload']] as const) {
      const notLoading = loadModules(modules);
      if (notLoading) return `${round}: ${notLoading}`;
      const bound = await parts();
      const checks = jumpChecks(bound);
      late[key] = checks.filter((c) => c.jumps).length;
      if (late[key] !== expected || bound?.parts.some((p) => p.state !== 'bound')) {
        return `${round}: ${late[key]} of ${expected} functions jump to their new code (${bound?.parts.map((p) => `${p.name} ${p.state}${p.diagnostic ? ` ${p.diagnostic.reason}` : ''}`).join(', ')})`;
      }
      if (round === 'first load') {
        const still = unloadModules(modules);
        if (still.length > 0) return `${still.join(', ')} would not unload while applied`;
        if ((await parts())?.parts.some((p) => p.state !== 'waiting')) return 'after modprobe -r, a part is still bound';
      }
    }
    return undefined;
  };
  const error = await step();
  const undo = await tsplice(['undo', item.id, '--json', '--tries', '5', '--retry-ms', '200'], 240_000);
  const unload = undo.status === 0 ? await tsplice(['unload', item.id, '--tries', '5', '--retry-ms', '200'], 240_000) : undo;
  unloadModules(modules);
  late.ok = error === undefined && undo.status === 0 && unload.status === 0;
  if (!late.ok) late.error = error ?? `undo: ${undo.status !== 0 ? undo.message : unload.message}`;
  return late;
}

async function runOne(item: GuestPlan['items'][number]): Promise<GuestResult> {
  const result: GuestResult = { id: item.id, file: item.file, outcome: 'applied', functions: [], dmesg: [] };
  const update = readUpdate(item.update);
  const modules = [...new Set(update.functions.flatMap((f) => (f.module !== undefined ? [f.module] : [])))];
  const notLoading = loadModules(modules);
  if (notLoading) {
    result.outcome = 'module does not load';
    result.error = notLoading;
    result.dmesg.push(...dmesgProblems(takeDmesg()));
    return result;
  }
  // The original bytes of every function the update may replace (all candidates by name, in
  // vmlinux or in the function's module).
  // Only the lines of these names: parsing the whole table costs seconds under emulation.
  const symbols = parseKallsyms(linesNamed(readFileSync('/proc/kallsyms', 'utf8'), update.functions.map((f) => f.name)));
  const kcore = Kcore.open();
  const before = new Map<string, string>();
  try {
    for (const f of update.functions) {
      for (const s of symbols.lookup(f.name)) if (s.module === f.module) before.set(s.runningAddress.toString(16), hex(kcore.read(s.runningAddress, 16)));
    }
  } finally {
    kcore.close();
  }
  takeDmesg();

  const apply = await tsplice(['apply', item.update, '--json', '--tries', '3', '--retry-ms', '200'], 240_000);
  result.applyWallMs = apply.ms;
  const afterApply = takeDmesg();
  result.dmesg.push(...dmesgProblems(afterApply));
  if (apply.status !== 0) {
    result.outcome = classifyApplyError(apply.failure);
    result.error = apply.message;
    if (apply.failure.error) result.kind = apply.failure.error.kind;
    if (result.dmesg.some((l) => /Oops|BUG:|kernel BUG|RIP: 0010|general protection fault(,|: \d)/.test(l))) result.reboot = true;
    return result;
  }
  const applied = JSON.parse(apply.stdout) as { pauseNs: number; attempts: number; matchMs: number; stageMs: number; stopMachineNs: number; tasks: number };
  result.pauseNs = applied.pauseNs;
  result.attempts = applied.attempts;
  result.matchMs = applied.matchMs;
  result.stageMs = applied.stageMs;

  // What the kernel says (tsplice list --json reads the same status file) and what runs.
  const listed = (await new CoreModule().status()).updates.find((u) => u.id === item.id);
  if (listed?.state !== 'applied') {
    result.outcome = 'check failed';
    result.error = `after apply, the kernel lists ${item.id} as ${listed?.state ?? 'absent'}`;
  }
  const checks = jumpChecks(listed);
  result.functions = checks;
  // A fix of data alone (hooks, no replaced function) has no jmp: its apply hooks must have run;
  // one of declarations alone (an __init change that needs nothing now) has nothing to check.
  const dataAlone = !update.functions.some((f) => f.pre) && (update.hooks?.length ?? 0) + (update.declarations?.length ?? 0) > 0;
  if (result.outcome === 'applied' && ((checks.length === 0 && !dataAlone) || checks.some((c) => !c.jumps))) {
    result.outcome = 'check failed';
    result.error = `no jmp to the new code at the site of ${checks.filter((c) => !c.jumps).map((c) => c.name).join(', ') || '(no function listed)'}`;
  }
  const notRun = listed?.hooks.filter((h) => h.kind === 'apply' && h.runs === 0) ?? [];
  if (result.outcome === 'applied' && notRun.length > 0) {
    result.outcome = 'check failed';
    result.error = `the apply hooks ${notRun.map((h) => h.name).join(', ')} did not run`;
  }

  const smokeError = await smoke();
  const afterSmoke = dmesgProblems(takeDmesg());
  result.dmesg.push(...afterSmoke);
  if (smokeError && result.outcome === 'applied') {
    result.outcome = 'smoke failed';
    result.error = smokeError;
  }

  const undo = await tsplice(['undo', item.id, '--json', '--tries', '5', '--retry-ms', '200'], 240_000);
  result.undoWallMs = undo.ms;
  if (undo.status !== 0) {
    if (result.outcome === 'applied') {
      result.outcome = 'undo failed';
      result.error = undo.message;
      if (undo.failure.error) result.kind = undo.failure.error.kind;
    }
    result.reboot = true;
  } else {
    result.undoPauseNs = (JSON.parse(undo.stdout) as { pauseNs: number }).pauseNs;
    // Undo keeps the update module; the corpus lets each go before the next fix.
    const unload = await tsplice(['unload', item.id, '--tries', '5', '--retry-ms', '200'], 240_000);
    if (unload.status !== 0 && result.outcome === 'applied') {
      result.outcome = 'undo failed';
      result.error = unload.message;
      result.reboot = true;
    }
    const again = Kcore.open();
    try {
      for (const c of checks) {
        const now = hex(again.read(BigInt(c.oldAddress), 16));
        c.restored = now === before.get(c.oldAddress.slice(2));
        if (!c.restored) c.undone = now;
      }
    } finally {
      again.close();
    }
    if (result.outcome === 'applied' && checks.some((c) => !c.restored)) {
      result.outcome = 'check failed';
      result.error = `after undo, the bytes of ${checks.filter((c) => !c.restored).map((c) => c.name).join(', ')} are not the original ones`;
      result.reboot = true;
    }
  }
  // The modules go again (their dependencies stay), so the next fix finds the guest as booted;
  // one that will not go (in use, permanent) is only left loaded.
  for (const module of modules) spawnSync('modprobe', ['-r', module], { encoding: 'utf8', timeout: 60_000 });
  result.dmesg.push(...dmesgProblems(takeDmesg()));
  if (result.dmesg.length > 0 && result.outcome === 'applied') {
    result.outcome = 'kernel complained';
    result.error = result.dmesg.slice(0, 3).join(' | ');
  }
  if (item.late && modules.length > 0 && result.outcome === 'applied' && !result.reboot) {
    result.late = await lateCycle(item, modules);
    result.dmesg.push(...dmesgProblems(takeDmesg()));
  }
  // A kernel-mode fault (not a user process's segfault or trap) leaves the kernel suspect.
  if (result.dmesg.some((l) => /Oops|BUG:|kernel BUG|RIP: 0010|general protection fault(,|: \d)/.test(l))) result.reboot = true;
  return result;
}

async function main(): Promise<void> {
  const planPath = process.argv[2];
  if (!planPath) throw new Error('usage: guest.js PLAN.json');
  const plan = JSON.parse(readFileSync(planPath, 'utf8')) as GuestPlan;
  takeDmesg();
  // The first apply loads the core module; later ones find it loaded.
  for (const item of plan.items) {
    record(plan.results, { type: 'start', id: item.id, at: Date.now() });
    process.stdout.write(`corpus: ${item.file} (${item.id})\n`);
    let result: GuestResult;
    try {
      result = await runOne(item);
    } catch (error) {
      result = { id: item.id, file: item.file, outcome: 'driver error', error: (error as Error).message, functions: [], dmesg: [], reboot: true };
    }
    record(plan.results, { type: 'result', ...result });
    process.stdout.write(`corpus: ${item.file}: ${result.outcome}${result.error ? `: ${result.error.slice(0, 200)}` : ''}\n`);
    if (result.reboot) {
      process.exitCode = EXIT_REBOOT;
      return;
    }
  }
}

await main();
