// The files below a folder whose names end in a suffix, sorted: what the test and lint scripts walk.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export function filesUnder(dir, suffix) {
  const found = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...filesUnder(path, suffix));
    else if (entry.endsWith(suffix)) found.push(path);
  }
  return found.sort();
}
