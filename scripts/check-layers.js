#!/usr/bin/env node
// The import rule that keeps the tree a pipeline (docs/design.md, "Folders"): run by `npm test`.
//
// - Libraries (host, elf, x86, debian) import only libraries listed before them.
// - A stage imports the libraries and the stages before it: patch → header-reach → kbuild →
//   diff → update → match → switch. Data flows one way.
// - The orchestrators (create, apply, release, upgrade) and cli/ may import any part of src/.
// - Nothing in src/ imports the harness (tools/): a target machine runs without it. Tests are the
//   one exception: a test beside the code may boot the lab (tools/lab) to test a kernel claim.
//
// Every relative import (static, `export … from`, or a literal dynamic import) is resolved to its
// file, so the rule sees folders, not spellings. Prints one line per violation and exits 1.
import { readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { filesUnder } from './files.js';

const ORDER = ['host', 'elf', 'x86', 'debian', 'patch', 'header-reach', 'kbuild', 'diff', 'update', 'match', 'switch'];
const LIBRARIES = new Set(['host', 'elf', 'x86', 'debian']);
const ANYTHING_IN_SRC = new Set(['create', 'apply', 'release', 'upgrade', 'cli']);

/** The folder of src/ or tools/ a file belongs to: 'elf', 'switch', 'tools', or undefined. */
function partOf(path) {
  const [top, folder] = path.split('/');
  if (top === 'tools') return 'tools';
  if (top === 'src') return folder;
  return undefined;
}

/** Why `from` may not import `to`, or undefined when it may. */
function violation(from, to, isTest) {
  const source = partOf(from);
  const target = partOf(to);
  if (source === undefined || source === 'tools' || target === undefined || source === target) return undefined;
  if (target === 'tools') return isTest ? undefined : 'nothing in src/ imports the harness (tools/)';
  if (ANYTHING_IN_SRC.has(source)) return undefined;
  if (ANYTHING_IN_SRC.has(target)) return `${source}/ may not import the orchestrator or CLI ${target}/`;
  const s = ORDER.indexOf(source);
  const t = ORDER.indexOf(target);
  if (s < 0) return `src/${source}/ is not in the layer list of scripts/check-layers.js`;
  if (t < 0) return `src/${target}/ is not in the layer list of scripts/check-layers.js`;
  if (LIBRARIES.has(source) && !LIBRARIES.has(target)) return `the library ${source}/ may not import the stage ${target}/`;
  if (t > s) return `${source}/ comes before ${target}/ in the pipeline and may not import it`;
  return undefined;
}

const IMPORT = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)'(\.{1,2}\/[^']+)'/g;
const problems = [];
for (const file of [...filesUnder('src', '.ts'), ...filesUnder('tools', '.ts')]) {
  const text = readFileSync(file, 'utf8');
  for (const match of text.matchAll(IMPORT)) {
    const target = normalize(join(dirname(file), match[1])).replace(/\.js$/, '.ts');
    const why = violation(file, relative('.', target), file.endsWith('.test.ts'));
    if (why === undefined) continue;
    const line = text.slice(0, match.index).split('\n').length;
    problems.push(`${file}:${line}: imports ${match[1]}: ${why}`);
  }
}
for (const problem of problems) process.stderr.write(`${problem}\n`);
process.exit(problems.length > 0 ? 1 : 0);
