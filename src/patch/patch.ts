/**
 * Applying a maintainer's unified diff to copies of the files it touches, never to the tree.
 * GNU patch does the applying; its complaints are turned into a sentence naming the file and
 * the hunk that failed.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UserError } from '../host/errors.js';
import { probe } from '../host/exec.js';

/** The files a unified diff changes, as paths relative to the tree (`a/`/`b/` prefixes removed). */
export function filesInPatch(text: string, patchName: string): string[] {
  const files: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\+\+\+ (\S+)/.exec(line);
    if (!m?.[1]) continue;
    if (m[1] === '/dev/null') continue;
    const path = m[1].replace(/^b\//, '');
    if (!files.includes(path)) files.push(path);
  }
  if (files.length === 0) throw new UserError(`${patchName} is not a unified diff: it names no file ('+++ b/…' line).`, { kind: 'bad-patch', object: patchName });
  return files;
}

/**
 * Copies the touched files from `treeDir` into `workDir` (same relative paths) and applies
 * the patches there in order; returns the touched files.
 */
export function applyPatchesToCopies(treeDir: string, patches: string[], workDir: string, alreadyCopied: readonly string[] = []): string[] {
  const touched: string[] = [];
  const copied = new Set(alreadyCopied);
  for (const patchPath of patches) {
    if (!existsSync(patchPath)) throw new UserError(`The patch ${patchPath} does not exist.`, { kind: 'missing-file', object: patchPath });
    const text = readFileSync(patchPath, 'utf8');
    for (const file of filesInPatch(text, patchPath)) {
      if (touched.includes(file)) continue;
      touched.push(file);
      if (copied.has(file)) continue;
      const from = join(treeDir, file);
      const to = join(workDir, file);
      mkdirSync(dirname(to), { recursive: true });
      if (existsSync(from)) copyFileSync(from, to);
    }
    // GNU patch's exit status and output are the answer: which hunks of which file failed.
    const r = probe(['patch', '-p1', '--batch', '--forward', '--no-backup-if-mismatch', '-r', '-', '-d', workDir, '-i', resolve(patchPath)], { purpose: `applying ${patchPath}` });
    if (r.status !== 0) {
      const output = `${r.stdout}\n${r.stderr}`;
      let file = '';
      let failedFile: string | undefined;
      const failures: string[] = [];
      for (const line of output.split('\n')) {
        const f = /^patching file (\S+)/.exec(line);
        if (f?.[1]) file = f[1];
        const h = /^Hunk #(\d+) FAILED at (\d+)/.exec(line);
        if (h) {
          failures.push(`${file} hunk #${h[1]} (at line ${h[2]})`);
          failedFile ??= file;
        }
      }
      const missing = /can't find file to patch|No such file/.test(output);
      const reason =
        failures.length > 0
          ? `${failures.join(', ')} failed`
          : missing
            ? 'it patches a file the tree does not have'
            : output.trim().split('\n').slice(-3).join(' ');
      throw new UserError(`${patchPath} does not apply to this tree: ${reason}${failures.length > 0 || missing ? '.' : ''}`, {
        kind: 'patch-does-not-apply',
        object: patchPath,
        ...(failedFile ? { unit: failedFile } : {}),
        reason,
      });
    }
  }
  return touched;
}
