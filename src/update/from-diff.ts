/**
 * Turning the differ's view (pieces of parsed objects) into the package's view (code bytes
 * and relocations by name), so that nothing in an update depends on symbol indices.
 */
import { definingSection, relocationName } from '../elf/index.js';
import type { DiffObject, ObjectPiece } from '../diff/object.js';
import type { DiffState } from '../diff/pipeline.js';
import type { SpecialEntry } from '../diff/special-sections.js';
import type { UpdateCode, UpdateData, UpdateFunction, UpdateRelocation, UpdateSpecialEntry } from './format.js';

function relocationsOf(object: DiffObject, piece: ObjectPiece): UpdateRelocation[] {
  return piece.relocations.map((rela) => {
    const target = object.target(piece, rela);
    let described: UpdateRelocation['target'];
    switch (target.kind) {
      case 'symbol':
        described = { kind: 'symbol', name: target.symbol.name, addend: String(target.addend), local: target.symbol.bind === 0 };
        break;
      case 'piece':
        described = { kind: 'piece', name: target.piece.symbol.name, offset: String(target.offset) };
        break;
      case 'string':
        described = { kind: 'string', text: target.text };
        break;
      case 'section':
        described = { kind: 'section', section: target.section, offset: String(target.offset) };
        break;
    }
    return { offset: rela.offset - piece.start, type: relocationName(rela.type), addend: String(rela.addend), target: described };
  });
}

export function codeOf(object: DiffObject, piece: ObjectPiece): UpdateCode {
  return {
    size: piece.end - piece.start,
    bytes: Buffer.from(object.bytes(piece)).toString('base64'),
    relocations: relocationsOf(object, piece),
  };
}

/**
 * The package's functions, data and special-section entries of one unit's diff; `module` is
 * the unit's loadable module (src/kbuild/module-of.ts), undefined for vmlinux, and is
 * recorded on each function, which apply must find in that module.
 */
export function updatePartsFromDiff(
  state: DiffState,
  unit: string,
  module?: string,
): { functions: UpdateFunction[]; data: UpdateData[]; specialEntries: UpdateSpecialEntry[] } {
  const functions = state.functions.map((f): UpdateFunction => ({
    name: f.name,
    status: f.status,
    unit,
    ...(module !== undefined ? { module } : {}),
    section: f.section,
    ...(f.why ? { why: f.why } : {}),
    ...(f.pre ? { pre: codeOf(state.pre, f.pre) } : {}),
    post: codeOf(state.post, f.post),
  }));
  const data = state.data.map((d): UpdateData => ({
    name: d.name,
    status: d.status,
    unit,
    section: d.section,
    ...(d.post ? { data: codeOf(state.post, d.post) } : {}),
  }));
  const entry = (side: 'pre' | 'post', object: DiffObject, e: SpecialEntry): UpdateSpecialEntry => ({
    side,
    section: e.section,
    unit,
    owner: e.owner.symbol.name,
    offsetInOwner: String(e.offsetInOwner),
    bytes: Buffer.from(e.bytes).toString('base64'),
    relocations: e.relocations.map((r) => {
      const symbol = object.elf.symbols[r.symbolIndex];
      return {
        offset: r.offset,
        type: relocationName(r.type),
        addend: String(r.addend),
        target: { kind: 'symbol', name: symbol?.name || (symbol ? definingSection(object.elf, symbol)?.name ?? '' : ''), addend: String(r.addend), local: symbol?.bind === 0 },
      };
    }),
  });
  const specialEntries = [
    ...state.preSpecialEntries.map((e) => entry('pre', state.pre, e)),
    ...state.specialEntries.map((e) => entry('post', state.post, e)),
  ];
  return { functions, data, specialEntries };
}
