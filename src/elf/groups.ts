// SHT_GROUP sections (COMDAT groups): a flags word followed by the indices of
// the member sections. sh_link names the symbol table and sh_info the
// signature symbol whose name identifies the group.

import type { ByteReader } from './byte-reader.js';
import { ELF64_SYM_SIZE } from './constants.js';
import { SHDR } from './layout.js';
import { describeSection, sectionHeaderOffset } from './sections.js';
import type { ElfHeader, Section } from './types.js';

export interface SectionGroup {
  /** GRP_* flags (GRP_COMDAT). */
  readonly flags: number;
  /** Section indices of the members. */
  readonly members: readonly number[];
}

export function readGroup(section: Section): SectionGroup {
  const view = new DataView(section.data.buffer, section.data.byteOffset, section.data.byteLength);
  const members: number[] = [];
  for (let at = 4; at + 4 <= view.byteLength; at += 4) members.push(view.getUint32(at, true));
  return { flags: view.byteLength >= 4 ? view.getUint32(0, true) : 0, members };
}

/** Checks the signature symbol index and that every member is a real section other than the group itself. */
export function validateGroup(r: ByteReader, header: ElfHeader, sections: readonly Section[], group: Section): void {
  const at = sectionHeaderOffset(header, group.index);
  if (group.size < 4) {
    throw r.error(`${describeSection(group)}: a section group needs at least its flags word`, at + SHDR.size);
  }
  const symbolCount = (sections[group.link] as Section).size / ELF64_SYM_SIZE;
  if (group.info >= symbolCount) {
    throw r.error(`${describeSection(group)}: signature symbol index ${group.info} out of range (${symbolCount} symbols)`, at + SHDR.info);
  }
  readGroup(group).members.forEach((member, i) => {
    if (member === 0 || member >= sections.length || member === group.index) {
      throw r.error(`${describeSection(group)}: member ${i} has invalid section index ${member}`, group.offset + 4 + 4 * i);
    }
  });
}
