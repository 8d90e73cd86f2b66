/**
 * The crash guard (Canonical Livepatch has the same): an update that kills the kernel as it is
 * applied at boot would otherwise kill every boot after it. Before each switch, upgrade writes
 * a marker (boot id, the update, the time) and makes it durable; at the end of the run it
 * removes it. A marker of another boot found at boot means that boot died in the middle of a
 * switch: `upgrade --boot` then applies nothing, says so, and leaves the marker for the
 * operator, whose `tsplice upgrade` by hand applies and clears it. A marker of this boot is a
 * run killed (not a kernel that died): it guards nothing.
 */
import { readJsonFile, removeDurably, writeDurably } from './state-files.js';

export const MARKER_FILE = 'applying.json';
export const BOOT_RUN_FILE = 'boot-run.json';

export interface ApplyingMarker {
  bootId: string;
  /** The update being switched, and whether in or out. */
  update: string;
  action: 'apply' | 'undo';
  /** ISO time the switch began. */
  since: string;
}

/** What the last boot-time run did (boot-run.json), for `tsplice status`. */
export interface BootRun {
  bootId: string;
  started: string;
  finished: string;
  applied: string[];
  undone: string[];
  failed: { id: string; reason: string }[];
  skipped: { id: string; reason: string }[];
  /** Set when the crash guard stopped the run. */
  guard?: ApplyingMarker;
  /** Why the run applied nothing at all, in one sentence, when it did not. */
  note?: string;
}

export function writeMarker(dir: string, marker: ApplyingMarker): void {
  writeDurably(dir, MARKER_FILE, marker);
}

export function clearMarker(dir: string): void {
  removeDurably(dir, MARKER_FILE);
}

const isMarker = (v: unknown): v is ApplyingMarker =>
  typeof v === 'object' && v !== null && ['bootId', 'update', 'action', 'since'].every((k) => typeof (v as Record<string, unknown>)[k] === 'string');

/** The marker left in `dir`, if any. One that cannot be read as a marker still trips the guard. */
export function readMarker(dir: string): ApplyingMarker | undefined {
  let value: unknown;
  try {
    value = readJsonFile(dir, MARKER_FILE);
  } catch {
    value = null;
  }
  if (value === undefined) return undefined;
  // Half-written by a dying kernel: the update is unknown, but a switch was under way.
  return isMarker(value) ? value : { bootId: 'unknown', update: 'an unknown update', action: 'apply', since: 'unknown' };
}

/** The marker that stops a boot-time run: one left by another boot, which died while switching. */
export function trippedGuard(dir: string, bootId: string): ApplyingMarker | undefined {
  const marker = readMarker(dir);
  return marker && marker.bootId !== bootId ? marker : undefined;
}

/** The sentence the journal and status show for a tripped guard. */
export function guardSentence(marker: ApplyingMarker): string {
  return `boot ${marker.bootId} died while ${marker.action === 'apply' ? 'applying' : 'undoing'} ${marker.update} (since ${marker.since}), so updates are not applied at boot; run 'tsplice upgrade' by hand to apply them and clear the guard`;
}

export function writeBootRun(dir: string, run: BootRun): void {
  writeDurably(dir, BOOT_RUN_FILE, run);
}

export function readBootRun(dir: string): BootRun | undefined {
  try {
    const value = readJsonFile(dir, BOOT_RUN_FILE);
    return typeof value === 'object' && value !== null && typeof (value as BootRun).bootId === 'string' ? (value as BootRun) : undefined;
  } catch {
    return undefined;
  }
}
