/** `tsplice apply`, `undo`, `unload`, `recover`, `list`, `show`: updates in the running kernel (root). */
import type { Command } from 'commander';
import { UserError } from '../host/errors.js';
import { applyUpdate, recover, strayUpdateModules, undoUpdate, unloadUpdate } from '../apply/apply.js';
import { CoreModule } from '../switch/core-module.js';
import type { CoreStatus, CoreUpdate, RetryOptions } from '../switch/core-status.js';
import { readUpdateFile } from '../update/format.js';
import { checkTrust } from '../apply/trust.js';
import { printJson } from './output.js';

interface RetryFlags {
  tries?: string;
  retryMs?: string;
  json?: boolean;
}

/** A flag's whole number in [min, max], or a sentence naming the flag and what was typed. */
function wholeNumber(flag: string, text: string, min: number, max: number): number {
  const value = /^\d{1,6}$/.test(text) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) throw new UserError(`${flag} takes a whole number from ${min} to ${max}, not ${JSON.stringify(text)}.`, { kind: 'bad-argument' });
  return value;
}

function retryOptions(opts: RetryFlags): RetryOptions {
  return {
    ...(opts.tries !== undefined ? { tries: wholeNumber('--tries', opts.tries, 1, 1000) } : {}),
    ...(opts.retryMs !== undefined ? { retryMs: wholeNumber('--retry-ms', opts.retryMs, 0, 60000) } : {}),
  };
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

function describe(u: CoreUpdate): string {
  const lines = [
    `${u.id}  ${u.state}${u.state === 'reverted' ? ' (module kept: tsplice unload)' : ''}${u.state === 'staged' ? (u.ownerPid ? ` (being staged by pid ${u.ownerPid})` : ' (left by a killed run: tsplice recover)') : ''}`
      + `${u.appliedAt ? `  applied ${u.appliedAt.toISOString()}` : ''}  attempts ${u.attempts}  pause ${u.pauseNs} ns  tasks ${u.tasks}`,
  ];
  // Each function with the module it is in, so an operator sees which module a fix is to.
  // A bound part is the function at its address (its name may be NAME#N, one of several).
  for (const f of u.functions) {
    const key = `${f.name} [${f.owner ?? 'vmlinux'}]`;
    const part = u.parts.find((p) => p.state === 'bound' && p.module === f.owner && p.oldAddress === f.oldAddress);
    lines.push(`  ${key}  ${hex(f.oldAddress)} -> ${hex(f.newAddress)} (${f.newOwner ?? 'vmlinux'})${part ? `  bound ${part.loads} time(s)` : ''}${part?.pinned ? ' (keeps the module loaded)' : ''}`);
  }
  // A module's functions while it is not loaded, or when the copy that loaded did not match.
  for (const p of u.parts.filter((p) => p.state !== 'bound')) {
    const why = p.state === 'refused' ? `not applied: ${p.diagnostic?.reason ?? 'refused'}${p.diagnostic?.fields['offset'] ? ` at +${p.diagnostic.fields['offset']}` : ''}` : 'waiting for the module to load';
    lines.push(`  ${p.name} [${p.module}]  ${why}`);
  }
  // The author's hooks, in the order they run, and how often each ran.
  for (const h of u.hooks) lines.push(`  hook ${h.kind} ${h.name}  ran ${h.runs} time(s)`);
  if (u.error) lines.push(`  last error: ${u.error}`);
  return lines.join('\n');
}

/**
 * The kernel's state is root's to read (/proc/tsplice is 0700): without root, "no updates"
 * would be a wrong answer, not a refusal.
 */
export function requireRoot(what: string): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new UserError(`tsplice ${what} needs root: the kernel's updates are visible and changeable only to root.`, { kind: 'not-root' });
  }
}

/** What the kernel holds (undefined: the core module is not loaded), read once, as root. */
async function kernelStatus(verb: string): Promise<CoreStatus | undefined> {
  requireRoot(verb);
  return CoreModule.isLoaded() ? new CoreModule().status() : undefined;
}

export function addApplyCommands(program: Command): void {
  program
    .command('apply')
    .description('apply an update to the running kernel (root): match, load, switch under stop_machine')
    .argument('<file>', 'an update made by tsplice create')
    .option('--tries <n>', 'stop_machine attempts while a task is inside the code (default 5)')
    .option('--retry-ms <ms>', 'milliseconds between attempts (default 1000)')
    .option('--json', 'print JSON')
    .action(async (file: string, opts: RetryFlags) => {
      requireRoot('apply');
      const retry = retryOptions(opts);
      const updateFile = readUpdateFile(file);
      const trust = checkTrust(updateFile, file);
      if (trust.warning) process.stderr.write(`${trust.warning}\n`);
      const result = await applyUpdate(updateFile.update, retry);
      if (opts.json) {
        printJson({
          id: result.id,
          module: result.module,
          functions: result.functions,
          waiting: result.core.parts.filter((p) => p.state !== 'bound').map((p) => ({ name: p.name, module: p.module })),
          attempts: result.core.attempts,
          pauseNs: result.core.pauseNs,
          stopMachineNs: result.core.callNs,
          tasks: result.core.tasks,
          matchMs: result.matchMs,
          stageMs: result.stageMs,
          ...(trust.signedBy ? { signedBy: trust.signedBy } : {}),
        });
        return;
      }
      process.stdout.write(`applied ${result.id}: ${result.functions.length} function(s), ${result.core.attempts} attempt(s), pause ${result.core.pauseNs} ns (${result.core.tasks} tasks checked)\n`);
      for (const f of result.functions) process.stdout.write(`  ${f.name}  ${hex(f.oldAddress)} -> ${hex(f.newAddress)}\n`);
      for (const p of result.core.parts.filter((p) => p.state !== 'bound')) process.stdout.write(`  ${p.name} [${p.module}]  waits for the module to load: patched as it loads\n`);
      process.stdout.write(`  matching ${result.matchMs.toFixed(0)} ms, loading and staging ${result.stageMs.toFixed(0)} ms\n`);
    });

  program
    .command('undo')
    .description('undo an applied update (root): switch back under stop_machine; its module stays loaded (see unload)')
    .argument('<id>', 'the update id (see tsplice list)')
    .option('--tries <n>', 'stop_machine attempts while a task is inside the new code (default 5)')
    .option('--retry-ms <ms>', 'milliseconds between attempts (default 1000)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: RetryFlags) => {
      requireRoot('undo');
      const result = await undoUpdate(id, retryOptions(opts));
      if (opts.json) printJson({ id, attempts: result.attempts, pauseNs: result.pauseNs, tasks: result.tasks, moduleKept: true });
      else process.stdout.write(`undone ${id}: ${result.attempts} attempt(s), pause ${result.pauseNs} ns; its module stays loaded until 'tsplice unload ${id}'\n`);
    });

  program
    .command('unload')
    .description('unload the module of an undone update (root), once no task is in its code; you vouch that nothing its new code registered (timers, callbacks) is still pending')
    .argument('<id>', 'the update id (see tsplice list)')
    .option('--tries <n>', 'stop_machine attempts while a task is inside its code (default 5)')
    .option('--retry-ms <ms>', 'milliseconds between attempts (default 1000)')
    .action(async (id: string, opts: RetryFlags) => {
      requireRoot('unload');
      await unloadUpdate(id, retryOptions(opts));
      process.stdout.write(`unloaded ${id}\n`);
    });

  program
    .command('recover')
    .description('clear what a killed tsplice run left (root): staged updates of exited runs, update modules no update names')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      requireRoot('recover');
      const done = await recover();
      if (opts.json) printJson(done);
      else if (done.dropped.length + done.unloaded.length === 0) process.stdout.write('nothing to recover\n');
      else {
        for (const id of done.dropped) process.stdout.write(`dropped staged update ${id}\n`);
        for (const name of done.unloaded) process.stdout.write(`unloaded module ${name}\n`);
      }
    });

  program
    .command('list')
    .description('the updates the running kernel holds (the kernel is the source of truth)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const status = await kernelStatus('list');
      const list = status?.updates ?? [];
      // Update modules no update names: left by a killed run, cleared by `tsplice recover`.
      const stray = strayUpdateModules(status);
      if (opts.json) printJson(list);
      else if (list.length === 0 && stray.length === 0) process.stdout.write('no updates\n');
      else for (const u of list) process.stdout.write(`${describe(u)}\n`);
      for (const name of stray) process.stderr.write(`module ${name} is loaded but no update names it (left by a killed run): 'tsplice recover' unloads it\n`);
    });

  program
    .command('show')
    .description('one update the running kernel holds')
    .argument('<id>', 'the update id')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const found = (await kernelStatus('show'))?.updates.find((u) => u.id === id);
      if (!found) throw new UserError(`The kernel has no update ${id}.`, { kind: 'no-such-update' });
      if (opts.json) printJson(found);
      else process.stdout.write(`${describe(found)}\n`);
    });
}
