/** The lab's command groups, added to the `tsplice` program by bin/tsplice.js. */
import type { AddCommands } from '../../src/cli/main.js';
import { addLabCommands } from './commands.js';
import { addDemoCommand } from './demo.js';

export const labCommands: readonly AddCommands[] = [addLabCommands, addDemoCommand];
