// Canonical C spellings of types, built the way C declarators are read (inside out), so
// that `struct list_head *`, `unsigned int[4]`, `char *const`, `int (*)[4]` and
// `void (*)(struct device *, int)` come out as a C programmer writes them. Aggregates and
// typedefs are spelled by their key (keys.ts) and never expanded, which keeps the names
// short and makes a member whose type is a struct compare equal even when that struct
// changed (the struct's own layout reports that change).
import { TAG } from './constants.js';
import { type DieTable, UNRESOLVED } from './dietable.js';
import { type TypeKeys, isAggregate } from './keys.js';

const QUALIFIERS: ReadonlyMap<number, string> = new Map([
  [TAG.const_type, 'const'],
  [TAG.volatile_type, 'volatile'],
  [TAG.restrict_type, 'restrict'],
  [TAG.atomic_type, '_Atomic'],
]);
/** Canonical qualifier order, so `volatile const` and `const volatile` spell the same. */
const QUALIFIER_ORDER = ['const', 'volatile', 'restrict', '_Atomic'];

const MAX_DEPTH = 64;

export class TypeNamer {
  private readonly cache: (string | undefined)[];
  constructor(
    private readonly t: DieTable,
    private readonly keys: TypeKeys,
  ) {
    this.cache = new Array<string | undefined>(t.size).fill(undefined);
  }

  /** The canonical spelling of the type DIE with this index (-1: void). */
  name(die: number): string {
    if (die < 0) return this.compose(die, '', 0);
    let s = this.cache[die];
    if (s === undefined) {
      s = this.compose(die, '', 0);
      this.cache[die] = s;
    }
    return s;
  }

  /** Byte size of a type, following typedefs, qualifiers and arrays; undefined if unknown. */
  sizeOf(die: number, depth = 0): number | undefined {
    const t = this.t;
    if (die < 0 || depth > MAX_DEPTH) return undefined;
    const size = t.value(t.byteSize, die);
    if (size !== undefined) return size;
    const tag = t.tag[die]!;
    if (tag === TAG.pointer_type || tag === TAG.reference_type || tag === TAG.rvalue_reference_type) {
      return t.unitOf(die).header.addressSize;
    }
    if (tag === TAG.array_type) {
      const elem = this.sizeOf(t.type[die]!, depth + 1);
      let n = 1;
      for (const dim of this.dimensions(die)) {
        if (dim === undefined) return undefined;
        n *= dim;
      }
      return elem === undefined ? undefined : elem * n;
    }
    if (tag === TAG.typedef || QUALIFIERS.has(tag)) return this.sizeOf(t.type[die]!, depth + 1);
    return undefined;
  }

  /** The element counts of an array's dimensions; undefined for unknown or dynamic ones. */
  dimensions(array: number): (number | undefined)[] {
    const t = this.t;
    const dims: (number | undefined)[] = [];
    for (let sub = t.firstChild[array]!; sub >= 0; sub = t.nextSibling[sub]!) {
      if (t.tag[sub] !== TAG.subrange_type) continue;
      const count = t.elementCount.get(sub);
      const upper = t.upperBound.get(sub);
      if (count !== undefined) dims.push(count);
      else if (upper !== undefined) dims.push(upper - (t.lowerBound.get(sub) ?? 0) + 1);
      else dims.push(undefined);
    }
    return dims;
  }

  private compose(die: number, decl: string, depth: number): string {
    const t = this.t;
    if (die === UNRESOLVED) return join('<unknown type>', decl);
    if (die < 0) return join('void', decl);
    if (depth > MAX_DEPTH) return join('<type loop>', decl);
    const tag = t.tag[die]!;
    if (isAggregate(tag) || tag === TAG.typedef) {
      return join(this.keys.keyOf(die) ?? t.name(die) ?? '<anonymous>', decl);
    }
    switch (tag) {
      case TAG.base_type:
      case TAG.unspecified_type:
        return join(t.name(die) ?? '<unnamed base type>', decl);
      case TAG.pointer_type:
      case TAG.reference_type:
      case TAG.rvalue_reference_type:
        return this.pointer(die, '', decl, depth);
      case TAG.array_type:
        return this.compose(t.type[die]!, `${decl}${this.arraySuffix(die)}`, depth + 1);
      case TAG.subroutine_type:
        return this.compose(t.type[die]!, `${decl}(${this.parameters(die)})`, depth + 1);
    }
    if (QUALIFIERS.has(tag)) {
      // Gather the run of qualifiers, then apply it to what it qualifies.
      const quals = new Set<string>();
      let d = die;
      for (let n = 0; d >= 0 && QUALIFIERS.has(t.tag[d]!) && n < MAX_DEPTH; n++) {
        quals.add(QUALIFIERS.get(t.tag[d]!)!);
        d = t.type[d]!;
      }
      const q = QUALIFIER_ORDER.filter((x) => quals.has(x)).join(' ');
      if (d >= 0 && (t.tag[d] === TAG.pointer_type || t.tag[d] === TAG.reference_type)) return this.pointer(d, q, decl, depth);
      return `${q} ${this.compose(d, decl, depth + 1)}`;
    }
    const name = t.name(die);
    return join(`<tag 0x${tag.toString(16)}${name === undefined ? '' : ` ${name}`}>`, decl);
  }

  /** A pointer (with its own qualifiers, as in `char *const`), parenthesised before arrays and functions. */
  private pointer(ptr: number, quals: string, decl: string, depth: number): string {
    const t = this.t;
    const tag = t.tag[ptr];
    const star = tag === TAG.pointer_type ? '*' : tag === TAG.reference_type ? '&' : '&&';
    let inner = `${star}${quals}${decl === '' ? '' : quals === '' ? decl : ` ${decl}`}`;
    let target = t.type[ptr]!;
    for (let n = 0; target >= 0 && QUALIFIERS.has(t.tag[target]!) && n < MAX_DEPTH; n++) target = t.type[target]!;
    if (target >= 0 && (t.tag[target] === TAG.array_type || t.tag[target] === TAG.subroutine_type)) inner = `(${inner})`;
    return this.compose(t.type[ptr]!, inner, depth + 1);
  }

  private arraySuffix(array: number): string {
    const t = this.t;
    const subs = t.children(array).filter((c) => t.tag[c] === TAG.subrange_type);
    if (subs.length === 0) return '[]';
    // A bound given by an expression (a variable-length array) is spelled [*], as in C prototypes.
    return this.dimensions(array)
      .map((n, i) => (n !== undefined ? `[${n}]` : t.hasDynamicBound(subs[i]!) ? '[*]' : '[]'))
      .join('');
  }

  private parameters(fn: number): string {
    const t = this.t;
    const params: string[] = [];
    for (let c = t.firstChild[fn]!; c >= 0; c = t.nextSibling[c]!) {
      if (t.tag[c] === TAG.formal_parameter) params.push(this.name(t.type[c]!));
      else if (t.tag[c] === TAG.unspecified_parameters) params.push('...');
    }
    if (params.length === 0) return t.isPrototyped(fn) ? 'void' : '';
    return params.join(', ');
  }
}

/** Put a type's base spelling in front of its declarator: `int` + `[4]`, `int` + `*`. */
function join(base: string, decl: string): string {
  if (decl === '') return base;
  return decl.startsWith('[') ? `${base}${decl}` : `${base} ${decl}`;
}
