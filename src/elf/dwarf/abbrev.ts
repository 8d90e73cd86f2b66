// .debug_abbrev: the per-unit tables that say, for each abbreviation code, the DIE's tag,
// whether it has children, and the (attribute, form) list of its attributes. Units often
// share one table, so tables are parsed once per offset.
import { FORM } from './constants.js';
import { Cursor } from './reader.js';

export interface AttrSpec {
  readonly attr: number;
  readonly form: number;
  /** The value of a DW_FORM_implicit_const attribute, which lives here, not in the DIE. */
  readonly implicitConst: bigint;
}

export interface Abbrev {
  readonly code: number;
  readonly tag: number;
  readonly hasChildren: boolean;
  readonly attrs: readonly AttrSpec[];
}

/** Indexed by abbreviation code; gcc numbers codes densely from 1. */
export type AbbrevTable = ReadonlyMap<number, Abbrev>;

export class AbbrevCache {
  private readonly tables = new Map<number, AbbrevTable>();
  constructor(private readonly abbrev: Uint8Array) {}

  get(offset: number): AbbrevTable {
    let table = this.tables.get(offset);
    if (table === undefined) {
      table = parseAbbrevTable(this.abbrev, offset);
      this.tables.set(offset, table);
    }
    return table;
  }
}

/** Parse the table that starts at offset and ends with a zero code. */
export function parseAbbrevTable(abbrev: Uint8Array, offset: number): AbbrevTable {
  const cur = new Cursor(abbrev, '.debug_abbrev', offset);
  if (offset >= abbrev.length) cur.fail('abbreviation table offset past the end of the section');
  const table = new Map<number, Abbrev>();
  for (;;) {
    const at = cur.pos;
    const code = cur.uleb();
    if (code === 0) break;
    const tag = cur.uleb();
    const children = cur.u8();
    if (children > 1) cur.fail(`abbreviation ${code} has invalid children flag ${children}`, cur.pos - 1);
    const attrs: AttrSpec[] = [];
    for (;;) {
      const attr = cur.uleb();
      const form = cur.uleb();
      if (attr === 0 && form === 0) break;
      if (attr === 0 || form === 0) cur.fail(`abbreviation ${code} has a malformed attribute specification`);
      const implicitConst = form === FORM.implicit_const ? cur.slebBig() : 0n;
      attrs.push({ attr, form, implicitConst });
    }
    if (table.has(code)) cur.fail(`abbreviation code ${code} defined twice in one table`, at);
    table.set(code, { code, tag, hasChildren: children === 1, attrs });
  }
  return table;
}
