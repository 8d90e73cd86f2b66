/**
 * `tsplice diff PRE.o POST.o`: the differencing step alone, for maintainers to see what a
 * change does to the code. Exit status is non-zero exactly when the pair cannot be made into
 * a safe update (something refused, or no code change left).
 */
import type { Command } from 'commander';
import { DiffObject } from '../diff/object.js';
import { diffObjects, diffReport } from '../diff/pipeline.js';
import { printJson } from './output.js';

export function addDiffCommand(program: Command): void {
  program
    .command('diff')
    .description('compare two x86-64 relocatable objects (pre and post) function by function')
    .argument('<pre>', 'object compiled from the unpatched source')
    .argument('<post>', 'object compiled from the patched source')
    .option('--json', 'print JSON')
    .action((prePath: string, postPath: string, opts: { json?: boolean }) => {
      const state = diffObjects(DiffObject.load(prePath), DiffObject.load(postPath));
      const report = diffReport(state);
      if (opts.json) {
        printJson(report);
      } else {
        for (const f of state.functions) process.stdout.write(`${f.status.padEnd(8)} ${f.name}${f.why ? `  (${f.why})` : ''}\n`);
        for (const d of report.data) process.stdout.write(`new data ${d.name}\n`);
        for (const name of report.lineNumbersOnly) process.stdout.write(`same     ${name}  (line numbers only)\n`);
        for (const r of report.refused) process.stdout.write(`REFUSED  ${r.symbol} in ${r.section}: ${r.reason}\n`);
        if (report.functions.length === 0 && report.refused.length === 0) {
          process.stdout.write(
            report.lineNumbersOnly.length > 0
              ? `no code change: ${report.lineNumbersOnly.length} function(s) differ in line numbers only\n`
              : 'no code change\n',
          );
        }
      }
      if (!report.ok) process.exitCode = 1;
    });
}
