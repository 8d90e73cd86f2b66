/**
 * Which updates `tsplice upgrade` applied (state.json): only these may it undo when an
 * installed manifest stops listing them. An update applied by hand with `tsplice apply` is
 * never in it, so upgrade never undoes the operator's work. The kernel forgets every update at
 * a reboot, so the record is of one boot: a record of another boot is empty.
 */
import { UserError } from '../host/errors.js';
import { readJsonFile, writeDurably } from './state-files.js';

export const RECORD_FILE = 'state.json';

export interface AppliedEntry {
  id: string;
  /** The kernel release whose manifest listed it. */
  kernel: string;
  /** The updates package it came from: `name version`. */
  package: string;
  /** ISO time it was applied. */
  at: string;
  /** Set once upgrade undid it (its module may still be loaded): applied again if listed again. */
  undone?: boolean;
}

export interface AppliedRecord {
  format: 1;
  bootId: string;
  /** In the order they were applied: undone from the end. */
  applied: AppliedEntry[];
}

const isEntry = (v: unknown): v is AppliedEntry =>
  typeof v === 'object' && v !== null && ['id', 'kernel', 'package', 'at'].every((k) => typeof (v as Record<string, unknown>)[k] === 'string');

/** The record of boot `bootId` in `dir` (empty when there is none, or it is of another boot). */
export function readAppliedRecord(dir: string, bootId: string): AppliedRecord {
  const value = readJsonFile(dir, RECORD_FILE);
  const empty: AppliedRecord = { format: 1, bootId, applied: [] };
  if (value === undefined) return empty;
  const v = value as Partial<AppliedRecord>;
  if (typeof value !== 'object' || v.format !== 1 || typeof v.bootId !== 'string' || !Array.isArray(v.applied) || !v.applied.every(isEntry)) {
    throw new UserError(`${dir}/${RECORD_FILE} is not a record of applied updates (format 1); remove it to start afresh.`, { kind: 'bad-state', object: `${dir}/${RECORD_FILE}`, reason: 'not a record of applied updates' });
  }
  return v.bootId === bootId ? { format: 1, bootId, applied: v.applied } : empty;
}

export function writeAppliedRecord(dir: string, record: AppliedRecord): void {
  writeDurably(dir, RECORD_FILE, record);
}
