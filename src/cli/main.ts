/** The `tsplice` command line. Each command group lives in its own file. */
import { Command } from 'commander';
import { UserError } from '../errors.js';
import { FormatError } from '../elf/index.js';
import { addLabCommands } from './lab.js';
import { addDemoCommand } from './demo.js';
import { addPeekCommand } from './peek.js';
import { addDiffCommand } from './diff.js';
import { addCreateCommands } from './create.js';
import { addMatchCommand } from './match.js';
import { addApplyCommands } from './apply.js';

const program = new Command();
program
  .name('tsplice')
  .description('Rebootless updates for a running Linux kernel')
  .version('0.1.0')
  .showHelpAfterError();

addLabCommands(program);
addDemoCommand(program);
addPeekCommand(program);
addDiffCommand(program);
addCreateCommands(program);
addMatchCommand(program);
addApplyCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof UserError || error instanceof FormatError) {
    process.stderr.write(`tsplice: ${error.message}\n`);
    process.exitCode = error instanceof UserError ? error.exitCode : 1;
  } else {
    throw error;
  }
}
