// Which types each function uses, from the DWARF of its code.
//
// A function's type roots are the types of everything DWARF hangs under it: its return
// type and parameters, its locals, its lexical blocks, the inlined subroutines (whose
// abstract origins carry the inlined function's return type, parameters and locals, and
// whose concrete trees carry further inlining), and types declared inside it. From the
// roots, every reachable type is taken: through pointers, typedefs, qualifiers, arrays,
// function types, and all members of every struct or union reached, pointer members
// included. That over-approximates (a function that only passes a `struct device *` along
// "uses" everything struct device points to), which is the safe direction for refusing
// an update that changes a layout.
import { TAG } from './constants.js';
import { type DieTable } from './dietable.js';
import { type TypeKeys, functionName } from './keys.js';
import { type FunctionTypeUse } from './model.js';
import { TypeReach } from './reach.js';

/**
 * One function's entry. The type set is computed on first use: a caller normally asks
 * only about the few functions a patch changes, and a kernel unit has hundreds.
 */
class FunctionUse implements FunctionTypeUse {
  private computed: ReadonlySet<string> | undefined;

  constructor(
    readonly name: string,
    readonly linkageNames: readonly string[],
    readonly units: readonly string[],
    /** The subprogram DIEs (an out-of-line copy, its clones, same-named statics). */
    private readonly dies: readonly number[],
    readonly enumsInScope: ReadonlySet<string>,
    private readonly reach: TypeReach,
    private readonly t: DieTable,
  ) {}

  get types(): ReadonlySet<string> {
    if (this.computed === undefined) {
      const roots: number[] = [];
      const scopes = new Set<number>();
      for (const die of this.dies) collectRoots(this.t, die, roots, scopes);
      this.computed = this.reach.union(roots);
    }
    return this.computed;
  }
}

export function functionTypeUses(t: DieTable, keys: TypeKeys): Map<string, FunctionTypeUse> {
  const reach = new TypeReach(t, keys);
  const unitEnums = new Map<number, Set<string>>();
  const enumsOfUnit = (u: number): Set<string> => {
    let set = unitEnums.get(u);
    if (set === undefined) {
      set = enumsOf(t, u, keys);
      unitEnums.set(u, set);
    }
    return set;
  };
  const byName = new Map<string, { dies: number[]; units: string[]; linkageNames: string[]; enumUnits: Set<number> }>();

  for (let fn = 0; fn < t.size; fn++) {
    if (t.tag[fn] !== TAG.subprogram || !t.hasCode(fn) || t.isDeclaration(fn)) continue;
    const name = functionName(t, fn);
    if (name === undefined) continue;
    let acc = byName.get(name);
    if (acc === undefined) {
      acc = { dies: [], units: [], linkageNames: [], enumUnits: new Set() };
      byName.set(name, acc);
    }
    acc.dies.push(fn);
    const unitName = t.unitOf(fn).name;
    if (!acc.units.includes(unitName)) acc.units.push(unitName);
    const linkage = linkageName(t, fn);
    if (linkage !== undefined && !acc.linkageNames.includes(linkage)) acc.linkageNames.push(linkage);
    acc.enumUnits.add(t.unit[fn]!);
    // Code inlined from another unit (LTO) brings that unit's enums into scope too.
    for (let d = fn + 1; d < t.size && t.unit[d] === t.unit[fn] && isInside(t, d, fn); d++) {
      const origin = t.abstractOrigin[d]!;
      if (t.tag[d] === TAG.inlined_subroutine && origin >= 0) acc.enumUnits.add(t.unit[origin]!);
    }
  }

  const out = new Map<string, FunctionTypeUse>();
  for (const [name, acc] of byName) {
    const units = [...acc.enumUnits];
    // Functions of one unit share that unit's set; only LTO-style mixes need a new one.
    let enums: ReadonlySet<string>;
    if (units.length === 1) {
      enums = enumsOfUnit(units[0]!);
    } else {
      const set = new Set<string>();
      for (const u of units) for (const e of enumsOfUnit(u)) set.add(e);
      enums = set;
    }
    out.set(name, new FunctionUse(name, acc.linkageNames.sort(), acc.units, acc.dies, enums, reach, t));
  }
  return out;
}

/** True if DIE d is a descendant of DIE ancestor. */
function isInside(t: DieTable, d: number, ancestor: number): boolean {
  for (let p = t.parent[d]!; p >= 0; p = t.parent[p]!) if (p === ancestor) return true;
  return false;
}

function linkageName(t: DieTable, fn: number): string | undefined {
  for (let d = fn, n = 0; d >= 0 && n < 16; n++) {
    const name = t.linkageName(d);
    if (name !== undefined) return name;
    d = t.abstractOrigin[d]! >= 0 ? t.abstractOrigin[d]! : t.specification[d]!;
  }
  return undefined;
}

/**
 * Every enum key of a unit. Enumerator constants are folded into instructions and DWARF
 * records no use of them, so per function this cannot be known: every enum the unit
 * has is taken to be in scope of every function in it. (gcc only emits enums whose type
 * or constants the unit uses, which keeps this list to the relevant ones.)
 */
function enumsOf(t: DieTable, unit: number, keys: TypeKeys): Set<string> {
  const set = new Set<string>();
  const root = t.units[unit]!.root;
  if (root < 0) return set;
  for (let i = root; i < t.size && t.unit[i] === unit; i++) {
    if (t.tag[i] !== TAG.enumeration_type) continue;
    const k = keys.keyOf(i);
    if (k !== undefined) set.add(k);
  }
  return set;
}

/** Gather the type roots of a scope (function, block, inlined call) and every scope it draws on. */
function collectRoots(t: DieTable, scope: number, roots: number[], seen: Set<number>): void {
  const work = [scope];
  while (work.length > 0) {
    const s = work.pop()!;
    if (s < 0 || seen.has(s)) continue;
    seen.add(s);
    if (t.type[s]! >= 0) roots.push(t.type[s]!);
    // Concrete DIEs (out-of-line copies, inlined calls, their parameters and blocks) carry
    // few attributes; the abstract origin or the specification has the types.
    work.push(t.abstractOrigin[s]!, t.specification[s]!);
    for (let c = t.firstChild[s]!; c >= 0; c = t.nextSibling[c]!) {
      switch (t.tag[c]) {
        case TAG.formal_parameter:
        case TAG.variable:
        case TAG.lexical_block:
        case TAG.inlined_subroutine:
          work.push(c);
          break;
        case TAG.structure_type:
        case TAG.union_type:
        case TAG.class_type:
        case TAG.enumeration_type:
        case TAG.typedef:
          roots.push(c);
          break;
        default:
          // Nested subprograms are functions of their own; local extern declarations of
          // called functions are calls, not uses of data layout.
          break;
      }
    }
  }
}
