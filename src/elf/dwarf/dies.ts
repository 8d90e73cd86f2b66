// The DIE tree of .debug_info, reduced to what type layouts and type use need.
//
// Every DIE of interest becomes a row of a DieTable holding only the attributes this
// package reads; all other attributes are skipped by form size. DIEs that never matter
// here (call sites, labels) are not materialised at all, and are jumped over with
// DW_AT_sibling when the producer emitted it.
import { type Abbrev, AbbrevCache } from './abbrev.js';
import { AT, FORM, OP_plus_uconst, TAG } from './constants.js';
import { DwarfError } from './errors.js';
import {
  type FormContext,
  ambiguousConstSize,
  fixedFormSize,
  isConstantForm,
  isRefForm,
  readConst,
  readConstBig,
  readFlag,
  readIndirectForm,
  readRef,
  skipForm,
} from './forms.js';
import { DieTable, F_DECLARATION, F_DYNAMIC_BOUND, F_HAS_CODE, F_PROTOTYPED, NOT_CONSTANT, UNRESOLVED, type Unit } from './dietable.js';
import { type DwarfSections } from './model.js';
import { Cursor } from './reader.js';
import { StringTables } from './strings.js';
import { type UnitHeader, readUnitHeader } from './units.js';

/** Tags whose DIEs (and subtrees) say nothing about types or type use. */
function isDropped(tag: number): boolean {
  return (
    tag === TAG.call_site ||
    tag === TAG.call_site_parameter ||
    tag === TAG.GNU_call_site ||
    tag === TAG.GNU_call_site_parameter ||
    tag === TAG.label
  );
}

const enum Act {
  Skip,
  Name,
  LinkageName,
  ByteSize,
  BitSize,
  BitOffset,
  DataBitOffset,
  MemberLocation,
  Type,
  AbstractOrigin,
  Specification,
  Declaration,
  HasCode,
  UpperBound,
  LowerBound,
  Count,
  ConstValue,
  Encoding,
  Prototyped,
  Signature,
  Sibling,
  StrOffsetsBase,
}

/** An abbreviation prepared for decoding: one action per attribute. */
interface Plan {
  readonly abbrev: Abbrev;
  readonly dropped: boolean;
  readonly actions: Uint8Array;
  /** Per attribute: the size of a skipped fixed-size value, else -1 (read it, or its size varies). */
  readonly skipSizes: Int32Array;
  /** Total size when every attribute has a fixed size and none is read, else -1. */
  readonly fixedSize: number;
}

function actionFor(tag: number, attr: number): Act {
  switch (attr) {
    case AT.name:
      return Act.Name;
    case AT.linkage_name:
    case AT.MIPS_linkage_name:
      return Act.LinkageName;
    case AT.byte_size:
      return Act.ByteSize;
    case AT.bit_size:
      return Act.BitSize;
    case AT.bit_offset:
      return Act.BitOffset;
    case AT.data_bit_offset:
      return Act.DataBitOffset;
    case AT.data_member_location:
      return tag === TAG.member ? Act.MemberLocation : Act.Skip;
    case AT.type:
      return Act.Type;
    case AT.abstract_origin:
      return Act.AbstractOrigin;
    case AT.specification:
      return Act.Specification;
    case AT.declaration:
      return Act.Declaration;
    case AT.low_pc:
    case AT.ranges:
    case AT.entry_pc:
      return Act.HasCode;
    case AT.upper_bound:
      return Act.UpperBound;
    case AT.lower_bound:
      return Act.LowerBound;
    case AT.count:
      return Act.Count;
    case AT.const_value:
      // Variables' constant values can be blocks and do not matter; enumerators' do.
      return tag === TAG.enumerator ? Act.ConstValue : Act.Skip;
    case AT.encoding:
      return Act.Encoding;
    case AT.prototyped:
      return Act.Prototyped;
    case AT.signature:
      return Act.Signature;
    case AT.sibling:
      return Act.Sibling;
    case AT.str_offsets_base:
      return Act.StrOffsetsBase;
    default:
      return Act.Skip;
  }
}

function makePlan(abbrev: Abbrev, ctx: FormContext): Plan {
  const dropped = isDropped(abbrev.tag);
  const actions = new Uint8Array(abbrev.attrs.length);
  const skipSizes = new Int32Array(abbrev.attrs.length);
  let fixedSize = 0;
  abbrev.attrs.forEach((spec, i) => {
    let act = dropped ? (spec.attr === AT.sibling ? Act.Sibling : Act.Skip) : actionFor(abbrev.tag, spec.attr);
    if (act === Act.Sibling && !dropped) act = Act.Skip;
    actions[i] = act;
    const size = fixedFormSize(spec.form, ctx);
    skipSizes[i] = act === Act.Skip ? size : -1;
    if (act !== Act.Skip || size < 0 || fixedSize < 0) fixedSize = -1;
    else fixedSize += size;
  });
  return { abbrev, dropped, actions, skipSizes, fixedSize };
}

/** Read all units of .debug_info. */
export function readDieTree(sections: DwarfSections): DieTable {
  const info = new Cursor(sections.info, '.debug_info');
  const abbrevs = new AbbrevCache(sections.abbrev);
  const strings = new StringTables(sections.info, sections.str, sections.lineStr, sections.strOffsets);
  const plans = new Map<string, Map<number, Plan>>();
  // gcc's DIEs average 12-14 bytes; start near that and grow.
  const table = new DieTable(Math.ceil(sections.info.length / 11), strings);
  const sigTargets = new Map<bigint, number>();
  let scratch: Int32Array = new Int32Array(0);

  while (info.pos < info.length) {
    const header = readUnitHeader(info);
    const unitIndex = table.units.length;
    const unit: Unit = { header, root: -1, name: '' };
    table.units.push(unit);
    if (header.typeSignature !== undefined && header.typeDie !== undefined) {
      sigTargets.set(header.typeSignature, header.typeDie);
      unit.name = `type unit 0x${header.typeSignature.toString(16).padStart(16, '0')}`;
    }
    const ctx: FormContext = {
      version: header.version,
      addressSize: header.addressSize,
      offsetSize: header.offsetSize,
      unitOffset: header.offset,
      strOffsetsBase: undefined,
    };
    const planKey = `${header.abbrevOffset}:${header.version}:${header.addressSize}:${header.offsetSize}`;
    let unitPlans = plans.get(planKey);
    if (unitPlans === undefined) {
      unitPlans = new Map();
      plans.set(planKey, unitPlans);
    }
    const abbrevTable = abbrevs.get(header.abbrevOffset);
    const cache = unitPlans;
    const planOf = (code: number, at: number): Plan => {
      let plan = cache.get(code);
      if (plan === undefined) {
        const abbrev = abbrevTable.get(code);
        if (abbrev === undefined) {
          throw new DwarfError('.debug_info', at, `abbreviation code ${code} not in the table at .debug_abbrev offset 0x${header.abbrevOffset.toString(16)}`);
        }
        plan = makePlan(abbrev, ctx);
        cache.set(code, plan);
      }
      return plan;
    };

    // The unit DIE's DW_AT_str_offsets_base may follow attributes that need it (strx
    // names), so find it first.
    prescanRoot(info, planOf, ctx);
    const first = table.size;
    readUnitDies(info, table, unitIndex, ctx, planOf, strings);
    scratch = resolveUnitReferences(table, first, header, scratch);
    if (unit.name === '') unit.name = (unit.root >= 0 ? table.name(unit.root) : undefined) ?? `unit at 0x${header.offset.toString(16)}`;
    info.pos = header.end;
  }
  resolveReferences(table, sigTargets);
  return table;
}

/**
 * Turn a unit's references to its own DIEs into DIE indices, through a table indexed by
 * offset within the unit (most references are unit-relative). References elsewhere
 * (DW_FORM_ref_addr) are kept, encoded as CROSS_UNIT - offset, for resolveReferences.
 */
function resolveUnitReferences(table: DieTable, first: number, header: UnitHeader, scratch: Int32Array): Int32Array {
  const base = header.offset;
  const span = header.end - base;
  let map = scratch;
  if (map.length < span) map = new Int32Array(Math.max(span, map.length * 2));
  const last = table.size;
  const offsets = table.offset;
  for (let i = first; i < last; i++) map[offsets[i]! - base] = i + 1;
  for (const column of [table.type, table.abstractOrigin, table.specification]) {
    for (let i = first; i < last; i++) {
      const ref = column[i]!;
      if (ref < 0) continue;
      const rel = ref - base;
      if (rel >= 0 && rel < span) column[i] = map[rel]! - 1 >= 0 ? map[rel]! - 1 : UNRESOLVED;
      else column[i] = CROSS_UNIT - ref;
    }
  }
  for (let i = first; i < last; i++) map[offsets[i]! - base] = 0;
  return map;
}

/** Marks (below) a reference to another unit still to be resolved, as CROSS_UNIT - offset. */
const CROSS_UNIT = -3;

/** Resolve references between units, now that every unit (and type unit) is read. */
function resolveReferences(table: DieTable, sigTargets: ReadonlyMap<bigint, number>): void {
  const resolve = (offset: number): number => {
    const i = table.indexOf(offset);
    return i >= 0 ? i : UNRESOLVED;
  };
  for (const column of [table.type, table.abstractOrigin, table.specification]) {
    for (let i = 0; i < table.size; i++) {
      const ref = column[i]!;
      if (ref <= CROSS_UNIT) column[i] = resolve(CROSS_UNIT - ref);
    }
  }
  // DW_FORM_ref_sig8 types, and declaration stubs whose DW_AT_signature names the type
  // unit holding the definition: for our purposes the stub is that type. DWARF 4 type
  // units live in .debug_types, which we are not given: those stay unresolved.
  for (const [i, sig] of table.typeSig) {
    const target = sigTargets.get(sig);
    table.type[i] = target === undefined ? UNRESOLVED : resolve(target);
  }
}

function prescanRoot(info: Cursor, planOf: (code: number, at: number) => Plan, ctx: FormContext): void {
  const start = info.pos;
  if (start >= info.length) return;
  const code = info.uleb();
  if (code !== 0) {
    const plan = planOf(code, start);
    plan.abbrev.attrs.forEach((spec, i) => {
      let form = spec.form;
      if (form === FORM.indirect) form = readIndirectForm(info);
      if (plan.actions[i] === Act.StrOffsetsBase && (form === FORM.sec_offset || isConstantForm(form))) {
        ctx.strOffsetsBase = form === FORM.sec_offset ? info.offset(ctx.offsetSize) : readConst(info, form, spec.implicitConst);
      } else {
        skipForm(info, form, ctx);
      }
    });
  }
  info.pos = start;
}

function readUnitDies(
  info: Cursor,
  table: DieTable,
  unitIndex: number,
  ctx: FormContext,
  planOf: (code: number, at: number) => Plan,
  strings: StringTables,
): void {
  const unit = table.units[unitIndex]!;
  const end = unit.header.end;
  // Open DIEs with children, and the last child appended to each.
  const stack: number[] = [];
  const lastChild: number[] = [];
  // Depth inside a dropped subtree that has to be walked because it has no DW_AT_sibling.
  let skipDepth = 0;
  while (info.pos < end) {
    const at = info.pos;
    const code = info.uleb();
    if (code === 0) {
      if (skipDepth > 0) skipDepth--;
      else if (stack.length > 0) {
        stack.pop();
        lastChild.pop();
      }
      continue;
    }
    const plan = planOf(code, at);
    const hasChildren = plan.abbrev.hasChildren;
    if (plan.dropped || skipDepth > 0) {
      const sibling = skipAttrs(info, plan, ctx);
      if (hasChildren) {
        if (skipDepth === 0 && sibling > info.pos && sibling <= end) info.pos = sibling;
        else skipDepth++;
      }
      continue;
    }
    const depth = stack.length;
    const parent = depth > 0 ? stack[depth - 1]! : -1;
    const i = table.add(at, plan.abbrev.tag, unitIndex, parent);
    readAttrs(info, table, i, plan, ctx, strings);
    if (info.pos > end) info.fail('DIE runs past the end of its unit', at);
    if (parent < 0) {
      if (unit.root < 0) unit.root = i;
    } else {
      const prev = lastChild[depth - 1]!;
      if (prev < 0) table.firstChild[parent] = i;
      else table.nextSibling[prev] = i;
      lastChild[depth - 1] = i;
    }
    if (hasChildren) {
      stack.push(i);
      lastChild.push(-1);
    }
  }
  if (info.pos > end) info.fail('DIE runs past the end of its unit', end);
}

/** Skip a dropped DIE's attributes; returns its DW_AT_sibling target or -1. */
function skipAttrs(info: Cursor, plan: Plan, ctx: FormContext): number {
  if (plan.fixedSize >= 0) {
    info.skip(plan.fixedSize);
    return -1;
  }
  let sibling = -1;
  const attrs = plan.abbrev.attrs;
  for (let i = 0; i < attrs.length; i++) {
    const spec = attrs[i]!;
    let form = spec.form;
    if (form === FORM.indirect) form = readIndirectForm(info);
    if (plan.actions[i] === Act.Sibling && isRefForm(form)) sibling = readRef(info, form, ctx);
    else skipForm(info, form, ctx);
  }
  return sibling;
}

function readAttrs(info: Cursor, t: DieTable, i: number, plan: Plan, ctx: FormContext, strings: StringTables): void {
  const attrs = plan.abbrev.attrs;
  const actions = plan.actions;
  const skipSizes = plan.skipSizes;
  for (let a = 0; a < attrs.length; a++) {
    const skip = skipSizes[a]!;
    if (skip >= 0) {
      // Bounds are checked once the DIE is done (readUnitDies), not per attribute.
      info.pos += skip;
      continue;
    }
    const spec = attrs[a]!;
    let form = spec.form;
    if (form === FORM.indirect) form = readIndirectForm(info);
    const act = actions[a] as Act;
    switch (act) {
      case Act.Skip:
      case Act.Sibling:
      case Act.StrOffsetsBase:
        skipForm(info, form, ctx);
        break;
      case Act.Name:
        t.nameRef[i] = strings.read(info, form, ctx);
        break;
      case Act.LinkageName:
        t.linkageNameRef.set(i, strings.read(info, form, ctx));
        break;
      case Act.ByteSize:
        t.byteSize[i] = readInt32(info, form, spec.implicitConst, ctx);
        break;
      case Act.BitSize:
        t.bitSize[i] = readInt32(info, form, spec.implicitConst, ctx);
        break;
      case Act.BitOffset:
        t.bitOffset[i] = readInt32(info, form, spec.implicitConst, ctx);
        break;
      case Act.DataBitOffset:
        t.dataBitOffset[i] = readInt32(info, form, spec.implicitConst, ctx);
        break;
      case Act.Encoding: {
        const v = readInt32(info, form, spec.implicitConst, ctx);
        if (v !== NOT_CONSTANT) t.encoding.set(i, v);
        break;
      }
      case Act.MemberLocation:
        t.memberLocation[i] = readMemberLocation(info, form, spec.implicitConst, ctx);
        break;
      case Act.Type:
      case Act.AbstractOrigin:
      case Act.Specification: {
        if (form === FORM.ref_sig8) {
          const sig = info.u64Big();
          if (act === Act.Type) t.typeSig.set(i, sig);
          break;
        }
        if (!isRefForm(form)) info.fail(`attribute 0x${spec.attr.toString(16)} has non-reference form 0x${form.toString(16)}`);
        const at = info.pos;
        const ref = readRef(info, form, ctx);
        if (ref >= info.length || ref > 0x7fffffff) info.fail(`reference 0x${ref.toString(16)} is past the end of .debug_info`, at);
        const column = act === Act.Type ? t.type : act === Act.AbstractOrigin ? t.abstractOrigin : t.specification;
        // A reference into another file (readRef gives -1) cannot be followed.
        column[i] = ref < 0 ? UNRESOLVED : ref;
        break;
      }
      case Act.Declaration:
        t.setFlag(i, F_DECLARATION, readFlag(info, form, ctx));
        break;
      case Act.Prototyped:
        t.setFlag(i, F_PROTOTYPED, readFlag(info, form, ctx));
        break;
      case Act.HasCode:
        t.setFlag(i, F_HAS_CODE, true);
        skipForm(info, form, ctx);
        break;
      case Act.UpperBound:
      case Act.LowerBound:
      case Act.Count: {
        if (!isConstantForm(form)) {
          // An expression or a reference to a variable: the array's length is dynamic.
          t.setFlag(i, F_DYNAMIC_BOUND, true);
          skipForm(info, form, ctx);
          break;
        }
        const v = readBound(info, form, spec.implicitConst);
        if (v === undefined) t.setFlag(i, F_DYNAMIC_BOUND, true);
        else (act === Act.UpperBound ? t.upperBound : act === Act.LowerBound ? t.lowerBound : t.elementCount).set(i, v);
        break;
      }
      case Act.ConstValue:
        if (!isConstantForm(form)) {
          skipForm(info, form, ctx);
          break;
        }
        t.constValue.set(i, { ambiguousSize: ambiguousConstSize(form), value: readConstBig(info, form, spec.implicitConst) });
        break;
      case Act.Signature:
        // A declaration stub standing for the type in a type unit.
        if (form === FORM.ref_sig8) t.typeSig.set(i, info.u64Big());
        else skipForm(info, form, ctx);
        break;
    }
  }
}

/** A size-like constant; other forms (expressions for dynamic sizes) give NOT_CONSTANT. */
function readInt32(info: Cursor, form: number, implicitConst: bigint, ctx: FormContext): number {
  if (isConstantForm(form)) {
    const v = readConst(info, form, implicitConst);
    // Sizes past 2 GiB do not occur in C objects that matter here; call them unknown.
    return v > 0x7fffffff || v <= NOT_CONSTANT ? NOT_CONSTANT : v;
  }
  skipForm(info, form, ctx);
  return NOT_CONSTANT;
}

/**
 * An array bound. gcc has emitted the upper bound of zero-length arrays as an all-ones
 * data value (-1 in the index type); read that as -1 so the count comes out as 0.
 */
function readBound(info: Cursor, form: number, implicitConst: bigint): number | undefined {
  // The common small forms without bigints (this runs for every array type).
  switch (form) {
    case FORM.data1: {
      const v = info.u8();
      return v === 0xff ? -1 : v;
    }
    case FORM.data2: {
      const v = info.u16();
      return v === 0xffff ? -1 : v;
    }
    case FORM.data4: {
      const v = info.u32();
      return v === 0xffffffff ? -1 : v;
    }
    default:
      break;
  }
  const v = readConstBig(info, form, implicitConst);
  const size = ambiguousConstSize(form);
  if (size > 0 && v === (1n << BigInt(size * 8)) - 1n) return -1;
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) return undefined;
  return Number(v);
}

/**
 * DW_AT_data_member_location: a constant (DWARF 3+), or a DWARF 2 style expression, which
 * for C is always DW_OP_plus_uconst N. Anything else gives NOT_CONSTANT, which layouts
 * show as an unknown offset so that a comparison still sees it.
 */
function readMemberLocation(info: Cursor, form: number, implicitConst: bigint, ctx: FormContext): number {
  if (isConstantForm(form)) return readInt32(info, form, implicitConst, ctx);
  let len: number;
  switch (form) {
    case FORM.exprloc:
    case FORM.block:
      len = info.uleb();
      break;
    case FORM.block1:
      len = info.u8();
      break;
    case FORM.block2:
      len = info.u16();
      break;
    case FORM.block4:
      len = info.u32();
      break;
    default:
      skipForm(info, form, ctx);
      return NOT_CONSTANT;
  }
  const start = info.pos;
  info.need(len);
  let value = NOT_CONSTANT;
  if (len > 0 && info.bytes[start] === OP_plus_uconst) {
    info.pos = start + 1;
    const v = info.uleb();
    if (info.pos === start + len && v <= 0x7fffffff) value = v;
  }
  info.pos = start + len;
  return value;
}
