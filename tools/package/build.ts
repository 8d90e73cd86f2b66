/**
 * `npm run package:deb [-- --out DIR]`: builds tsplice_<version>_amd64.deb from this repository
 * (compiled first by the npm script) into DIR (default: dist/packages) and prints its path.
 */
import { join } from 'node:path';
import { projectRoot } from '../../src/host/project.js';
import { UserError } from '../../src/host/errors.js';
import { buildTsplicePackage } from './tsplice-deb.js';

const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
const out = outAt >= 0 ? args[outAt + 1] : join(projectRoot(), 'dist', 'packages');
try {
  if (out === undefined) throw new UserError('--out takes a folder.', { kind: 'bad-argument' });
  process.stdout.write(`${await buildTsplicePackage(out)}\n`);
} catch (error) {
  if (!(error instanceof UserError)) throw error;
  process.stderr.write(`tsplice package: ${error.message}\n`);
  process.exitCode = 1;
}
