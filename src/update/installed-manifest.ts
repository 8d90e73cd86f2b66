/**
 * The manifest of an installed updates package: `/usr/lib/tsplice/updates/R/manifest.json`,
 * written by the release side (`tsplice release`) and read on the target (`tsplice upgrade`,
 * `status`, `uname`). It says which update files the package ships for kernel release R, in the
 * order they apply, and what became of every source file the Debian version step changed:
 * fixed live, or left for a reboot with the reason. It lives in the update stage so that both
 * sides import one type and one reader (scripts/check-layers.js: the orchestrators may import
 * any stage). A manifest is checked whole before anything in it is used: a bad one is refused in
 * one sentence naming the file and the field.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../host/errors.js';
import { UPDATE_ID } from './schema.js';

export const MANIFEST_FORMAT = 1;
export const MANIFEST_FILE = 'manifest.json';
/** Where updates packages install their folders, one per kernel release. */
export const INSTALLED_UPDATES_DIR = '/usr/lib/tsplice/updates';

/**
 * What became of one changed source file between the booted and the fixed Debian version:
 * fixed live, left because the fix needs new code from its author or a reboot, or a change of
 * no code that runs (a comment, code this configuration does not build into anything called).
 */
export type FileOutcome = 'live' | 'needs-new-code' | 'needs-reboot' | 'no-code-change';
export const FILE_OUTCOMES: readonly FileOutcome[] = ['live', 'needs-new-code', 'needs-reboot', 'no-code-change'];

export interface ManifestUpdate {
  /** The update's id, as `tsplice inspect` shows it and the kernel holds it. */
  id: string;
  /** The update file's name in the manifest's folder (no folders). */
  file: string;
  /** sha256 of the whole file, hex. */
  sha256: string;
  /** The source files it changes (tree-relative). */
  sources: string[];
  /** Where its code goes: `vmlinux` or loadable modules' names. */
  modules: string[];
  /** For a fix made from an adapted patch: the lines of new code it needed beyond upstream. */
  newLines?: number;
}

export interface ManifestFile {
  path: string;
  outcome: FileOutcome;
  reason?: string;
  /** The update that fixes it live (outcome live). */
  update?: string;
}

export interface InstalledManifest {
  format: number;
  /** uname -r of the kernel the updates are for. */
  kernel: string;
  /** The Debian version of that kernel as built (in /proc/version). */
  from: string;
  /** The Debian version whose fixes the updates carry. */
  to: string;
  package: { name: string; version: string };
  /** In apply order. */
  updates: ManifestUpdate[];
  files: ManifestFile[];
}

// Names become paths and are printed: printable, and a file name never leaves the folder.
// eslint-disable-next-line no-control-regex
const PRINTABLE = /^[^\x00-\x1f\x7f]{1,4096}$/;
const FILE_NAME = /^[A-Za-z0-9_.+-]{1,255}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const RELEASE = /^[A-Za-z0-9_.+~-]{1,64}$/;
const DEBIAN_VERSION = /^[A-Za-z0-9.+~:-]{1,128}$/;

/** A field that is not what the format says, by its path in the manifest (`updates[2].sha256`). */
class FieldError extends Error {
  constructor(
    readonly field: string,
    readonly expected: string,
  ) {
    super(`${field} is not ${expected}`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function object(v: unknown, field: string, keys: readonly string[]): Record<string, unknown> {
  if (!isObject(v)) throw new FieldError(field, 'an object');
  // An unknown field is refused rather than ignored: a newer format must raise `format`.
  const extra = Object.keys(v).find((k) => !keys.includes(k));
  if (extra !== undefined) throw new FieldError(`${field === '' ? '' : `${field}.`}${extra}`, 'a field of this manifest format');
  return v;
}

function string(v: unknown, field: string, pattern: RegExp, expected: string): string {
  if (typeof v !== 'string' || !pattern.test(v)) throw new FieldError(field, expected);
  return v;
}

function array(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) throw new FieldError(field, 'a list');
  return v;
}

const at = (parent: string, key: string): string => (parent === '' ? key : `${parent}.${key}`);

function readUpdateEntry(v: unknown, field: string): ManifestUpdate {
  const o = object(v, field, ['id', 'file', 'sha256', 'sources', 'modules', 'newLines']);
  const newLines = o['newLines'];
  if (newLines !== undefined && !(Number.isInteger(newLines) && (newLines as number) >= 0)) throw new FieldError(at(field, 'newLines'), 'a whole number');
  return {
    id: string(o['id'], at(field, 'id'), UPDATE_ID, 'an update id'),
    file: string(o['file'], at(field, 'file'), FILE_NAME, 'a file name in the manifest folder'),
    sha256: string(o['sha256'], at(field, 'sha256'), SHA256, '64 lower-case hex digits'),
    sources: array(o['sources'], at(field, 'sources')).map((s, i) => string(s, `${at(field, 'sources')}[${i}]`, PRINTABLE, 'a source path')),
    modules: array(o['modules'], at(field, 'modules')).map((s, i) => string(s, `${at(field, 'modules')}[${i}]`, /^[A-Za-z0-9_-]{1,55}$/, 'vmlinux or a module name')),
    ...(newLines !== undefined ? { newLines: newLines as number } : {}),
  };
}

function readFileEntry(v: unknown, field: string): ManifestFile {
  const o = object(v, field, ['path', 'outcome', 'reason', 'update']);
  const outcome = o['outcome'];
  if (typeof outcome !== 'string' || !(FILE_OUTCOMES as readonly string[]).includes(outcome)) throw new FieldError(at(field, 'outcome'), `one of ${FILE_OUTCOMES.join(', ')}`);
  return {
    path: string(o['path'], at(field, 'path'), PRINTABLE, 'a source path'),
    outcome: outcome as FileOutcome,
    ...(o['reason'] !== undefined ? { reason: string(o['reason'], at(field, 'reason'), PRINTABLE, 'a line of text') } : {}),
    ...(o['update'] !== undefined ? { update: string(o['update'], at(field, 'update'), UPDATE_ID, 'an update id') } : {}),
  };
}

function readManifestValue(v: unknown): InstalledManifest {
  const o = object(v, '', ['format', 'kernel', 'from', 'to', 'package', 'updates', 'files']);
  if (o['format'] !== MANIFEST_FORMAT) throw new FieldError('format', `${MANIFEST_FORMAT} (the manifest format this tsplice reads)`);
  const pkg = object(o['package'], 'package', ['name', 'version']);
  const updates = array(o['updates'], 'updates').map((u, i) => readUpdateEntry(u, `updates[${i}]`));
  // Ids and files name one update each: upgrade and withdraw go by id.
  updates.forEach((u, i) => {
    if (updates.findIndex((w) => w.id === u.id) !== i) throw new FieldError(`updates[${i}].id`, `unique (${u.id} is listed twice)`);
    if (updates.findIndex((w) => w.file === u.file) !== i) throw new FieldError(`updates[${i}].file`, `unique (${u.file} is listed twice)`);
  });
  const files = array(o['files'], 'files').map((f, i) => readFileEntry(f, `files[${i}]`));
  files.forEach((f, i) => {
    if (f.update !== undefined && !updates.some((u) => u.id === f.update)) throw new FieldError(`files[${i}].update`, `an update the manifest lists (${f.update} is not)`);
  });
  return {
    format: MANIFEST_FORMAT,
    kernel: string(o['kernel'], 'kernel', RELEASE, 'a kernel release'),
    from: string(o['from'], 'from', DEBIAN_VERSION, 'a Debian version'),
    to: string(o['to'], 'to', DEBIAN_VERSION, 'a Debian version'),
    package: {
      name: string(pkg['name'], 'package.name', /^[a-z0-9][a-z0-9.+-]{1,127}$/, 'a Debian package name'),
      version: string(pkg['version'], 'package.version', DEBIAN_VERSION, 'a Debian version'),
    },
    updates,
    files,
  };
}

/** Parses manifest text read from `path`; a UserError (kind bad-manifest) names the file and the field. */
export function parseInstalledManifest(text: string, path: string): InstalledManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path}: the manifest is not valid JSON (${(e as Error).message}).`, { kind: 'bad-manifest', object: path, reason: `not valid JSON (${(e as Error).message})` });
  }
  try {
    return readManifestValue(value);
  } catch (e) {
    if (!(e instanceof FieldError)) throw e;
    const field = e.field === '' ? 'the manifest' : e.field;
    throw new UserError(`${path}: ${field} is not ${e.expected}.`, { kind: 'bad-manifest', object: path, section: field, reason: `${field} is not ${e.expected}` });
  }
}

/** The manifest folder of kernel release `release` under `dir`. */
export function manifestFolder(dir: string, release: string): string {
  return join(dir, release);
}

/**
 * The installed manifest of `release` under `dir`, or undefined when no updates package for it
 * is installed (no folder or no manifest). A manifest for another kernel is refused.
 */
export function readInstalledManifest(dir: string, release: string): InstalledManifest | undefined {
  const path = join(manifestFolder(dir, release), MANIFEST_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`Cannot read the manifest ${path}: ${(e as Error).message}.`, { kind: 'cannot-read', object: path, reason: (e as Error).message });
  }
  const manifest = parseInstalledManifest(text, path);
  if (manifest.kernel !== release) {
    throw new UserError(`${path}: kernel is ${manifest.kernel}, but the folder is for ${release}.`, { kind: 'bad-manifest', object: path, section: 'kernel', reason: `kernel is ${manifest.kernel}, not ${release}` });
  }
  return manifest;
}
