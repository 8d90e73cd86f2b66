/**
 * upgrade's decisions against a kernel played by a map (the lab test, upgrade-lab.test.ts, does
 * it on a booted kernel): what it applies, skips, undoes; the record; the crash guard.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { UserError } from '../host/errors.js';
import { sampleManifest, sampleUpdate } from '../update/fixtures.js';
import { serializeUpdate, type UpdatePackage } from '../update/format.js';
import { moduleNameFor } from '../update/module.js';
import type { InstalledManifest } from '../update/installed-manifest.js';
import type { UpdateState } from '../switch/core-status.js';
import { BOOT_RUN_FILE, MARKER_FILE, readBootRun, writeMarker } from './crash-guard.js';
import { RECORD_FILE } from './applied-record.js';
import { upgrade, type KernelUpdates, type UpgradeOptions } from './upgrade.js';

const RELEASE = '6.1.0-47-amd64';
const BOOT = 'b0000000-0000-4000-8000-000000000001';

/** A kernel that holds what it is told and refuses what `refuse` names; it logs every call. */
class FakeKernel implements KernelUpdates {
  readonly states = new Map<string, UpdateState>();
  readonly calls: string[] = [];
  constructor(readonly refuse = new Set<string>()) {}
  held(): Promise<Map<string, UpdateState>> {
    return Promise.resolve(new Map(this.states));
  }
  apply(file: { update: { id: string } }): Promise<void> {
    const id = file.update.id;
    this.calls.push(`apply ${id}`);
    if (this.refuse.has(id)) return Promise.reject(new UserError(`busy: a task is inside ${id}'s functions.`, { kind: 'busy' }));
    this.states.set(id, 'applied');
    return Promise.resolve();
  }
  undo(id: string): Promise<void> {
    this.calls.push(`undo ${id}`);
    this.states.set(id, 'reverted');
    return Promise.resolve();
  }
  unload(id: string): Promise<void> {
    this.calls.push(`unload ${id}`);
    this.states.delete(id);
    return Promise.resolve();
  }
}

interface Installed {
  dir: string;
  state: string;
  keys: string;
  /** Installs a manifest of these updates (id, the id it is made on top of, the core module it carries). */
  install(updates: { id: string; onTopOf?: string; coreModule?: string }[]): InstalledManifest;
}

function installedRoot(): Installed {
  const root = mkdtempSync(join(tmpdir(), 'tsplice-upgrade-'));
  const dir = join(root, 'updates');
  const folder = join(dir, RELEASE);
  const installed: Installed = {
    dir,
    state: join(root, 'state'),
    keys: join(root, 'keys'),
    install(updates) {
      mkdirSync(folder, { recursive: true });
      const manifest: InstalledManifest = {
        ...sampleManifest(),
        files: [],
        updates: updates.map((u, i) => {
          const bytes = serializeUpdate({ ...updateWithId(u.id, u.onTopOf), ...(u.coreModule ? { coreModule: u.coreModule } : {}) });
          const file = `000${i + 1}-${u.id}.tsplice`;
          writeFileSync(join(folder, file), bytes);
          return { id: u.id, file, sha256: createHash('sha256').update(bytes).digest('hex'), sources: ['fs/proc/version.c'], modules: ['vmlinux'] };
        }),
      };
      writeFileSync(join(folder, 'manifest.json'), JSON.stringify(manifest));
      return manifest;
    },
  };
  mkdirSync(installed.keys);
  return installed;
}

/** The sample update under another id (its module's name follows the id). */
function updateWithId(id: string, onTopOf?: string): UpdatePackage {
  const sample = sampleUpdate();
  return { ...sample, id, ...(sample.module ? { module: { ...sample.module, name: moduleNameFor(id) } } : {}), ...(onTopOf ? { onTopOf } : {}) };
}

const run = (installed: Installed, kernel: KernelUpdates, extra: Partial<UpgradeOptions> = {}) => {
  const lines: string[] = [];
  const options: UpgradeOptions = { dir: installed.dir, release: RELEASE, bootId: BOOT, stateDir: installed.state, kernel, trustDir: installed.keys, log: (l) => lines.push(l), ...extra };
  return upgrade(options).then((summary) => ({ summary, lines }));
};

describe('tsplice upgrade', () => {
  it('applies in order what is not applied, then finds nothing to do', async () => {
    const installed = installedRoot();
    installed.install([{ id: 'fix-a' }, { id: 'fix-b' }]);
    const kernel = new FakeKernel();
    const first = await run(installed, kernel);
    assert.deepEqual(first.summary.applied, ['fix-a', 'fix-b']);
    assert.deepEqual(kernel.calls, ['apply fix-a', 'apply fix-b']);
    const record = JSON.parse(readFileSync(join(installed.state, RECORD_FILE), 'utf8')) as { bootId: string; applied: { id: string }[] };
    assert.deepEqual(record.applied.map((e) => e.id), ['fix-a', 'fix-b']);
    assert.equal(existsSync(join(installed.state, MARKER_FILE)), false, 'the marker is cleared at the end');
    const second = await run(installed, kernel);
    assert.deepEqual(second.summary.applied, []);
    assert.deepEqual(second.summary.alreadyApplied, ['fix-a', 'fix-b']);
    assert.equal(kernel.calls.length, 2);
  });

  it('goes on past a refused update, but skips one made on top of it', async () => {
    const installed = installedRoot();
    installed.install([{ id: 'fix-a' }, { id: 'fix-a2', onTopOf: 'fix-a' }, { id: 'fix-b' }]);
    const kernel = new FakeKernel(new Set(['fix-a']));
    const { summary } = await run(installed, kernel);
    assert.deepEqual(summary.applied, ['fix-b']);
    assert.deepEqual(summary.failed.map((f) => f.id), ['fix-a']);
    assert.match(summary.failed[0]?.reason ?? '', /busy/);
    assert.deepEqual(summary.skipped, [{ id: 'fix-a2', reason: 'it is made on top of fix-a, which was not applied' }]);
    assert.deepEqual(kernel.calls, ['apply fix-a', 'apply fix-b']);
  });

  it('gives an update without a core module the one the package\'s first update carries', async () => {
    const core = Buffer.from('the core module').toString('base64');
    const installed = installedRoot();
    installed.install([{ id: 'fix-a', coreModule: core }, { id: 'fix-b' }, { id: 'fix-c' }]);
    const carried = new Map<string, string | undefined>();
    const kernel = new (class extends FakeKernel {
      override apply(file: { update: { id: string; coreModule?: string } }): Promise<void> {
        carried.set(file.update.id, file.update.coreModule);
        return super.apply(file);
      }
    })(new Set(['fix-b']));
    // The first is applied already (this boot's earlier run): it is not applied again, and its
    // core module still reaches the others.
    kernel.states.set('fix-a', 'applied');
    const { summary } = await run(installed, kernel);
    assert.deepEqual(summary.applied, ['fix-c']);
    assert.deepEqual([...carried], [['fix-b', core], ['fix-c', core]]);
  });

  it('applies an update without a core module as it is when the first update has none to give', async () => {
    const installed = installedRoot();
    const manifest = installed.install([{ id: 'fix-a', coreModule: Buffer.from('core').toString('base64') }, { id: 'fix-b' }]);
    // The first file is damaged: it gives nothing, and is refused itself.
    writeFileSync(join(installed.dir, RELEASE, manifest.updates[0]?.file ?? ''), 'damaged');
    const carried: (string | undefined)[] = [];
    const kernel = new (class extends FakeKernel {
      override apply(file: { update: { id: string; coreModule?: string } }): Promise<void> {
        carried.push(file.update.coreModule);
        return super.apply(file);
      }
    })();
    const { summary } = await run(installed, kernel);
    assert.deepEqual(summary.failed.map((f) => f.id), ['fix-a']);
    assert.deepEqual(summary.applied, ['fix-b']);
    assert.deepEqual(carried, [undefined]);
  });

  it('refuses a file whose sha256 is not the manifest’s, and applies the others', async () => {
    const installed = installedRoot();
    const manifest = installed.install([{ id: 'fix-a' }, { id: 'fix-b' }]);
    writeFileSync(join(installed.dir, RELEASE, manifest.updates[0]?.file ?? ''), serializeUpdate({ ...updateWithId('fix-a'), createdAt: '2030-01-01T00:00:00.000Z' }));
    const kernel = new FakeKernel();
    const { summary } = await run(installed, kernel);
    assert.deepEqual(summary.applied, ['fix-b']);
    assert.match(summary.failed[0]?.reason ?? '', /its sha256 is [0-9a-f]{64}, but the manifest of tsplice-updates-6\.1\.0-47-amd64 says/);
  });

  it('undoes, newest first, what a newer package dropped, and never a hand-applied update', async () => {
    const installed = installedRoot();
    installed.install([{ id: 'fix-a' }, { id: 'fix-b' }, { id: 'fix-c' }]);
    const kernel = new FakeKernel();
    kernel.states.set('by-hand', 'applied');
    await run(installed, kernel);
    installed.install([{ id: 'fix-b' }]);
    const { summary } = await run(installed, kernel);
    assert.deepEqual(summary.undone, ['fix-c', 'fix-a']);
    assert.deepEqual(kernel.calls.slice(3), ['undo fix-c', 'unload fix-c', 'undo fix-a', 'unload fix-a']);
    assert.deepEqual([...kernel.states.keys()].sort(), ['by-hand', 'fix-b']);
    // withdraw (the package's prerm on remove): all upgrade applied, still not the hand-applied one
    const withdrawn = await run(installed, kernel, { withdraw: true });
    assert.deepEqual(withdrawn.summary.undone, ['fix-b']);
    assert.deepEqual([...kernel.states.keys()], ['by-hand']);
  });

  it('leaves an update undone by hand in this boot, and applies again one it undid itself', async () => {
    const installed = installedRoot();
    installed.install([{ id: 'fix-a' }]);
    const kernel = new FakeKernel();
    await run(installed, kernel);
    kernel.states.set('fix-a', 'reverted'); // tsplice undo fix-a
    const { summary } = await run(installed, kernel);
    assert.match(summary.skipped[0]?.reason ?? '', /undone by hand/);
    assert.equal(kernel.states.get('fix-a'), 'reverted');
  });

  it('at boot, skips everything after a boot that died while applying, and a run by hand clears it', async () => {
    const installed = installedRoot();
    installed.install([{ id: 'fix-a' }]);
    const kernel = new FakeKernel();
    writeMarker(installed.state, { bootId: 'dead-boot', update: 'fix-a', action: 'apply', since: '2026-12-05T17:00:00.000Z' });
    const boot = await run(installed, kernel, { boot: true });
    assert.equal(boot.summary.guard?.bootId, 'dead-boot');
    assert.deepEqual(kernel.calls, []);
    assert.match(boot.lines[0] ?? '', /boot dead-boot died while applying fix-a .* run 'tsplice upgrade' by hand/);
    const recorded = readBootRun(installed.state);
    assert.match(recorded?.note ?? '', /^skipped because boot dead-boot died while applying fix-a/);
    assert.equal(existsSync(join(installed.state, MARKER_FILE)), true, 'the guard stays until the operator acts');
    const byHand = await run(installed, kernel);
    assert.deepEqual(byHand.summary.applied, ['fix-a']);
    assert.equal(existsSync(join(installed.state, MARKER_FILE)), false);
    // The next boot applies again and records its run.
    const next = await run(installed, new FakeKernel(), { boot: true, bootId: 'next-boot' });
    assert.deepEqual(next.summary.applied, ['fix-a']);
    const nextRun = JSON.parse(readFileSync(join(installed.state, BOOT_RUN_FILE), 'utf8')) as { bootId: string; applied: string[] };
    assert.deepEqual([nextRun.bootId, nextRun.applied], ['next-boot', ['fix-a']]);
  });

  it('at boot, a marker of this boot (a killed run, not a dead kernel) does not stop it', async () => {
    const installed = installedRoot();
    installed.install([{ id: 'fix-a' }]);
    writeMarker(installed.state, { bootId: BOOT, update: 'fix-a', action: 'apply', since: '2026-12-05T17:00:00.000Z' });
    const { summary } = await run(installed, new FakeKernel(), { boot: true });
    assert.deepEqual(summary.applied, ['fix-a']);
  });

  it('writes the marker, durably, before the switch', async () => {
    const installed = installedRoot();
    installed.install([{ id: 'fix-a' }]);
    let seen: unknown;
    const kernel = new FakeKernel();
    const spy: KernelUpdates = { held: () => kernel.held(), undo: (id) => kernel.undo(id), unload: (id) => kernel.unload(id), apply: (f) => ((seen = JSON.parse(readFileSync(join(installed.state, MARKER_FILE), 'utf8'))), kernel.apply(f)) };
    await run(installed, spy);
    assert.deepEqual(seen, { bootId: BOOT, update: 'fix-a', action: 'apply', since: (seen as { since: string }).since });
  });
});
