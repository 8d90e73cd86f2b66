/**
 * The update package: one file, a two- or three-line header and a JSON body.
 *
 *   TSPLICE-UPDATE <format version>\n
 *   sha256 <hex digest of the body>\n
 *   [signature ed25519 <key id> <base64 signature of the two lines' content>\n]
 *   <body: JSON, see UpdatePackage>
 *
 * JSON keeps the package inspectable with ordinary tools; code and data travel as base64.
 * The digest covers the body, so a damaged or edited file is refused before anything in it
 * is used; the signature (signature.ts) says who made it. docs/update-format.md describes
 * every field.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { UserError } from '../host/errors.js';
import { checkUpdateShape } from './schema.js';
import { parseSignatureLine, signatureLine, type UpdateSignature } from './signature.js';
import type { DeclarationKind, HookKind } from '../diff/hooks.js';

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
  /**
   * The loadable module the function is in (its `.ko` name as kbuild's KBUILD_MODNAME has it,
   * `/proc/kallsyms` shows it as `[name]`); absent for vmlinux.
   */
  module?: string;
  section: string;
  why?: string;
  /** The pre code that run-pre matching looks for in the running kernel (changed functions). */
  pre?: UpdateCode;
  post: UpdateCode;
}

export interface UpdateData {
  name: string;
  /** new: only the update has it; copy: its own copy of changed read-only data, whose readers it replaces. */
  status: 'new' | 'copy';
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
  /** Each unit compiled pre and post; `module` names its loadable module, absent for vmlinux. */
  units: { unit: string; object: string; builtIn: string; module?: string }[];
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
    /** `module`: the referring unit's module, where a static of it and `__this_module` live; absent for vmlinux. */
    externals: { symbol: string; name: string; unit: string; local: boolean; module?: string }[];
    /** Carried functions of one name in two units: the name each has in the module. */
    renamedFunctions?: { unit: string; name: string; symbol: string }[];
  };
  /** The core module (kmod/) built for the target kernel (base64 of the .ko). */
  coreModule?: string;
  /**
   * The patch author's hooks (<linux/tsplice.h>): functions of the update module the core module
   * runs around and inside the switch; each kind in this order (units in the order of `units`,
   * each unit's in the order of its lines).
   */
  hooks?: { kind: HookKind; function: string; unit: string }[];
  /** The author's declarations, each answering a refusal create would otherwise make. */
  declarations?: { kind: DeclarationKind; symbol: string; unit: string }[];
  /** The shadow ids the new code passes to tsplice_shadow_* (`computed` when not a constant). */
  shadowIds?: { id: string; function: string; call: string; unit: string }[];
}

/** The file's bytes; signed with `signingKey` when one is given. */
export function serializeUpdate(update: UpdatePackage, signingKey?: KeyObject): Buffer {
  const body = Buffer.from(JSON.stringify(update));
  const digest = createHash('sha256').update(body).digest('hex');
  const signature = signingKey ? `${signatureLine(UPDATE_FORMAT_VERSION, digest, signingKey)}\n` : '';
  return Buffer.concat([Buffer.from(`${MAGIC} ${UPDATE_FORMAT_VERSION}\nsha256 ${digest}\n${signature}`), body]);
}

/** Writes an update file, renamed into place, and gives the bytes written (a manifest hashes them). */
export function writeUpdate(path: string, update: UpdatePackage, signingKey?: KeyObject): Buffer {
  const bytes = serializeUpdate(update, signingKey);
  writeFileSync(`${path}.tmp`, bytes);
  renameSync(`${path}.tmp`, path);
  return bytes;
}

/** A verified update file: the body, its digest, and the signature if it has one. */
export interface UpdateFile {
  update: UpdatePackage;
  digest: string;
  signature?: UpdateSignature;
}

/** Parses and verifies an update file; a UserError names what is wrong and where. */
export function parseUpdate(bytes: Buffer, path: string): UpdatePackage {
  return parseUpdateFile(bytes, path).update;
}

/** parseUpdate, keeping the digest and the signature for the trust check. */
export function parseUpdateFile(bytes: Buffer, path: string): UpdateFile {
  const firstNewline = bytes.indexOf(0x0a);
  const secondNewline = firstNewline < 0 ? -1 : bytes.indexOf(0x0a, firstNewline + 1);
  const refuse = (reason: string, offset?: number): UserError => UserError.of({ kind: 'bad-update', object: path, ...(offset !== undefined ? { offset } : {}), reason });
  if (secondNewline < 0) throw refuse('not a tsplice update (no header)', 0);
  const magic = bytes.subarray(0, firstNewline).toString('latin1');
  const m = new RegExp(`^${MAGIC} (\\d+)$`).exec(magic);
  if (!m) throw refuse(`not a tsplice update (header ${JSON.stringify(magic.slice(0, 40))})`, 0);
  if (Number(m[1]) !== UPDATE_FORMAT_VERSION) {
    throw refuse(`update format ${m[1]} is not supported (this tsplice reads format ${UPDATE_FORMAT_VERSION})`);
  }
  const digestLine = bytes.subarray(firstNewline + 1, secondNewline).toString('latin1');
  let bodyStart = secondNewline + 1;
  let signature: UpdateSignature | undefined;
  if (bytes.subarray(bodyStart, bodyStart + 10).toString('latin1') === 'signature ') {
    const end = bytes.indexOf(0x0a, bodyStart);
    signature = end < 0 ? undefined : parseSignatureLine(bytes.subarray(bodyStart, end).toString('latin1'));
    if (!signature) throw refuse(`the signature line is not 'signature ed25519 <key id> <signature>'`, bodyStart);
    bodyStart = end + 1;
  }
  const body = bytes.subarray(bodyStart);
  const digest = createHash('sha256').update(body).digest('hex');
  if (digestLine !== `sha256 ${digest}`) {
    throw refuse('the content hash does not match: the file is damaged or was edited', firstNewline + 1);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw refuse(`the body is not valid JSON (${(e as Error).message})`, bodyStart);
  }
  return { update: checkUpdateShape<UpdatePackage>(parsed, path), digest, ...(signature ? { signature } : {}) };
}

export function readUpdate(path: string): UpdatePackage {
  return readUpdateFile(path).update;
}

export function readUpdateFile(path: string): UpdateFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new UserError(`Cannot read the update ${path}: ${(e as Error).message}.`, { kind: 'cannot-read', object: path, reason: (e as Error).message });
  }
  return parseUpdateFile(bytes, path);
}
