// DWARF type layouts and per-function type use, for refusing updates that change the
// layout of data the new code would touch. See model.ts for the result types.
import { readDieTree } from './dies.js';
import { assignTypeKeys } from './keys.js';
import { buildLayouts } from './layouts.js';
import { type DwarfSections, type FunctionTypeUse, type TypeLayouts } from './model.js';
import { TypeNamer } from './typenames.js';
import { functionTypeUses } from './usage.js';

export { compareLayouts, compareTypeLayout } from './compare.js';
export { DwarfError } from './errors.js';
export type * from './model.js';

export interface DwarfInfo {
  readonly layouts: TypeLayouts;
  /** By function name (DW_AT_name); out-of-line copies and clones of a function merge into one entry. */
  readonly functions: ReadonlyMap<string, FunctionTypeUse>;
}

/** Parse .debug_info once and derive both layouts and per-function type use. */
export function readDwarf(sections: DwarfSections): DwarfInfo {
  const dies = readDieTree(sections);
  const keys = assignTypeKeys(dies);
  return { layouts: buildLayouts(dies, keys, new TypeNamer(dies, keys)), functions: functionTypeUses(dies, keys) };
}

export function readTypeLayouts(sections: DwarfSections): TypeLayouts {
  const dies = readDieTree(sections);
  const keys = assignTypeKeys(dies);
  return buildLayouts(dies, keys, new TypeNamer(dies, keys));
}

export function readFunctionTypeUses(sections: DwarfSections): ReadonlyMap<string, FunctionTypeUse> {
  const dies = readDieTree(sections);
  return functionTypeUses(dies, assignTypeKeys(dies));
}
