// Reachability over the type graph, for per-function type use (usage.ts).
import { TAG } from './constants.js';
import { type DieTable } from './dietable.js';
import { type TypeKeys, isAggregate } from './keys.js';
import { KeyNumbering, KeySet } from './keyset.js';
import { isDeclaration } from './layouts.js';

/**
 * The set of type keys reachable from type DIEs. Type graphs are full of cycles (struct a
 * has a `struct b *`, struct b a `struct a *`; in the kernel most structs end up in one
 * big cycle), so the graph is first condensed into strongly connected components
 * (Tarjan's algorithm, lazily, from the DIEs asked about). A component's reachable keys
 * are then collected by a walk of the component graph that stops at components already
 * computed, and kept as a bitset only for components that were asked about.
 */
export class TypeReach {
  private readonly numbering = new KeyNumbering();
  private readonly order: Int32Array;
  private readonly low: Int32Array;
  private readonly onStack: Uint8Array;
  private readonly component: Int32Array;
  /** Scratch for finish(): the component that last listed each component as a successor, plus one. */
  private readonly added: Int32Array;
  private readonly own: number[][] = [];
  private readonly next: number[][] = [];
  private readonly bits: (Uint32Array | undefined)[] = [];
  private readonly definitions = new Map<string, number>();
  private readonly empty: Uint32Array;
  private counter = 0;
  private seen = new Int32Array(0);
  private generation = 0;

  constructor(
    private readonly t: DieTable,
    private readonly keys: TypeKeys,
  ) {
    // Number every key up front so that all bitsets have the same length.
    for (let i = 0; i < t.size; i++) {
      const k = keys.keyOf(i);
      if (k === undefined) continue;
      this.numbering.number(k);
      // A declaration (`struct device;` in a unit that only passes pointers) leads to the
      // definition of the same key, if any unit of the input has one.
      if (isAggregate(t.tag[i]!) && !isDeclaration(t, i) && !this.definitions.has(k)) this.definitions.set(k, i);
    }
    this.order = new Int32Array(t.size).fill(-1);
    this.low = new Int32Array(t.size);
    this.onStack = new Uint8Array(t.size);
    this.component = new Int32Array(t.size).fill(-1);
    this.added = new Int32Array(t.size);
    this.empty = new Uint32Array(this.numbering.words);
  }

  /** The keys reachable from any of the given type DIEs. */
  union(roots: readonly number[]): ReadonlySet<string> {
    // Most roots lead into the same few components and so to the same bitset objects.
    const distinct = new Set<Uint32Array>();
    for (const root of roots) distinct.add(this.of(root));
    const out = new Uint32Array(this.numbering.words);
    for (const b of distinct) for (let w = 0; w < b.length; w++) out[w]! |= b[w]!;
    return new KeySet(out, this.numbering);
  }

  private of(die: number): Uint32Array {
    if (die < 0) return this.empty;
    if (this.component[die]! < 0) this.visit(die);
    return this.bitsOf(this.component[die]!);
  }

  private bitsOf(c: number): Uint32Array {
    const { own, next, bits } = this;
    // A component that adds no key and leads to one other (a pointer, a const) is that other.
    let x = c;
    while (bits[x] === undefined && own[x]!.length === 0 && next[x]!.length === 1) x = next[x]![0]!;
    let result = bits[x];
    if (result === undefined) {
      result = own[x]!.length === 0 && next[x]!.length === 0 ? this.empty : this.collect(x);
      bits[x] = result;
    }
    bits[c] = result;
    return result;
  }

  /** Walk the component graph from c, OR-ing in what is already known and adding own keys. */
  private collect(c: number): Uint32Array {
    const { own, next, bits } = this;
    if (this.seen.length < own.length) {
      const grown = new Int32Array(Math.max(own.length, this.seen.length * 2));
      grown.set(this.seen);
      this.seen = grown;
    }
    const gen = ++this.generation;
    const seen = this.seen;
    const out = new Uint32Array(this.numbering.words);
    const work = [c];
    seen[c] = gen;
    while (work.length > 0) {
      const d = work.pop()!;
      const known = d === c ? undefined : bits[d];
      if (known !== undefined) {
        for (let w = 0; w < out.length; w++) out[w]! |= known[w]!;
        continue;
      }
      for (const n of own[d]!) out[n >>> 5]! |= 1 << (n & 31);
      for (const s of next[d]!) {
        if (seen[s] !== gen) {
          seen[s] = gen;
          work.push(s);
        }
      }
    }
    return out;
  }

  private successors(die: number): number[] {
    const t = this.t;
    const out: number[] = [];
    if (t.type[die]! >= 0) out.push(t.type[die]!);
    const tag = t.tag[die]!;
    if (tag === TAG.structure_type || tag === TAG.union_type || tag === TAG.class_type || tag === TAG.subroutine_type) {
      for (let c = t.firstChild[die]!; c >= 0; c = t.nextSibling[c]!) {
        const ct = t.tag[c];
        if ((ct === TAG.member || ct === TAG.formal_parameter) && t.type[c]! >= 0) out.push(t.type[c]!);
      }
    }
    if (isAggregate(tag) && isDeclaration(t, die)) {
      const k = this.keys.keyOf(die);
      const def = k === undefined ? undefined : this.definitions.get(k);
      if (def !== undefined) out.push(def);
    }
    return out;
  }

  /** Iterative Tarjan from one root; finishes every component reachable from it. */
  private visit(root: number): void {
    const { order, low, onStack, component } = this;
    const stack: number[] = [];
    const frames: { die: number; succ: number[]; next: number }[] = [];
    const enter = (die: number): void => {
      order[die] = low[die] = this.counter++;
      stack.push(die);
      onStack[die] = 1;
      frames.push({ die, succ: this.successors(die), next: 0 });
    };
    enter(root);
    while (frames.length > 0) {
      const frame = frames[frames.length - 1]!;
      if (frame.next < frame.succ.length) {
        const w = frame.succ[frame.next++]!;
        if (component[w]! >= 0) continue;
        if (order[w]! < 0) enter(w);
        else if (onStack[w]) low[frame.die] = Math.min(low[frame.die]!, order[w]!);
        continue;
      }
      frames.pop();
      const v = frame.die;
      if (frames.length > 0) {
        const parent = frames[frames.length - 1]!.die;
        low[parent] = Math.min(low[parent]!, low[v]!);
      }
      if (low[v] !== order[v]) continue;
      const members: number[] = [];
      let w: number;
      do {
        w = stack.pop()!;
        onStack[w] = 0;
        members.push(w);
      } while (w !== v);
      this.finish(members);
    }
  }

  /** Record a finished component: its own keys and the components it leads to (all finished). */
  private finish(members: number[]): void {
    const id = this.own.length;
    for (const m of members) this.component[m] = id;
    const own: number[] = [];
    const next: number[] = [];
    // Mark each successor component once (the big cycle of a kernel unit has thousands).
    const mark = id + 1;
    for (const m of members) {
      const k = this.keys.keyOf(m);
      if (k !== undefined) own.push(this.numbering.lookup(k)!);
      for (const s of this.successors(m)) {
        const c = this.component[s]!;
        if (c !== id && this.added[c] !== mark) {
          this.added[c] = mark;
          next.push(c);
        }
      }
    }
    this.own.push(own);
    this.next.push(next);
    this.bits.push(undefined);
  }
}
