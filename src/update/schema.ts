/**
 * The shape of an update body (UpdatePackage), checked whole before anything in it is used.
 * The header's sha256 only says the body is the one that was written, not that it is an
 * update: a body that hashes right but has the wrong shape must be refused in one sentence
 * naming the field, never reach a TypeError, a module load or a file name. Names that become
 * file or module names are derived from the id, never trusted (module.name must be
 * moduleNameFor(id)).
 */
import { UserError } from '../host/errors.js';
import { moduleNameFor } from './module.js';
import { DECLARATION_KINDS, HOOK_KINDS } from '../diff/hooks.js';

/** A field that is not what the format says, with its path in the body. */
class ShapeError extends Error {
  constructor(
    readonly path: string,
    readonly expected: string,
  ) {
    super(`${path} is not ${expected}`);
  }
}

type Check = (value: unknown, path: string) => void;

/** An update id: it names the update module and appears in its C stub and Kbuild file. */
export const UPDATE_ID = /^[A-Za-z0-9_.:-]{1,63}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** A module's name as kbuild gives it (KBUILD_MODNAME: `-` made `_`), shorter than MODULE_NAME_LEN. */
const MODULE_NAME = /^[A-Za-z0-9_]{1,55}$/;
const DECIMAL = /^-?\d{1,20}$/;
const HEX_OR_DECIMAL = /^(0x[0-9a-f]{1,16}|-?\d{1,20})$/;

const fail = (path: string, expected: string): never => {
  throw new ShapeError(path, expected);
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const str =
  (pattern?: RegExp, what = 'a string'): Check =>
  (v, path) => {
    if (typeof v !== 'string' || (pattern && !pattern.test(v))) fail(path, what);
  };
// Names and paths are printed in messages: no control characters (terminal escapes) in them.
// eslint-disable-next-line no-control-regex
const text = str(/^[^\x00-\x1f\x7f]{1,4096}$/, 'a string of 1 to 4096 printable characters');
const base64 = str(BASE64, 'base64 text');
const count: Check = (v, path) => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(path, 'a whole number ≥ 0');
};
const bool: Check = (v, path) => {
  if (typeof v !== 'boolean') fail(path, 'true or false');
};
const oneOf =
  (...values: string[]): Check =>
  (v, path) => {
    if (typeof v !== 'string' || !values.includes(v)) fail(path, `one of ${values.join(', ')}`);
  };
const list =
  (item: Check, max = 1_000_000): Check =>
  (v, path) => {
    if (!Array.isArray(v) || v.length > max) return fail(path, 'a list');
    v.forEach((x, i) => item(x, `${path}[${i}]`));
  };

/** An object with these fields (a `?` after the name: optional); other fields are refused. */
const object =
  (fields: Record<string, Check>): Check =>
  (v, path) => {
    if (!isObject(v)) return fail(path, 'an object');
    const known = new Map(Object.entries(fields).map(([k, c]) => [k.replace(/\?$/, ''), { check: c, optional: k.endsWith('?') }]));
    for (const key of Object.keys(v)) if (!known.has(key)) fail(`${path}.${key}`, 'a field of the format');
    for (const [key, { check, optional }] of known) {
      if (v[key] === undefined) {
        if (!optional) fail(`${path}.${key}`, 'present');
        continue;
      }
      check(v[key], `${path}.${key}`);
    }
  };

const target: Check = (v, path) => {
  if (!isObject(v)) return fail(path, 'an object');
  const kinds: Record<string, Check> = {
    symbol: object({ kind: str(), name: text, addend: str(DECIMAL, 'a decimal number'), local: bool }),
    string: object({ kind: str(), text: str(/^[^]{0,65536}$/, 'a string') }),
    piece: object({ kind: str(), name: text, offset: str(HEX_OR_DECIMAL, 'a number') }),
    section: object({ kind: str(), section: text, offset: str(HEX_OR_DECIMAL, 'a number') }),
  };
  const check = typeof v.kind === 'string' ? kinds[v.kind] : undefined;
  if (!check) return fail(`${path}.kind`, 'symbol, string, piece or section');
  check(v, path);
};

const relocation = object({ offset: count, type: str(/^R_X86_64_[A-Z0-9_]{1,24}$/, 'an x86-64 relocation type'), addend: str(DECIMAL, 'a decimal number'), target });
const code = object({ size: count, bytes: base64, relocations: list(relocation) });

const updateBody = object({
  format: (v, path) => {
    if (v !== 1) fail(path, 'format 1');
  },
  id: str(UPDATE_ID, 'an update id (1 to 63 of A-Z a-z 0-9 _ . : -)'),
  createdAt: text,
  target: object({ release: str(/^[A-Za-z0-9._+~-]{1,64}$/, 'a kernel release'), 'distributionVersion?': text, sourceVersion: text }),
  patches: list(object({ name: text, sha256: str(/^[0-9a-f]{64}$/, 'a sha256'), 'text?': str() })),
  'onTopOf?': str(UPDATE_ID, 'an update id'),
  units: list(object({ unit: text, object: text, builtIn: text, 'module?': str(MODULE_NAME, 'a module name') })),
  functions: list(
    object({
      name: text,
      status: oneOf('changed', 'new', 'copy'),
      unit: text,
      'module?': str(MODULE_NAME, 'a module name'),
      section: text,
      'why?': str(),
      'pre?': code,
      post: code,
    }),
  ),
  data: list(object({ name: text, status: oneOf('new', 'copy'), unit: text, section: text, 'data?': code })),
  specialEntries: list(
    object({ side: oneOf('pre', 'post'), section: text, unit: text, owner: text, offsetInOwner: str(HEX_OR_DECIMAL, 'a number'), bytes: base64, relocations: list(relocation) }),
  ),
  lineNumbersOnly: list(text),
  postObjects: list(object({ unit: text, bytes: base64 })),
  'module?': object({
    name: str(/^tsplice_[A-Za-z0-9_]{1,47}$/, 'a module name tsplice_…'),
    bytes: base64,
    externals: list(object({ symbol: text, name: text, unit: text, local: bool, 'module?': str(MODULE_NAME, 'a module name') })),
    'renamedFunctions?': list(object({ unit: text, name: text, symbol: text })),
  }),
  'coreModule?': base64,
  'hooks?': list(object({ kind: oneOf(...HOOK_KINDS), function: str(/^[A-Za-z_][A-Za-z0-9_.]{0,127}$/, 'a function name'), unit: text }), 1024),
  'declarations?': list(object({ kind: oneOf(...DECLARATION_KINDS), symbol: str(/^[A-Za-z_][A-Za-z0-9_.]{0,127}$/, 'a symbol name'), unit: text }), 1024),
  'shadowIds?': list(object({ id: str(/^(0x[0-9a-f]{1,16}|computed)$/, 'a shadow id'), function: text, call: text, unit: text })),
});

/**
 * Checks a parsed body against the format; throws a UserError naming the file and the first
 * field that is wrong. Returns the body, now typed.
 */
export function checkUpdateShape<T>(body: unknown, path: string): T {
  try {
    updateBody(body, 'body');
  } catch (e) {
    if (e instanceof ShapeError) throw new UserError(`${path}: not an update of format 1: ${e.message}.`, { kind: 'bad-update', object: path, reason: `not an update of format 1: ${e.message}` });
    throw e;
  }
  const update = body as { id: string; module?: { name: string } };
  if (update.module && update.module.name !== moduleNameFor(update.id)) {
    const reason = `not an update of format 1: body.module.name is ${JSON.stringify(update.module.name)}, not ${moduleNameFor(update.id)} (the name its id gives)`;
    throw new UserError(`${path}: ${reason}.`, { kind: 'bad-update', object: path, reason });
  }
  return body as T;
}
