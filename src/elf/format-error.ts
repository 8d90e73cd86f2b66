import { UserError } from '../host/errors.js';

/**
 * A malformed ELF file, as Go's debug/elf FormatError: the message says what is
 * wrong and `offset` is the byte offset in the file of the offending field or
 * structure, so a user can look at it with `xxd -s`. As a diagnostic: kind
 * 'malformed-elf', the file as its object, the offset.
 *
 * Convention for `offset`: the field that holds the bad value when there is one
 * (sh_link, st_name, r_info, ...); the start of the structure when the
 * structure itself does not fit in the file (file header, section header,
 * program header).
 */
export class FormatError extends UserError {
  override readonly name: string = 'FormatError';

  constructor(
    /** What is wrong, without the file name or offset (those are added). */
    readonly detail: string,
    readonly offset: number,
    readonly file?: string,
  ) {
    super(`${file !== undefined ? `${file}: ` : ''}offset 0x${offset.toString(16)}: ${detail}`, {
      kind: 'malformed-elf',
      ...(file !== undefined ? { object: file } : {}),
      offset,
      reason: detail,
    });
  }
}
