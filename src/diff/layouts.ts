/**
 * Step "check data layouts": new code compiled against a changed struct reads live objects at
 * the wrong offsets, and code compiled against a changed enum uses shifted constants. From
 * the DWARF of both objects, compare the layout (size, member offsets and types) of every
 * struct and union, and the values of every enum, that the carried functions use; refuse each
 * change that moves existing data or constants, naming the type, the member and the users.
 */
import { relocationInfo, type Section } from '../elf/index.js';
import { compareLayouts, DwarfError, readDwarf, type DwarfInfo, type DwarfSections } from '../elf/dwarf/index.js';
import { sourceFunctionName } from './names.js';
import type { DiffObject } from './object.js';
import type { DiffState, DiffStep } from './pipeline.js';

/**
 * A relocatable object's debug sections hold zeros where they refer to each other (string
 * offsets, code addresses); the relocations carry the values. Apply them to copies.
 */
function relocatedSection(object: DiffObject, section: Section | undefined): Uint8Array | undefined {
  if (!section) return undefined;
  const bytes = Uint8Array.from(section.data);
  const view = new DataView(bytes.buffer);
  for (const rela of object.elf.relaFor(section)) {
    const symbol = object.elf.symbols[rela.symbolIndex];
    const value = (symbol?.value ?? 0n) + rela.addend;
    const size = relocationInfo(rela.type)?.size ?? 0;
    if (size === 4) view.setUint32(rela.offset, Number(BigInt.asUintN(32, value)), true);
    else if (size === 8) view.setBigUint64(rela.offset, BigInt.asUintN(64, value), true);
  }
  return bytes;
}

export function dwarfSectionsOf(object: DiffObject): DwarfSections | undefined {
  const section = (name: string): Uint8Array | undefined => relocatedSection(object, object.elf.sectionByName(name));
  const info = section('.debug_info');
  const abbrev = section('.debug_abbrev');
  if (!info || !abbrev) return undefined;
  const optional = {
    str: section('.debug_str'),
    lineStr: section('.debug_line_str'),
    strOffsets: section('.debug_str_offsets'),
    addr: section('.debug_addr'),
  };
  const sections: DwarfSections = { info, abbrev };
  for (const [key, value] of Object.entries(optional)) if (value) Object.assign(sections, { [key]: value });
  return sections;
}

/** The object's DWARF; malformed DWARF is refused naming the object, section and offset. */
function dwarfOf(object: DiffObject): DwarfInfo | undefined {
  const sections = dwarfSectionsOf(object);
  try {
    return sections ? readDwarf(sections) : undefined;
  } catch (error) {
    throw error instanceof DwarfError ? error.inObject(object.path) : error;
  }
}

export const checkDataLayouts: DiffStep = {
  name: 'check data layouts',
  run(state: DiffState) {
    if (state.functions.length === 0) return;
    const pre = dwarfOf(state.pre);
    const post = dwarfOf(state.post);
    if (!pre || !post) {
      const first = state.functions[0]?.name ?? '';
      state.refused.push({
        kind: 'no-dwarf',
        symbol: first,
        function: first,
        section: '.debug_info',
        reason: 'the objects carry no DWARF (compile with -g): data layout changes cannot be ruled out',
      });
      return;
    }
    const users = new Map<string, Set<string>>();
    for (const f of state.functions) {
      const use = post.functions.get(sourceFunctionName(f.name));
      for (const key of [...(use?.types ?? []), ...(use?.enumsInScope ?? [])]) {
        const set = users.get(key) ?? new Set<string>();
        set.add(f.name);
        users.set(key, set);
      }
    }
    const byType = new Map<string, string[]>();
    for (const change of compareLayouts(pre.layouts, post.layouts, users.keys())) {
      if (!change.shiftsExisting) continue;
      const list = byType.get(change.key) ?? [];
      list.push(change.message);
      byType.set(change.key, list);
    }
    for (const [key, messages] of byType) {
      const usedBy = [...(users.get(key) ?? [])].sort();
      state.refused.push({
        kind: 'layout-change',
        symbol: key,
        ...(usedBy[0] !== undefined ? { function: usedBy[0] } : {}),
        section: '.debug_info',
        reason: `data layout change: ${messages.slice(0, 3).join('; ')}${messages.length > 3 ? `; and ${messages.length - 3} more` : ''}; used by ${usedBy.slice(0, 5).join(', ')}: new code would misread live data`,
      });
    }
  },
};
