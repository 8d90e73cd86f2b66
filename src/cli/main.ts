/**
 * The `tsplice` command line. Each command group lives in its own file; bin/tsplice.js builds
 * the program, lets the lab (tools/lab, when it is installed) add its commands first, and runs it.
 */
import { Command } from 'commander';
import { UserError } from '../host/errors.js';
import { FormatError } from '../elf/index.js';
import { addPeekCommand } from './peek.js';
import { addDiffCommand } from './diff.js';
import { addCreateCommands } from './create.js';
import { addMatchCommand } from './match.js';
import { addApplyCommands } from './apply.js';

/** Adds a group of commands: the product's own, or the lab's from outside src/. */
export type AddCommands = (program: Command) => void;

/** The program with the product's commands, after any `first` groups (so help lists them first). */
export function tspliceProgram(first: readonly AddCommands[] = []): Command {
  const program = new Command();
  program
    .name('tsplice')
    .description('Rebootless updates for a running Linux kernel')
    .version('0.1.0')
    .showHelpAfterError();
  for (const add of first) add(program);
  addPeekCommand(program);
  addDiffCommand(program);
  addCreateCommands(program);
  addMatchCommand(program);
  addApplyCommands(program);
  return program;
}

/** Runs the program; a refusal is one line on stderr and its exit code, never a stack trace. */
export async function runProgram(program: Command, argv: readonly string[]): Promise<void> {
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (error instanceof UserError || error instanceof FormatError) {
      process.stderr.write(`tsplice: ${error.message}\n`);
      process.exitCode = error instanceof UserError ? error.exitCode : 1;
    } else {
      throw error;
    }
  }
}
