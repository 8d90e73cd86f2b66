/**
 * Finding the units a changed header reaches, on the prepared 6.1.170 tree of the lab kernel
 * (no VM). The include graph is built once (about 2 to 8 s) and cached in the tsplice cache.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { projectRoot } from '../host/project.js';
import { preparedTree } from './tree.js';
import { buildStatus } from './build-status.js';
import { FORCED_INCLUDES, foldersToMirror, includedFrom, includeGraph, unitsIncluding, unitsReached, type IncludeGraph } from './includers.js';
import { buildPreObject } from './compile.js';
import { applyPatchesToCopies } from '../patch/patch.js';

const tree = preparedTree('6.1.0-47-amd64', '6.1.170-3');

/** The tree files kbuild's dependency record for `object` names (`deps_…` in its .cmd). */
function kbuildDeps(treeDir: string, cmdFile: string): string[] {
  const text = readFileSync(join(treeDir, cmdFile), 'utf8');
  const deps = /\ndeps_[^\n]*:= \\\n([\s\S]*?)\n\n/.exec(text)?.[1] ?? '';
  return deps
    .split('\n')
    .map((l) => l.trim().replace(/\s*\\$/, ''))
    .filter((f) => f && !f.startsWith('$(') && !f.startsWith('/'))
    .map((f) => posix.normalize(f));
}

describe('the units that include a header', { skip: tree ? false : 'the 6.1.0-47-amd64 tree is not prepared' }, () => {
  let graph: IncludeGraph;
  before(() => {
    graph = includeGraph(tree!);
  });

  it('fs/proc/internal.h: the built-in units of fs/proc that include it, as kbuild builds them', () => {
    const dir = tree!.dir;
    const grep = (pattern: string, glob: string): string[] =>
      spawnSync('sh', ['-c', `grep -l '${pattern}' ${glob}`], { cwd: dir, encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    // fs/proc_namespace.c includes it as "proc/internal.h".
    const including = [...grep('"internal.h"', 'fs/proc/*.c'), ...grep('"proc/internal.h"', 'fs/*.c')].sort();
    assert.ok(including.length > 20);
    const builtIn = including.filter((u) => buildStatus(dir, u) === 'built-in');
    // Reading assignments alone, fs/proc/Makefile's `proc-y := nommu.o task_nommu.o` looks
    // built-in; kbuild's `proc-$(CONFIG_MMU) := task_mmu.o` replaces it.
    const replaced = ['fs/proc/nommu.c', 'fs/proc/task_nommu.c'];
    const found = unitsIncluding(tree!, 'fs/proc/internal.h', { graph });
    assert.deepEqual(found.units, builtIn.filter((u) => !replaced.includes(u)));
    assert.deepEqual(found.skipped, replaced.map((unit) => ({ unit, status: 'not built' })));
    assert.ok(found.units.includes('fs/proc_namespace.c'));
  });

  it('a header included nowhere, or only by other architectures, gives no unit to rebuild', () => {
    assert.deepEqual(unitsIncluding(tree!, 'include/linux/cnt32_to_63.h', { graph }), { header: 'include/linux/cnt32_to_63.h', units: [], skipped: [] });
    assert.deepEqual(unitsIncluding(tree!, 'include/linux/fsl-diu-fb.h', { graph }).units, []);
    assert.deepEqual(unitsIncluding(tree!, 'include/linux/fsl-diu-fb.h', { graph }).skipped, [
      { unit: 'arch/powerpc/platforms/512x/mpc512x_shared.c', status: 'not built' },
      { unit: 'drivers/video/fbdev/fsl-diu-fb.c', status: 'not built' },
    ]);
    // A header the patch creates is in no unit of the tree yet.
    assert.deepEqual(unitsIncluding(tree!, 'fs/proc/new-by-patch.h', { graph }).units, []);
  });

  it('refuses a very common header, naming it and the number of units', () => {
    assert.throws(
      () => unitsIncluding(tree!, 'include/linux/kernel.h', { graph }),
      (e: Error) =>
        /^include\/linux\/kernel\.h is included by \d+ units built into vmlinux, more than the 40 that create rebuilds for a changed header\.$/.test(e.message) &&
        Number(/by (\d+) units/.exec(e.message)?.[1]) > 1000,
    );
    assert.throws(
      () => unitsIncluding(tree!, 'include/linux/compiler_attributes.h', { graph }),
      /^UserError: include\/linux\/compiler_attributes\.h is part of every unit of the kernel \(through kbuild's -include include\/linux\/compiler_types\.h\)/,
    );
  });

  it('the limit is settable', () => {
    assert.throws(
      () => unitsIncluding(tree!, 'fs/proc/internal.h', { graph, limit: 10 }),
      /^UserError: fs\/proc\/internal\.h is included by 24 units built into vmlinux, more than the 10 that create rebuilds for a changed header\.$/,
    );
  });

  it('the graph reaches every header kbuild recorded for the units compiled in the tree', async () => {
    await buildPreObject(tree!, 'fs/proc/version.c');
    const forced = new Set(FORCED_INCLUDES.flatMap((f) => [f, ...includedFrom(graph, f)]));
    const cmdFiles = ['fs/proc', 'kernel', 'kernel/time', 'kernel/cgroup'].flatMap((d) =>
      existsSync(join(tree!.dir, d)) ? readdirSync(join(tree!.dir, d)).filter((f) => /^\..*\.o\.cmd$/.test(f)).map((f) => `${d}/${f}`) : [],
    );
    assert.ok(cmdFiles.length > 0);
    for (const cmdFile of cmdFiles) {
      const unit = cmdFile.replace(/\/\.([^/]+)\.o\.cmd$/, '/$1.c');
      const reached = new Set([unit, ...includedFrom(graph, unit), ...forced]);
      const deps = kbuildDeps(tree!.dir, cmdFile).filter((d) => d.endsWith('.h'));
      assert.ok(deps.length > 100, cmdFile);
      assert.deepEqual(deps.filter((d) => !reached.has(d)), [], `${unit}: headers kbuild used that the graph misses`);
    }
  });
});

describe('the units a header change reaches', { skip: tree ? false : 'the 6.1.0-47-amd64 tree is not prepared' }, () => {
  let graph: IncludeGraph;
  const work = mkdtempSync(join(tmpdir(), 'tsplice-reach-'));
  before(() => {
    graph = includeGraph(tree!);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  /** The units a corpus patch's change to `header` reaches (its other files patched too). */
  function reachOf(patchName: string, header: string): ReturnType<typeof unitsReached> {
    const dir = join(work, patchName);
    const touched = applyPatchesToCopies(tree!.dir, [join(projectRoot(), 'test', 'corpus', 'patches', `${patchName}.patch`)], dir);
    const patched = new Map(touched.map((f) => [f, readFileSync(join(dir, f), 'latin1')]));
    return unitsReached(tree!, header, { graph, pre: readFileSync(join(tree!.dir, header), 'latin1'), post: patched.get(header) ?? '', patched });
  }

  it('include/linux/hugetlb.h: renamed functions reach the mm units that call them, of the 70 that include it', () => {
    const found = reachOf('mm-gup', 'include/linux/hugetlb.h');
    assert.deepEqual(found.changed, ['folio_isolate_hugetlb', 'folio_putback_hugetlb', 'get_huge_page_for_hwpoison', 'isolate_hugetlb', 'putback_active_hugepage']);
    assert.deepEqual(found.units, ['mm/gup.c', 'mm/hugetlb.c', 'mm/memory-failure.c', 'mm/memory_hotplug.c', 'mm/mempolicy.c', 'mm/migrate.c']);
    assert.deepEqual(found.reasons?.['mm/gup.c'], ['folio_isolate_hugetlb', 'isolate_hugetlb']);
    assert.ok((found.notReached ?? 0) > 50);
  });

  it('a changed trace event reaches its callers and the unit that defines CREATE_TRACE_POINTS', () => {
    const found = reachOf('kernel-time-hrtimer', 'include/trace/events/timer.h');
    assert.deepEqual(found.changed, ['*hrtimer_start*']);
    assert.ok(found.units.includes('kernel/time/hrtimer.c'));
    // timer.c instantiates the events of trace/events/timer.h.
    assert.ok(found.reasons?.['kernel/time/timer.c']?.includes('its trace events (the unit defines CREATE_TRACE_POINTS)'));
  });
});

describe('the folders a post compile mirrors', () => {
  /** An include graph of `edges` (includer -> included), as includeGraph builds it. */
  const graphOf = (edges: [string, string][]): IncludeGraph => {
    const files = [...new Set(edges.flat())].sort();
    const index = new Map(files.map((f, i) => [f, i]));
    const includes: number[][] = files.map(() => []);
    const includedBy: number[][] = files.map(() => []);
    for (const [from, to] of edges) {
      includes[index.get(from)!]!.push(index.get(to)!);
      includedBy[index.get(to)!]!.push(index.get(from)!);
    }
    return { files, index, includes, includedBy };
  };

  it('mirrors the folder of an include-root header that reaches a changed header by a quoted path', () => {
    // <trace/events/sof_intel.h> includes "../../../sound/soc/sof/sof-audio.h", which includes
    // "sof-priv.h": found in the tree's include/, the chain would bring the old sof-priv.h.
    const graph = graphOf([
      ['sound/soc/sof/intel/hda-ipc.c', 'include/trace/events/sof_intel.h'],
      ['include/trace/events/sof_intel.h', 'sound/soc/sof/sof-audio.h'],
      ['sound/soc/sof/sof-audio.h', 'sound/soc/sof/sof-priv.h'],
      ['sound/soc/sof/intel/hda.h', 'sound/soc/sof/sof-priv.h'],
      ['kernel/fork.c', 'include/linux/sched.h'],
    ]);
    assert.deepEqual(foldersToMirror(graph, ['sound/soc/sof/sof-priv.h']), ['include/trace/events', 'sound/soc/sof', 'sound/soc/sof/intel']);
    // A header under an include root is found through -I: its own folder is enough.
    assert.deepEqual(foldersToMirror(graph, ['include/linux/sched.h']), ['include/linux']);
  });
});
