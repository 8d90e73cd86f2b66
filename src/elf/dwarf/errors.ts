import { UserError, sentenceOf } from '../../host/errors.js';

/**
 * Malformed or unsupported DWARF. The message names the object (once the reader's caller
 * knows it: `inObject`), the section and the byte offset, so that the object (and the
 * compiler that produced it) can be inspected with readelf.
 */
export class DwarfError extends UserError {
  override readonly name: string = 'DwarfError';

  constructor(
    readonly section: string,
    readonly offset: number,
    readonly detail: string,
    readonly object?: string,
  ) {
    const fields = { section, offset, reason: detail, ...(object !== undefined ? { object } : {}) };
    super(sentenceOf(fields), { kind: 'malformed-dwarf', ...fields });
  }

  /** The same error naming the object file the sections came from. */
  inObject(object: string): DwarfError {
    return this.object === undefined ? new DwarfError(this.section, this.offset, this.detail, object) : this;
  }
}
