/**
 * `tsplice peek FUNCTION`: the running bytes of a kernel function, found through
 * /proc/kallsyms and read through /proc/kcore — what run-pre matching sees.
 */
import type { Command } from 'commander';
import { Kcore } from '../match/kcore.js';
import { readKallsyms } from '../match/kallsyms.js';
import { printJson } from './output.js';

export function addPeekCommand(program: Command): void {
  program
    .command('peek')
    .description('print the running bytes of a kernel function (root; reads /proc/kallsyms and /proc/kcore)')
    .argument('<function>', 'function name as /proc/kallsyms spells it')
    .option('--module <name>', 'the loaded module the function is in (vmlinux for the kernel image; default: vmlinux, else the one module that has it)')
    .option('--length <bytes>', 'bytes to read (default: up to the next symbol, at most 4096)')
    .option('--json', 'print JSON')
    .action((name: string, opts: { module?: string; length?: string; json?: boolean }) => {
      const symbols = readKallsyms();
      const symbol = symbols.uniqueFunction(name, opts.module);
      const length = opts.length ? Number(opts.length) : Math.min(symbols.extent(symbol) || 64, 4096);
      const kcore = Kcore.open();
      try {
        const bytes = kcore.read(symbol.runningAddress, length);
        const hex = Buffer.from(bytes).toString('hex');
        if (opts.json) {
          printJson({ name, module: symbol.module ?? 'vmlinux', runningAddress: `0x${symbol.runningAddress.toString(16)}`, length, bytes: hex });
        } else {
          process.stdout.write(`${name}${symbol.module ? ` [${symbol.module}]` : ''} at 0x${symbol.runningAddress.toString(16)}, ${length} bytes:\n`);
          for (let i = 0; i < hex.length; i += 32) {
            process.stdout.write(`  +0x${(i / 2).toString(16).padStart(4, '0')}  ${hex.slice(i, i + 32).replace(/(..)/g, '$1 ').trim()}\n`);
          }
        }
      } finally {
        kcore.close();
      }
    });
}
