/**
 * Damaged and ill-shaped update files made from a good one, deterministically (a seeded
 * xorshift), for the tests that every one is refused in one sentence: truncations, a bit
 * flipped in the header, the digest or the body, and bodies that hash right but have the
 * wrong shape (a field removed, or given a value of the wrong kind).
 */
import { createHash } from 'node:crypto';
import { type UpdatePackage, parseUpdate, serializeUpdate } from './format.js';

export interface Mutant {
  kind: 'truncated' | 'header byte flipped' | 'digest byte flipped' | 'body byte flipped' | 'wrong shape, right hash';
  bytes: Buffer;
}

/** A file whose header hashes the (possibly ill-shaped) body right. */
export function rehashed(body: unknown): Buffer {
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

/**
 * `count` mutants of `good`: a sixth each truncated and with a bit flipped in the header, the
 * digest line and the body; the rest ill-shaped bodies with a right hash (a shape change that
 * leaves the body well formed, such as removing an optional field, is not counted).
 */
export function* updateMutants(good: UpdatePackage, count: number, seed: number): Generator<Mutant> {
  const bytes = serializeUpdate(good);
  const bodyStart = bytes.indexOf(0x0a, bytes.indexOf(0x0a) + 1) + 1;
  const next = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
  const each = Math.floor(count / 6);
  for (let i = 0; i < each; i++) yield { kind: 'truncated', bytes: bytes.subarray(0, Math.floor(next() * bytes.length)) };
  for (const [kind, from, to] of [
    ['header byte flipped', 0, bytes.indexOf(0x0a)],
    ['digest byte flipped', bytes.indexOf(0x0a) + 1, bodyStart - 1],
    ['body byte flipped', bodyStart, bytes.length],
  ] as const) {
    for (let i = 0; i < each; i++) {
      const flipped = Buffer.from(bytes);
      const at = from + Math.floor(next() * (to - from));
      flipped[at] = (flipped[at] as number) ^ (1 << Math.floor(next() * 8));
      yield { kind, bytes: flipped };
    }
  }
  const all = paths(good);
  const wrongValues: unknown[] = [null, 7, -1, 1.5, 'x', '', [], {}, true, '../x', 'A'.repeat(5000)];
  for (let made = 4 * each; made < count; ) {
    const body = structuredClone(good);
    const path = pick(all);
    if (next() < 0.3) setAt(body, path, undefined, true);
    else setAt(body, path, pick(wrongValues));
    const mutant = rehashed(body);
    try {
      parseUpdate(mutant, 'mutant');
      continue; // still well formed: not a mutant
    } catch {
      made++;
      yield { kind: 'wrong shape, right hash', bytes: mutant };
    }
  }
}
