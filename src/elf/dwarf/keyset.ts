// A set of type keys stored as a bitset over a unit-independent key numbering. Functions
// in a kernel unit each reach thousands of types (everything hangs off struct task_struct
// and struct device), so real Sets of strings per function would dominate the run time;
// bitsets are OR-ed together in a few hundred word operations instead.

export class KeyNumbering {
  readonly names: string[] = [];
  private readonly numbers = new Map<string, number>();

  number(key: string): number {
    let n = this.numbers.get(key);
    if (n === undefined) {
      n = this.names.length;
      this.names.push(key);
      this.numbers.set(key, n);
    }
    return n;
  }

  lookup(key: string): number | undefined {
    return this.numbers.get(key);
  }

  get words(): number {
    return Math.ceil(this.names.length / 32);
  }
}

export class KeySet implements ReadonlySet<string> {
  private count = -1;
  private materialized: Set<string> | undefined;

  constructor(
    private readonly bits: Uint32Array,
    private readonly numbering: KeyNumbering,
  ) {}

  get size(): number {
    if (this.count < 0) {
      let n = 0;
      for (const w of this.bits) n += popcount(w);
      this.count = n;
    }
    return this.count;
  }

  has(key: string): boolean {
    const i = this.numbering.lookup(key);
    return i !== undefined && i >>> 5 < this.bits.length && (this.bits[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  /** Iteration builds an ordinary Set once (in key-numbering order, i.e. DWARF order). */
  private set(): Set<string> {
    if (this.materialized === undefined) {
      const s = new Set<string>();
      const names = this.numbering.names;
      this.bits.forEach((word, w) => {
        for (let b = word; b !== 0; b &= b - 1) s.add(names[w * 32 + (31 - Math.clz32(b & -b))]!);
      });
      this.materialized = s;
    }
    return this.materialized;
  }

  forEach(callback: (value: string, key: string, set: ReadonlySet<string>) => void, thisArg?: unknown): void {
    for (const k of this.set()) callback.call(thisArg, k, k, this);
  }

  entries(): SetIterator<[string, string]> {
    return this.set().entries();
  }

  keys(): SetIterator<string> {
    return this.set().keys();
  }

  values(): SetIterator<string> {
    return this.set().values();
  }

  [Symbol.iterator](): SetIterator<string> {
    return this.set().values();
  }
}

function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}
