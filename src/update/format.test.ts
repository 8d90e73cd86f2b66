/**
 * The update file: a round trip, and every damaged or ill-shaped file refused in one sentence
 * naming the file (and the offset or field), never a TypeError or a stack trace. The mutants
 * are made deterministically from a small well-formed update: truncations, bytes flipped in the
 * header, the digest and the body, and bodies that hash right but have the wrong shape.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { UserError } from '../errors.js';
import { type UpdatePackage, parseUpdate, serializeUpdate } from './format.js';
import { moduleNameFor } from './module.js';

const ID = 'proc-version-string-3a7ff6ee';

function sample(): UpdatePackage {
  const code = (bytes: number[]) => ({ size: bytes.length, bytes: Buffer.from(bytes).toString('base64'), relocations: [] });
  return {
    format: 1,
    id: ID,
    createdAt: '2026-12-04T00:00:00.000Z',
    target: { release: '6.1.0-47-amd64', distributionVersion: '6.1.170-3', sourceVersion: '6.1.170-3' },
    patches: [{ name: 'fix.patch', sha256: 'a'.repeat(64), text: '--- a/x\n+++ b/x\n' }],
    units: [{ unit: 'fs/proc/version.c', object: 'fs/proc/version.o', builtIn: 'y' }],
    functions: [
      {
        name: 'version_proc_show',
        status: 'changed',
        unit: 'fs/proc/version.c',
        section: '.text.version_proc_show',
        pre: code([0x0f, 0x1f, 0x44, 0x00, 0x00, 0xc3]),
        post: {
          size: 10,
          bytes: Buffer.from([0x0f, 0x1f, 0x44, 0x00, 0x00, 0xe8, 0, 0, 0, 0]).toString('base64'),
          relocations: [{ offset: 6, type: 'R_X86_64_PLT32', addend: '-4', target: { kind: 'symbol', name: 'seq_puts', addend: '0', local: false } }],
        },
      },
    ],
    data: [{ name: '.LC0', status: 'new', unit: 'fs/proc/version.c', section: '.rodata.str1.1' }],
    specialEntries: [],
    lineNumbersOnly: [],
    postObjects: [{ unit: 'fs/proc/version.c', bytes: Buffer.from('ELF').toString('base64') }],
    module: { name: moduleNameFor(ID), bytes: Buffer.from('ko').toString('base64'), externals: [{ symbol: 'seq_puts', name: 'seq_puts', unit: 'fs/proc/version.c', local: false }] },
  };
}

/** A file whose header hashes the (possibly ill-shaped) body right. */
function rehashed(body: unknown): Buffer {
  const bytes = Buffer.from(JSON.stringify(body));
  return Buffer.concat([Buffer.from(`TSPLICE-UPDATE 1\nsha256 ${createHash('sha256').update(bytes).digest('hex')}\n`), bytes]);
}

/** A small deterministic generator (xorshift), so the mutants are the same every run. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

/** Every field path of a JSON value, for the shape mutants. */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => [[...prefix, i], ...paths(v, [...prefix, i])]);
  if (typeof value === 'object' && value !== null) return Object.entries(value).flatMap(([k, v]) => [[...prefix, k], ...paths(v, [...prefix, k])]);
  return [];
}

function setAt(root: unknown, path: (string | number)[], value: unknown, remove = false): void {
  let node = root as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (remove && Array.isArray(node)) node.splice(Number(last), 1);
  else if (remove) delete node[last];
  else node[last] = value;
}

/** One sentence: a UserError naming the file, one line, no stack trace in the message. */
function assertRefused(bytes: Buffer, what: string): string {
  let message = '';
  try {
    parseUpdate(bytes, 'x.tsplice');
  } catch (e) {
    assert.ok(e instanceof UserError, `${what}: ${(e as Error).name}: ${(e as Error).message}`);
    message = e.message;
  }
  assert.ok(message, `${what}: was accepted`);
  assert.ok(message.startsWith('x.tsplice: '), `${what}: ${message}`);
  assert.ok(!message.includes('\n') && !/ at .*:\d+:\d+/.test(message), `${what}: ${message}`);
  return message;
}

describe('the update file', () => {
  it('round-trips', () => {
    const update = sample();
    assert.deepEqual(parseUpdate(serializeUpdate(update), 'x.tsplice'), update);
  });

  it('refuses a flipped byte in the body with the offset of the digest line', () => {
    const bytes = serializeUpdate(sample());
    const at = bytes.indexOf('version_proc_show');
    bytes[at] = (bytes[at] as number) ^ 0x20;
    assert.equal(assertRefused(bytes, 'flipped'), 'x.tsplice: offset 17: the content hash does not match: the file is damaged or was edited.');
  });

  it('refuses an unknown format version and a file that is not an update', () => {
    const bytes = Buffer.from(serializeUpdate(sample()).toString('latin1').replace('TSPLICE-UPDATE 1', 'TSPLICE-UPDATE 2'), 'latin1');
    assert.match(assertRefused(bytes, 'format 2'), /update format 2 is not supported \(this tsplice reads format 1\)/);
    assert.match(assertRefused(Buffer.from('\x7fELF\x02\x01\x01\nrest\n'), 'ELF'), /offset 0: not a tsplice update/);
  });

  it('refuses a body that hashes right but has the wrong shape, naming the field', () => {
    const wrongFormat = { ...sample(), format: 2 };
    assert.equal(assertRefused(rehashed(wrongFormat), 'body format 2'), 'x.tsplice: not an update of format 1: body.format is not format 1.');
    const noFormat: Partial<UpdatePackage> = sample();
    delete noFormat.format;
    assert.match(assertRefused(rehashed(noFormat), 'no format'), /body\.format is not present/);
    const badSize = sample();
    (badSize.functions[0] as unknown as { post: { size: string } }).post.size = 'ten';
    assert.match(assertRefused(rehashed(badSize), 'size'), /body\.functions\[0\]\.post\.size is not a whole number/);
    assert.match(assertRefused(rehashed({ ...sample(), id: 'undefined id' }), 'id'), /body\.id is not an update id/);
    const escape = sample();
    (escape.functions[0] as { name: string }).name = 'version_proc_show\x1b[2J';
    assert.match(assertRefused(rehashed(escape), 'escape'), /body\.functions\[0\]\.name is not a string of 1 to 4096 printable characters/);
  });

  it('derives the module name from the id and refuses any other, such as a path', () => {
    for (const name of ['../../etc/evil', 'tsplice_other']) {
      const u = sample();
      (u.module as { name: string }).name = name;
      assert.match(assertRefused(rehashed(u), name), /body\.module\.name is (not a module name|".*", not tsplice_proc_version_string_3a7ff6ee)/);
    }
  });

  it('refuses 300 mutants, each in one sentence, none with a TypeError', () => {
    const good = serializeUpdate(sample());
    const bodyStart = good.indexOf(0x0a, good.indexOf(0x0a) + 1) + 1;
    const next = random(0x7ab1ce);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
    const kinds = new Map<string, number>();
    let made = 0;
    const refuse = (bytes: Buffer, kind: string): void => {
      assertRefused(bytes, `${kind} #${made}`);
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      made++;
    };
    for (let i = 0; i < 50; i++) refuse(good.subarray(0, Math.floor(next() * good.length)), 'truncated');
    for (const [kind, from, to] of [
      ['header byte flipped', 0, 16],
      ['digest byte flipped', 17, bodyStart - 1],
      ['body byte flipped', bodyStart, good.length],
    ] as const) {
      for (let i = 0; i < 50; i++) {
        const bytes = Buffer.from(good);
        const at = from + Math.floor(next() * (to - from));
        bytes[at] = (bytes[at] as number) ^ (1 << Math.floor(next() * 8));
        refuse(bytes, kind);
      }
    }
    const all = paths(sample());
    const wrongValues: unknown[] = [null, 7, -1, 1.5, 'x', '', [], {}, true, '../x', 'A'.repeat(5000)];
    while (made < 300) {
      const body = sample();
      const path = pick(all);
      if (next() < 0.3) setAt(body, path, undefined, true);
      else setAt(body, path, pick(wrongValues));
      const bytes = rehashed(body);
      try {
        parseUpdate(bytes, 'x.tsplice');
        continue; // still well formed (an optional field removed, a string for a string): not a mutant
      } catch {
        refuse(bytes, 'wrong shape, right hash');
      }
    }
    assert.equal(made, 300);
    process.stdout.write(`mutants refused: ${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}\n`);
  });
});
