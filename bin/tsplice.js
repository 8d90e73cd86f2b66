#!/usr/bin/env node
// The installed entry point: the compiled CLI lives in dist/ (npm run build). The product's
// commands come from dist/src; the lab's (lab, demo) from dist/tools, where it is installed:
// a target machine that has only the product still runs every product command.
import { runProgram, tspliceProgram } from '../dist/src/cli/main.js';

let first = [];
try {
  ({ labCommands: first } = await import('../dist/tools/lab/cli.js'));
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('dist/tools/lab/cli.js')) throw error;
}
await runProgram(tspliceProgram(first), process.argv);
