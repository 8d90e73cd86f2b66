/**
 * `tsplice upgrade` and `tsplice withdraw`: bring the running kernel to what the installed
 * updates package for it ships. The kernel is the source of truth for what is applied; the
 * record (applied-record.ts) says only which of those upgrade applied, so that it undoes its
 * own work and never the operator's. In order:
 *
 * 1. At boot (`--boot`), a crash-guard marker of another boot stops the run (crash-guard.ts).
 * 2. Updates upgrade applied that the manifest no longer lists (a newer package dropped them,
 *    or none is installed) are undone newest first and unloaded.
 * 3. Every listed update the kernel does not hold applied is verified (the manifest's sha256,
 *    the file's own hash, its id, the trust policy) and applied, in the manifest's order.
 *
 * The kernel work is behind `KernelUpdates` (kernel-updates.ts does it for real with apply's
 * functions), so the decisions are tested without a kernel.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../host/errors.js';
import { checkTrust } from '../apply/trust.js';
import { parseUpdateFile, type UpdateFile } from '../update/format.js';
import { manifestFolder, readInstalledManifest, type InstalledManifest } from '../update/installed-manifest.js';
import type { UpdateState } from '../switch/core-status.js';
import { readAppliedRecord, writeAppliedRecord, type AppliedRecord } from './applied-record.js';
import { clearMarker, guardSentence, trippedGuard, writeBootRun, writeMarker, type ApplyingMarker } from './crash-guard.js';

/**
 * One upgrade or withdraw at a time (the boot-time run, apt's postinst, an operator): each
 * reads and rewrites the record. A lock of its own, beside apply's: every apply, undo and
 * unload inside the run takes apply's lock (/run/tsplice/lock) in turn.
 */
export const UPGRADE_LOCK_PATH = '/run/tsplice/upgrade.lock';

/** The kernel side of an upgrade: what it holds, and apply, undo, unload (each under the lock). */
export interface KernelUpdates {
  /** The state of each update the kernel holds, by id. */
  held(): Promise<Map<string, UpdateState>>;
  apply(file: UpdateFile): Promise<void>;
  undo(id: string): Promise<void>;
  unload(id: string): Promise<void>;
}

export interface UpgradeOptions {
  /** The folder of installed manifests (/usr/lib/tsplice/updates). */
  dir: string;
  /** The running kernel's release. */
  release: string;
  bootId: string;
  /** /var/lib/tsplice, or TSPLICE_STATE_DIR. */
  stateDir: string;
  kernel: KernelUpdates;
  /** Run at boot by tsplice.service: the crash guard applies, and the run is recorded. */
  boot?: boolean;
  /** Withdraw: undo everything upgrade applied, apply nothing (the package's prerm on remove). */
  withdraw?: boolean;
  /** Where the trusted keys are (default /etc/tsplice/keys). */
  trustDir?: string;
  /** One line of progress per update. */
  log: (line: string) => void;
  now?: () => Date;
}

export interface UpgradeSummary {
  kernel: string;
  /** The installed updates package, `name version`, when one is installed for this kernel. */
  package?: string;
  applied: string[];
  undone: string[];
  /** Listed and already applied: nothing to do. */
  alreadyApplied: string[];
  failed: { id: string; reason: string }[];
  skipped: { id: string; reason: string }[];
  /** The tripped crash guard that stopped a boot-time run. */
  guard?: ApplyingMarker;
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** The update file `entry` names, checked against the manifest and the trust policy. */
function verifiedFile(manifest: InstalledManifest, folder: string, id: string, trustDir: string | undefined, log: (line: string) => void): UpdateFile {
  const entry = manifest.updates.find((u) => u.id === id) as InstalledManifest['updates'][number];
  const path = join(folder, entry.file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new UserError(`Cannot read the update ${path}: ${messageOf(e)}.`, { kind: 'cannot-read', object: path, reason: messageOf(e) });
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== entry.sha256) {
    throw new UserError(`${path}: its sha256 is ${sha256}, but the manifest of ${manifest.package.name} says ${entry.sha256}: the file is damaged or was replaced.`, { kind: 'bad-update', object: path, reason: 'sha256 differs from the manifest' });
  }
  const file = parseUpdateFile(bytes, path);
  if (file.update.id !== id) throw new UserError(`${path}: it holds update ${file.update.id}, but the manifest lists it as ${id}.`, { kind: 'bad-update', object: path, reason: `holds update ${file.update.id}, not ${id}` });
  const trust = trustDir === undefined ? checkTrust(file, path) : checkTrust(file, path, trustDir);
  if (trust.warning) log(trust.warning);
  return file;
}

/** Undoes and unloads, newest first, the recorded updates `withdrawn` names. */
async function withdrawRecorded(options: UpgradeOptions, record: AppliedRecord, withdrawn: (id: string) => boolean, held: Map<string, UpdateState>, summary: UpgradeSummary): Promise<void> {
  const { kernel, stateDir, log, bootId } = options;
  const now = options.now ?? ((): Date => new Date());
  for (const entry of [...record.applied].reverse()) {
    if (!withdrawn(entry.id)) continue;
    try {
      if (held.get(entry.id) === 'applied') {
        writeMarker(stateDir, { bootId, update: entry.id, action: 'undo', since: now().toISOString() });
        await kernel.undo(entry.id);
        held.set(entry.id, 'reverted');
        entry.undone = true;
        writeAppliedRecord(stateDir, record);
      }
      await kernel.unload(entry.id);
      held.delete(entry.id);
      record.applied = record.applied.filter((e) => e !== entry);
      writeAppliedRecord(stateDir, record);
      summary.undone.push(entry.id);
      log(`undone and unloaded ${entry.id} (${entry.package} no longer ships it)`);
    } catch (e) {
      // The others are still tried: one the kernel refuses (a task in its code, an update
      // stacked on top) stays recorded and is tried again at the next upgrade.
      summary.failed.push({ id: entry.id, reason: messageOf(e) });
      log(`could not undo ${entry.id}: ${messageOf(e)}`);
    }
  }
}

/**
 * Applies the listed updates not applied yet, in order. An update the kernel refuses (busy,
 * no match) does not stop the others: each listed update is a fix of its own, made against the
 * kernel as booted, and leaving the rest of the security fixes out because one function was busy
 * would be the worse outcome. The exception is an update made on top of another (`onTopOf`):
 * its pre code is the other's post code, so without the other it cannot match, and trying
 * would only add a confusing second refusal; it is skipped, naming the one it needs.
 */
async function applyListed(options: UpgradeOptions, manifest: InstalledManifest, record: AppliedRecord, held: Map<string, UpdateState>, summary: UpgradeSummary): Promise<void> {
  const { kernel, stateDir, log, bootId } = options;
  const now = options.now ?? ((): Date => new Date());
  const folder = manifestFolder(options.dir, manifest.kernel);
  const notApplied = new Set<string>();
  // A release ships the core module once, in its first update (src/release/shipped-form.ts); an
  // update applied while the core module is not loaded takes it from there. Read when first
  // needed, verified like any update: a first update that cannot be read gives none, and each
  // update then says that it carries none.
  let packageCore: string | null | undefined; // undefined: not read yet; null: the package has none
  const firstCore = (): string | undefined => {
    const first = manifest.updates[0];
    try {
      return first === undefined ? undefined : verifiedFile(manifest, folder, first.id, options.trustDir, () => {}).update.coreModule;
    } catch {
      return undefined;
    }
  };
  const withPackageCore = (file: UpdateFile): UpdateFile => {
    if (file.update.coreModule !== undefined) return file;
    if (packageCore === undefined) packageCore = firstCore() ?? null;
    return packageCore === null ? file : { ...file, update: { ...file.update, coreModule: packageCore } };
  };
  for (const { id } of manifest.updates) {
    const state = held.get(id);
    const recorded = record.applied.find((e) => e.id === id);
    if (state === 'applied') {
      summary.alreadyApplied.push(id);
      continue;
    }
    // Undone by the operator (`tsplice undo`) in this boot: a rollback, respected until the
    // next boot. One upgrade itself undid (a package removed, then installed again) applies.
    if (state === 'reverted' && !recorded?.undone) {
      notApplied.add(id);
      summary.skipped.push({ id, reason: `undone by hand in this boot; 'tsplice apply' or the next boot applies it again` });
      log(`skipped ${id}: undone by hand in this boot`);
      continue;
    }
    let file: UpdateFile;
    try {
      file = verifiedFile(manifest, folder, id, options.trustDir, log);
      const base = file.update.onTopOf;
      if (base !== undefined && notApplied.has(base)) {
        notApplied.add(id);
        summary.skipped.push({ id, reason: `it is made on top of ${base}, which was not applied` });
        log(`skipped ${id}: it is made on top of ${base}, which was not applied`);
        continue;
      }
      writeMarker(stateDir, { bootId, update: id, action: 'apply', since: now().toISOString() });
      await kernel.apply(withPackageCore(file));
    } catch (e) {
      notApplied.add(id);
      summary.failed.push({ id, reason: messageOf(e) });
      log(`could not apply ${id}: ${messageOf(e)}`);
      continue;
    }
    held.set(id, 'applied');
    record.applied = [...record.applied.filter((e) => e.id !== id), { id, kernel: manifest.kernel, package: `${manifest.package.name} ${manifest.package.version}`, at: now().toISOString() }];
    writeAppliedRecord(stateDir, record);
    summary.applied.push(id);
    log(`applied ${id}`);
  }
}

/** One upgrade (or withdraw) run; see the file's comment. */
export async function upgrade(options: UpgradeOptions): Promise<UpgradeSummary> {
  const { release, stateDir, bootId, log } = options;
  const now = options.now ?? ((): Date => new Date());
  const started = now().toISOString();
  const summary: UpgradeSummary = { kernel: release, applied: [], undone: [], alreadyApplied: [], failed: [], skipped: [] };
  const finishBootRun = (note?: string): void => {
    if (!options.boot) return;
    const { applied, undone, failed, skipped, guard } = summary;
    writeBootRun(stateDir, { bootId, started, finished: now().toISOString(), applied, undone, failed, skipped, ...(guard ? { guard } : {}), ...(note ? { note } : {}) });
  };

  if (options.boot) {
    const guard = trippedGuard(stateDir, bootId);
    if (guard) {
      summary.guard = guard;
      log(`tsplice: ${guardSentence(guard)}`);
      finishBootRun(`skipped because ${guardSentence(guard)}`);
      return summary;
    }
  }
  let manifest: InstalledManifest | undefined;
  try {
    manifest = readInstalledManifest(options.dir, release);
    if (manifest) summary.package = `${manifest.package.name} ${manifest.package.version}`;
    const record = readAppliedRecord(stateDir, bootId);
    const held = await options.kernel.held();
    // Forget what the kernel no longer holds (unloaded by hand): nothing of it is left to undo.
    const kept = record.applied.filter((e) => held.has(e.id));
    if (kept.length !== record.applied.length) {
      record.applied = kept;
      writeAppliedRecord(stateDir, record);
    }
    const listed = new Set(options.withdraw ? [] : (manifest?.updates ?? []).map((u) => u.id));
    await withdrawRecorded(options, record, (id) => !listed.has(id), held, summary);
    if (manifest && !options.withdraw) await applyListed(options, manifest, record, held, summary);
  } catch (e) {
    finishBootRun(`stopped: ${messageOf(e)}`);
    throw e;
  } finally {
    // Reached only when the kernel survived every switch: the guard has served.
    clearMarker(stateDir);
  }
  finishBootRun(manifest ? undefined : `no updates package is installed for ${release}`);
  return summary;
}
