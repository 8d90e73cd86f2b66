/**
 * Applying a corpus patch (or some hunks of a header diff) to copies of the old tree's files
 * with GNU patch, the program `tsplice create` applies patches with (src/patch/patch.ts), so
 * what the corpus compiles is what create will see. Fuzz is off and any offset counts as a
 * problem: a stored patch must apply exactly where it says.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface PatchOutcome {
  /** Applied with no failure, no fuzz and no offset. */
  clean: boolean;
  /** What patch said about each hunk that did not apply exactly (empty when clean). */
  problems: string[];
  /** The patched files' text, by tree path (only when not a dry run and clean). */
  texts: Map<string, string>;
}

/** The files a unified diff writes (`+++ b/PATH`), in order. */
function targets(patchText: string): string[] {
  const files: string[] = [];
  for (const m of patchText.matchAll(/^\+\+\+ b\/(\S+)/gm)) if (m[1] && !files.includes(m[1])) files.push(m[1]);
  return files;
}

/**
 * Applies `patchText` (-p1) to copies of its files from `oldDir`, in a scratch folder, with
 * fuzz 0; reports whether every hunk applied at its stated line.
 */
export function applyToCopies(oldDir: string, patchText: string, dryRun = false): PatchOutcome {
  const work = mkdtempSync(join(tmpdir(), 'tsplice-hunks-'));
  try {
    const files = targets(patchText);
    for (const file of files) {
      if (!existsSync(join(oldDir, file))) continue;
      mkdirSync(dirname(join(work, file)), { recursive: true });
      copyFileSync(join(oldDir, file), join(work, file));
    }
    writeFileSync(join(work, '.patch'), patchText);
    const args = ['-p1', '--batch', '--forward', '--fuzz=0', '--no-backup-if-mismatch', '-r', '-', '-d', work, '-i', join(work, '.patch')];
    const r = spawnSync('patch', dryRun ? ['--dry-run', ...args] : args, { encoding: 'utf8' });
    if (r.error) throw new Error(`patch could not run: ${r.error.message}`);
    const output = `${r.stdout}\n${r.stderr}`;
    const problems = output.split('\n').filter((l) => /offset|fuzz|FAILED|failed|Reversed|malformed|can't find|Only garbage/i.test(l));
    if (r.status !== 0 && problems.length === 0) problems.push(output.trim() || `patch exited with ${r.status}`);
    const clean = problems.length === 0;
    const texts = new Map<string, string>();
    if (clean && !dryRun) for (const file of files) if (existsSync(join(work, file))) texts.set(file, readFileSync(join(work, file), 'utf8'));
    return { clean, problems, texts };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
