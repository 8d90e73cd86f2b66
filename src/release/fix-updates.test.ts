import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { UserError } from '../host/errors.js';
import type { PreparedTree } from '../kbuild/tree.js';
import type { UpdatePackage } from '../update/format.js';
import { makeFixUpdates, type FixFile, type FixResult } from './fix-updates.js';
import { fileOutcome } from './release-manifest.js';

const work = mkdtempSync(join(tmpdir(), 'tsplice-fix-updates-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** One file's patch, as derive.ts writes it. */
function fix(file: string, lines: string): FixFile {
  const patch = join(work, `${file.replace(/\W/g, '-')}.patch`);
  writeFileSync(patch, `# tsplice corpus: ${file}\n--- a/${file}\n+++ b/${file}\n@@ -1 +1,2 @@\n ${file}\n${lines}\n`);
  return { file, unit: file, patch };
}

/** The files a patch changes, from its +++ lines. */
const filesOf = (patch: string): string[] => [...readFileSync(patch, 'utf8').matchAll(/^\+\+\+ b\/(\S+)/gm)].map((m) => m[1] as string);

/** An update as create would make it of `patch`: its id from the files, and the globals it calls. */
function update(patch: string, calls: string[] = []): UpdatePackage {
  const files = filesOf(patch);
  return { id: files.join('+').replace(/\W/g, '-'), functions: files.map((f) => ({ name: `f_${f}`, unit: f })), module: { externals: calls.map((name) => ({ name, local: false })) } } as unknown as UpdatePackage;
}

const tree = { release: 'r', sourceVersion: 'v', dir: work, makeVariables: [] } as PreparedTree;
const base = { tree, headersDir: work, distributionVersion: 'v', jobs: 2, workDir: work };

describe('makeFixUpdates', () => {
  it('groups a file with the unit create says must change too, and the later file rides along', async () => {
    const files = [fix('mm/gup.c', '+\tfolio_isolate(page);'), fix('mm/migrate.c', '+\tfolio_isolate(p);')];
    const create = async (patch: string): Promise<UpdatePackage> => {
      if (filesOf(patch).length === 1) throw new UserError('mm/migrate.c must change too.', { kind: 'unit-must-change', unit: 'mm/migrate.c' });
      return update(patch);
    };
    const results = await makeFixUpdates({ ...base, files, create });
    const [first, second] = results as [FixResult, FixResult];
    assert.equal(first.outcome, 'created');
    assert.deepEqual(first.outcome === 'created' && first.group, ['mm/gup.c', 'mm/migrate.c']);
    assert.deepEqual(second, { file: 'mm/migrate.c', outcome: 'carried', carriedBy: 'mm/gup.c' });
    assert.deepEqual(fileOutcome(second, 'mm-gup-c-mm-migrate-c'), { path: 'mm/migrate.c', outcome: 'live', update: 'mm-gup-c-mm-migrate-c', reason: 'in the update of mm/gup.c' });
  });

  it('takes in the file that adds a function the new code calls; a file only adding it is carried', async () => {
    const files = [fix('fs/notify/fsnotify.c', '+int fsnotify_helper(void)'), fix('fs/notify/mark.c', '+\tfsnotify_helper();')];
    const create = async (patch: string): Promise<UpdatePackage> => {
      const changed = filesOf(patch);
      if (changed.length === 1 && changed[0] === 'fs/notify/fsnotify.c') throw new UserError('only adds fsnotify_helper', { kind: 'only-new-functions' });
      return update(patch, changed.includes('fs/notify/fsnotify.c') ? [] : ['fsnotify_helper']);
    };
    const seen: string[] = [];
    const results = await makeFixUpdates({ ...base, files, create, onResult: (r) => seen.push(`${r.file}:${r.outcome}`) });
    assert.equal(results[1]?.outcome, 'created');
    assert.deepEqual(results[1]?.outcome === 'created' && results[1].group, ['fs/notify/mark.c', 'fs/notify/fsnotify.c']);
    assert.equal(results[0]?.outcome, 'carried');
    // The file only adding functions is decided last, when every group is known.
    assert.deepEqual(seen, ['fs/notify/mark.c:created', 'fs/notify/fsnotify.c:carried']);
  });

  it('counts a file adding a function nothing calls as changing no code', async () => {
    const files = [fix('net/ipv4/udp_tunnel_core.c', '+int udp_tunnel_dst_lookup(void)')];
    const create = async (): Promise<UpdatePackage> => {
      throw new UserError('only adds udp_tunnel_dst_lookup', { kind: 'only-new-functions' });
    };
    const [result] = await makeFixUpdates({ ...base, files, create });
    assert.equal(result?.outcome === 'refused' && result.changesCode, false);
    assert.deepEqual(result && fileOutcome(result), { path: 'net/ipv4/udp_tunnel_core.c', outcome: 'no-code-change', reason: 'only adds functions nothing calls' });
  });

  it('makes a fix that needs new code from its adapted patch, and says why when there is none', async () => {
    const adapted = join(work, 'adapted');
    mkdirSync(adapted, { recursive: true });
    const exit = fix('kernel/exit.c', '+\ttsk->flag = 1;');
    writeFileSync(join(adapted, 'kernel-exit-c.patch'), readFileSync(exit.patch, 'utf8').replace('+\ttsk->flag = 1;', '+\t*tsplice_shadow_get_or_alloc(tsk, 1, 4, GFP_ATOMIC) = 1;'));
    const fork = fix('kernel/fork.c', '+\ttsk->flag = 0;');
    const audit = fix('kernel/audit.c', '+\tint x;');
    writeFileSync(join(adapted, 'kernel-audit-c.not-live.md'), '# kernel/audit.c — the table is sized at boot\n');
    const create = async (patch: string): Promise<UpdatePackage> => {
      if (patch.startsWith(adapted)) return update(patch);
      throw new UserError('task_struct grew', { kind: 'layout-change', unit: filesOf(patch)[0] as string, section: '.debug_info' });
    };
    const [fromAdapted, noAdapted, notLive] = await makeFixUpdates({ ...base, files: [exit, fork, audit], create, adaptedDir: adapted });
    assert.equal(fromAdapted?.outcome, 'created');
    assert.deepEqual(fromAdapted?.outcome === 'created' && fromAdapted.adapted, { patch: join(adapted, 'kernel-exit-c.patch'), newLines: 1 });
    assert.equal(fromAdapted?.outcome === 'created' && fromAdapted.refusedAlone, 'task_struct grew');
    assert.deepEqual(noAdapted && fileOutcome(noAdapted), { path: 'kernel/fork.c', outcome: 'needs-new-code', reason: 'layout change: kernel/fork.c: task_struct grew' });
    assert.deepEqual(notLive && fileOutcome(notLive), { path: 'kernel/audit.c', outcome: 'needs-reboot', reason: 'cannot be made safe live: the table is sized at boot' });
  });

  it('says a fix needs a reboot when no new code answers its refusal', async () => {
    const files = [fix('include/linux/fwnode.h', '+\tint y;')];
    const create = async (): Promise<UpdatePackage> => {
      throw new UserError('The patch cannot be made into a safe update:\n  include/linux/fwnode.h: included by 1500 units', { kind: 'too-many-units', unit: 'include/linux/fwnode.h', reason: 'included by 1500 built-in units, more than 40' });
    };
    const [result] = await makeFixUpdates({ ...base, files, create });
    assert.deepEqual(result && fileOutcome(result), { path: 'include/linux/fwnode.h', outcome: 'needs-reboot', reason: 'header change: too many units include it: include/linux/fwnode.h: included by 1500 built-in units, more than 40' });
  });
});
