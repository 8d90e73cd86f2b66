/**
 * The `tsplice` command line. Each command group lives in its own file; bin/tsplice.js builds
 * the program, lets the lab (tools/lab, when it is installed) add its commands first, and runs it.
 */
import { Command } from 'commander';
import { UserError, diagnosticJson } from '../host/errors.js';
import { addPeekCommand } from './peek.js';
import { addDiffCommand } from './diff.js';
import { addCreateCommands } from './create.js';
import { addMatchCommand } from './match.js';
import { addApplyCommands } from './apply.js';
import { addReleaseCommand } from './release.js';
import { addUpgradeCommands } from './upgrade.js';
import { printJson } from './output.js';

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
  addReleaseCommand(program);
  addUpgradeCommands(program);
  return program;
}

/** A failure as `--json` prints it: the diagnostic's fields, the sentence, and any further problems. */
export function errorJson(error: UserError): object {
  const [, ...more] = error.diagnostics;
  return {
    error: {
      ...diagnosticJson(error.diagnostic),
      message: error.message,
      ...(more.length > 0 ? { more: more.map(diagnosticJson) } : {}),
    },
  };
}

/**
 * Runs the program. A refusal is one sentence on stderr and its exit code, never a stack
 * trace; with --json the command also prints it as data on stdout ({"error": {kind, ...}}),
 * and with --verbose the whole story (a failed command line and its output) follows the
 * sentence on stderr.
 */
export async function runProgram(program: Command, argv: readonly string[]): Promise<void> {
  let json = false;
  let verbose = false;
  program.hook('preAction', (_program, action) => {
    const opts = action.opts<{ json?: unknown; verbose?: unknown }>();
    json = opts.json === true;
    verbose = opts.verbose === true;
  });
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    process.stderr.write(`tsplice: ${error.message}\n`);
    if (verbose && error.details !== undefined) process.stderr.write(`${error.details}\n`);
    if (json) printJson(errorJson(error));
    process.exitCode = error.exitCode;
  }
}
