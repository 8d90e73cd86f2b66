/**
 * The update package: one file, a two-line header and a JSON body.
 *
 *   TSPLICE-UPDATE <format version>\n
 *   sha256 <hex digest of the body>\n
 *   <body: JSON, see UpdatePackage>
 *
 * JSON keeps the package inspectable with ordinary tools; code and data travel as base64.
 * The digest covers the body, so a damaged or edited file is refused before anything in it
 * is used. docs/update-format.md describes every field.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { UserError } from '../errors.js';
import { checkUpdateShape } from './schema.js';

export const UPDATE_FORMAT_VERSION = 1;
const MAGIC = 'TSPLICE-UPDATE';

/** A relocation by what it names, never by a symbol index. */
export interface UpdateRelocation {
  /** Offset from the start of the code or data it belongs to. */
  offset: number;
  /** psABI name, e.g. R_X86_64_PLT32. */
  type: string;
  /** r_addend as the object has it (decimal). The target below says what it means. */
  addend: string;
  /** The target: a symbol by name, a string literal, or a place in a named object or section. */
  target:
    | { kind: 'symbol'; name: string; addend: string; local: boolean }
    | { kind: 'string'; text: string }
    | { kind: 'piece'; name: string; offset: string }
    | { kind: 'section'; section: string; offset: string };
}

export interface UpdateCode {
  size: number;
  /** base64 */
  bytes: string;
  relocations: UpdateRelocation[];
}

export interface UpdateFunction {
  name: string;
  status: 'changed' | 'new' | 'copy';
  /** The compilation unit (source file relative to the tree). */
  unit: string;
  section: string;
  why?: string;
  /** The pre code that run-pre matching looks for in the running kernel (changed functions). */
  pre?: UpdateCode;
  post: UpdateCode;
}

export interface UpdateData {
  name: string;
  status: 'new';
  unit: string;
  section: string;
  /** For objects (strings are carried inside the functions' relocation targets). */
  data?: UpdateCode;
}

export interface UpdateSpecialEntry {
  /** Whose entry: the post code the update carries, or the pre code that matching looks for. */
  side: 'pre' | 'post';
  section: string;
  unit: string;
  owner: string;
  offsetInOwner: string;
  /** base64 of the entry */
  bytes: string;
  relocations: UpdateRelocation[];
}

export interface UpdatePackage {
  format: number;
  id: string;
  createdAt: string;
  target: {
    /** uname -r of the kernel the update is for. */
    release: string;
    /** The Debian version of that kernel (in /proc/version), when known. */
    distributionVersion?: string;
    /** The source version the pre code was compiled from. */
    sourceVersion: string;
  };
  /** The patches, in order, with their text: an update made on top of this one reapplies them. */
  patches: { name: string; sha256: string; text?: string }[];
  /** The id of the update this one was made on top of (its pre code is that update's post code). */
  onTopOf?: string;
  units: { unit: string; object: string; builtIn: string }[];
  functions: UpdateFunction[];
  data: UpdateData[];
  specialEntries: UpdateSpecialEntry[];
  lineNumbersOnly: string[];
  /** The whole post object of each unit (base64), for inspection and rebuilding. */
  postObjects: { unit: string; bytes: string }[];
  /**
   * The kernel module that carries the new code, built for the target kernel; apply gives each
   * external reference its running address, then loads it. Absent when create had no headers.
   */
  module?: {
    name: string;
    /** base64 of the .ko */
    bytes: string;
    externals: { symbol: string; name: string; unit: string; local: boolean }[];
    /** Carried functions of one name in two units: the name each has in the module. */
    renamedFunctions?: { unit: string; name: string; symbol: string }[];
  };
  /** The core module (kmod/) built for the target kernel (base64 of the .ko). */
  coreModule?: string;
}

export function serializeUpdate(update: UpdatePackage): Buffer {
  const body = Buffer.from(JSON.stringify(update));
  const digest = createHash('sha256').update(body).digest('hex');
  return Buffer.concat([Buffer.from(`${MAGIC} ${UPDATE_FORMAT_VERSION}\nsha256 ${digest}\n`), body]);
}

export function writeUpdate(path: string, update: UpdatePackage): void {
  writeFileSync(`${path}.tmp`, serializeUpdate(update));
  renameSync(`${path}.tmp`, path);
}

/** Parses and verifies an update file; a UserError names what is wrong and where. */
export function parseUpdate(bytes: Buffer, path: string): UpdatePackage {
  const firstNewline = bytes.indexOf(0x0a);
  const secondNewline = firstNewline < 0 ? -1 : bytes.indexOf(0x0a, firstNewline + 1);
  if (secondNewline < 0) throw new UserError(`${path}: offset 0: not a tsplice update (no header).`);
  const magic = bytes.subarray(0, firstNewline).toString('latin1');
  const m = new RegExp(`^${MAGIC} (\\d+)$`).exec(magic);
  if (!m) throw new UserError(`${path}: offset 0: not a tsplice update (header '${magic.slice(0, 40)}').`);
  if (Number(m[1]) !== UPDATE_FORMAT_VERSION) {
    throw new UserError(`${path}: update format ${m[1]} is not supported (this tsplice reads format ${UPDATE_FORMAT_VERSION}).`);
  }
  const digestLine = bytes.subarray(firstNewline + 1, secondNewline).toString('latin1');
  const body = bytes.subarray(secondNewline + 1);
  const digest = createHash('sha256').update(body).digest('hex');
  if (digestLine !== `sha256 ${digest}`) {
    throw new UserError(`${path}: offset ${firstNewline + 1}: the content hash does not match: the file is damaged or was edited.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new UserError(`${path}: offset ${secondNewline + 1}: the body is not valid JSON (${(e as Error).message}).`);
  }
  return checkUpdateShape<UpdatePackage>(parsed, path);
}

export function readUpdate(path: string): UpdatePackage {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new UserError(`Cannot read the update ${path}: ${(e as Error).message}.`);
  }
  return parseUpdate(bytes, path);
}
