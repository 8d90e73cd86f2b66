#!/usr/bin/env node
// The test command's runner: Node's test runner over the compiled test files in dist/.
// Files run one at a time: kernel tests boot a guest each and share the machine's two cores.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function testFiles(dir) {
  const found = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...testFiles(path));
    else if (entry.endsWith('.test.js')) found.push(path);
  }
  return found.sort();
}

const only = process.argv.slice(2);

// Set-up the tests share: the lab kernel fetched and its tree prepared (this also installs the
// host packages the tests use: gcc, binutils, QEMU). A second run finds everything cached.
if (only.length === 0) {
  const setup = spawnSync(process.execPath, ['bin/tsplice.js', 'lab', 'prepare'], { stdio: 'inherit' });
  if (setup.status !== 0) process.exit(setup.status ?? 1);
}
const files = only.length > 0 ? only : testFiles('dist/src');
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
