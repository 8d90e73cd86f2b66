/**
 * `tsplice status` and `tsplice uname`: the running kernel, the installed updates package for it,
 * what of it the kernel holds (the kernel is the source of truth), the effective version, what
 * the package could not fix live, the last boot-time run and the crash guard. Built from values
 * read by the caller, so the assembly is tested without a kernel.
 */
import type { CoreStatus, CoreUpdate } from '../switch/core-status.js';
import type { FileOutcome, InstalledManifest } from '../update/installed-manifest.js';
import type { AppliedRecord } from './applied-record.js';
import { guardSentence, type ApplyingMarker, type BootRun } from './crash-guard.js';
import { debianVersionOf, effectiveVersion, type EffectiveVersion, type HeldUpdate } from './effective-version.js';

export type PackagedUpdateState = 'applied' | 'waiting' | 'not applied' | 'reverted' | 'staged' | 'refused in part';

export interface PackagedUpdate {
  id: string;
  file: string;
  sources: string[];
  state: PackagedUpdateState;
  /** Parts waiting for their module to load (`name [module]`). */
  waiting: string[];
  refused: string[];
  /** Applied by `tsplice upgrade` in this boot (else by hand, or not applied). */
  byUpgrade: boolean;
}

export interface TspliceStatus {
  kernel: { release: string; version: string; debianVersion?: string };
  effective: EffectiveVersion;
  package?: { name: string; version: string; from: string; to: string };
  updates: PackagedUpdate[];
  /** Files of the package's version step not fixed live, with the release's reasons. */
  notApplicable: { path: string; outcome: Exclude<FileOutcome, 'live' | 'no-code-change'>; reason?: string }[];
  /** Updates the kernel holds that the package does not ship (applied by hand). */
  others: { id: string; state: string }[];
  lastBootRun?: BootRun;
  /** A marker of another boot: that boot died while switching, and boot-time runs apply nothing. */
  crashGuard?: ApplyingMarker & { message: string };
}

export interface StatusInputs {
  release: string;
  /** /proc/version's text. */
  procVersion: string;
  /** uname -v. */
  versionLine: string;
  manifest: InstalledManifest | undefined;
  /** What the kernel holds (undefined: the core module is not loaded: nothing). */
  core: CoreStatus | undefined;
  record: AppliedRecord;
  bootId: string;
  marker: ApplyingMarker | undefined;
  lastBootRun: BootRun | undefined;
}

const partName = (p: { name: string; module: string }): string => `${p.name} [${p.module}]`;

export function heldUpdate(u: CoreUpdate): HeldUpdate {
  return {
    state: u.state,
    waiting: u.parts.filter((p) => p.state === 'waiting').map(partName),
    refused: u.parts.filter((p) => p.state === 'refused').map((p) => `${partName(p)}: ${p.diagnostic?.reason ?? p.error ?? 'refused'}`),
  };
}

function stateOf(held: HeldUpdate | undefined): PackagedUpdateState {
  if (!held) return 'not applied';
  if (held.state !== 'applied') return held.state;
  if (held.refused.length > 0) return 'refused in part';
  return held.waiting.length > 0 ? 'waiting' : 'applied';
}

export function tspliceStatus(inputs: StatusInputs): TspliceStatus {
  const { manifest } = inputs;
  const held = new Map((inputs.core?.updates ?? []).map((u) => [u.id, heldUpdate(u)]));
  const debianVersion = debianVersionOf(inputs.procVersion);
  const listed = new Set((manifest?.updates ?? []).map((u) => u.id));
  const byUpgrade = new Set(inputs.record.applied.filter((e) => !e.undone).map((e) => e.id));
  const marker = inputs.marker && inputs.marker.bootId !== inputs.bootId ? inputs.marker : undefined;
  return {
    kernel: { release: inputs.release, version: inputs.versionLine, ...(debianVersion ? { debianVersion } : {}) },
    effective: effectiveVersion(manifest, debianVersion, held),
    ...(manifest ? { package: { ...manifest.package, from: manifest.from, to: manifest.to } } : {}),
    updates: (manifest?.updates ?? []).map((u) => {
      const h = held.get(u.id);
      return { id: u.id, file: u.file, sources: u.sources, state: stateOf(h), waiting: h?.waiting ?? [], refused: h?.refused ?? [], byUpgrade: byUpgrade.has(u.id) && h?.state === 'applied' };
    }),
    // A change of no code that runs (a comment, code nothing calls) needs neither an update nor a reboot.
    notApplicable: (manifest?.files ?? []).flatMap((f) => (f.outcome === 'live' || f.outcome === 'no-code-change' ? [] : [{ path: f.path, outcome: f.outcome, ...(f.reason !== undefined ? { reason: f.reason } : {}) }])),
    others: (inputs.core?.updates ?? []).filter((u) => !listed.has(u.id)).map((u) => ({ id: u.id, state: u.state })),
    ...(inputs.lastBootRun ? { lastBootRun: inputs.lastBootRun } : {}),
    ...(marker ? { crashGuard: { ...marker, message: guardSentence(marker) } } : {}),
  };
}

/** The status for people: a few lines, the most important first. */
export function statusText(s: TspliceStatus): string {
  const lines: string[] = [];
  lines.push(`kernel ${s.kernel.release}, ${s.kernel.debianVersion ? `built as Debian ${s.kernel.debianVersion}` : 'not a Debian build (no Debian version in /proc/version)'}`);
  if (s.crashGuard) lines.push(`CRASH GUARD: ${s.crashGuard.message}`);
  if (!s.package) lines.push('no updates package is installed for this kernel');
  else lines.push(`package ${s.package.name} ${s.package.version}: Debian ${s.package.from} -> ${s.package.to}`);
  const e = s.effective;
  lines.push(e.raised ? `effective version Debian ${e.effective ?? ''} (every update the package ships is in force)` : `effective version ${e.effective ? `Debian ${e.effective}` : 'unknown'}${e.missing.length > 0 ? ` (not raised: ${e.missing.join('; ')})` : ''}`);
  for (const u of s.updates) {
    lines.push(`  ${u.id}  ${u.state}${u.byUpgrade ? '' : u.state === 'applied' || u.state === 'waiting' ? ' (by hand)' : ''}  ${u.sources.join(', ')}`);
    for (const w of u.waiting) lines.push(`    ${w}  waiting for the module to load: patched as it loads`);
    for (const r of u.refused) lines.push(`    ${r}`);
  }
  if (s.notApplicable.length > 0) lines.push('not fixed live (a reboot into the new kernel package fixes these):');
  for (const f of s.notApplicable) lines.push(`  ${f.path}  ${f.outcome}${f.reason ? `: ${f.reason}` : ''}`);
  for (const o of s.others) lines.push(`other update ${o.id}  ${o.state} (not from the package)`);
  const run = s.lastBootRun;
  if (run) {
    const counts = `${run.applied.length} applied, ${run.failed.length} failed, ${run.skipped.length} skipped`;
    lines.push(`last boot-time run: boot ${run.bootId}, ${run.started} to ${run.finished}: ${run.note ?? counts}`);
    for (const f of run.failed) lines.push(`  failed ${f.id}: ${f.reason}`);
  } else lines.push('last boot-time run: none recorded');
  return `${lines.join('\n')}\n`;
}
