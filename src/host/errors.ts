/**
 * A failure the user can act on: the message is one sentence naming the file, package,
 * function or offset at fault. The CLI prints it without a stack trace and exits non-zero.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(
    message: string,
    /** Process exit status the CLI uses for this error. */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
