/**
 * Where this project's files are at run time: the folder holding package.json, found from this
 * file's compiled position (dist/src/host/project.js), so the tool works from any working folder.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding package.json: three levels above dist/src/host/. */
export function projectRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}
