/**
 * `tsplice match FILE`: run-pre matching alone, as `apply` does it first — whether the running
 * kernel is the one the update was made for, where each function to replace is, and what the
 * pre code's references resolve to. Changes nothing.
 */
import type { Command } from 'commander';
import { checkRunningKernel, loadedPart, matchRunning, proveOnDisk, runningModuleFiles } from '../apply/apply.js';
import { readLoadedModules } from '../match/loaded-modules.js';
import { readKallsyms } from '../match/kallsyms.js';
import { readUpdate } from '../update/format.js';
import { printJson } from './output.js';

export function addMatchCommand(program: Command): void {
  program
    .command('match')
    .description('check an update against the running kernel (root): run-pre matching only, nothing is changed')
    .argument('<file>', 'an update made by tsplice create')
    .option('--json', 'print JSON')
    .action((file: string, opts: { json?: boolean }) => {
      const update = readUpdate(file);
      checkRunningKernel(update);
      const started = process.hrtime.bigint();
      // A module that is not loaded is proven against its file, as apply does.
      const loaded = readLoadedModules();
      proveOnDisk(update, loaded, runningModuleFiles());
      const result = matchRunning(loadedPart(update, loaded), readKallsyms());
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (opts.json) {
        printJson({ id: update.id, matchMs: ms, functions: result.functions, learned: [...result.learned.values()] });
        return;
      }
      process.stdout.write(`${update.id}: the running kernel matches (${ms.toFixed(0)} ms)\n`);
      for (const f of result.functions) {
        process.stdout.write(`  ${f.name} at 0x${f.runningAddress.toString(16)} (${f.size} bytes)${f.traced ? ', traced by ftrace' : ''}\n`);
      }
      process.stdout.write(`  ${result.learned.size} symbols resolved\n`);
    });
}
