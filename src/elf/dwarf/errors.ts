import { UserError } from '../../host/errors.js';

/**
 * Malformed or unsupported DWARF. The message names the section and the byte offset so
 * that the object (and the compiler that produced it) can be inspected with readelf.
 */
export class DwarfError extends UserError {
  constructor(
    readonly section: string,
    readonly offset: number,
    detail: string,
  ) {
    super(`${section} at offset 0x${offset.toString(16)}: ${detail}`);
  }
}
