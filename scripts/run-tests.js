#!/usr/bin/env node
// The test command's runner: Node's test runner over the compiled test files in dist/.
// Files run one at a time: kernel tests boot a guest each and share the machine's two cores.
//
//   node scripts/run-tests.js              every test (the lab kernel is fetched and prepared first)
//   node scripts/run-tests.js --unit       only the tests that need no kernel lab: the host's
//                                          compiler and tools, in seconds
//   node scripts/run-tests.js FILE.js ...  the named compiled test files
//
// It compiles first into an emptied dist/, so a test file that was deleted or moved cannot keep
// running from an old build.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { filesUnder } from './files.js';

// A test needs the lab when it boots the guest, uses a prepared kernel tree, or fetches from
// Debian's archive: it imports one of these (compiled) modules, directly or through others
// (a test may boot the guest through tools/lab/guest-script.js). qemu-process.js starts QEMU for
// both guests, the initramfs one (qemu.js) and the Debian disk (debian-guest.js).
const LAB_MODULES = ['dist/tools/lab/qemu.js', 'dist/tools/lab/qemu-process.js', 'dist/src/kbuild/tree.js', 'dist/src/debian/fetch.js', 'dist/src/debian/kernel-choice.js'];
const labImports = new Map();
function needsLab(file) {
  if (LAB_MODULES.includes(file)) return true;
  if (labImports.has(file)) return labImports.get(file);
  labImports.set(file, false); // an import cycle adds nothing
  const imports = [...readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)].map((m) => join(dirname(file), m[1]));
  const needs = imports.some((path) => needsLab(path));
  labImports.set(file, needs);
  return needs;
}

function step(argv) {
  const result = spawnSync(argv[0], argv.slice(1), { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const named = args.filter((a) => a !== '--unit');

rmSync('dist', { recursive: true, force: true });
step([process.execPath, 'node_modules/typescript/bin/tsc', '-p', 'tsconfig.json']);

const all = [...filesUnder('dist/src', '.test.js'), ...filesUnder('dist/tools', '.test.js')];
let files = named.length > 0 ? named : all;
if (unitOnly) files = files.filter((file) => !needsLab(file));
// Set-up the lab tests share: the lab kernel fetched and its tree prepared (this also installs the
// host packages the tests use: gcc, binutils, QEMU). A second run finds everything cached.
else if (named.length === 0) step([process.execPath, 'bin/tsplice.js', 'lab', 'prepare']);
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
