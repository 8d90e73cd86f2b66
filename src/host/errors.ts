/**
 * What went wrong, in one shape everywhere: a kind, the object or unit, the function, the
 * section, the offset and the reason. People read the one sentence the CLI prints; programs
 * (`--json`, the corpus tooling) read the fields and never parse the sentence.
 */

/**
 * Short stable names of what tsplice refuses or fails at. Programs switch on these; a new
 * refusal gets a new name rather than a new sentence to match.
 */
export type DiagnosticKind =
  // Bad input: arguments, files, keys.
  | 'bad-argument'
  | 'missing-file'
  | 'cannot-read'
  | 'file-exists'
  | 'bad-key'
  | 'malformed-elf'
  | 'malformed-dwarf'
  // create: the patch and the units it reaches.
  | 'bad-patch'
  | 'patch-does-not-apply'
  | 'unsupported-file'
  | 'not-built-in'
  | 'several-modules'
  | 'built-in-and-module'
  | 'not-a-unit'
  | 'built-by-another-folder'
  | 'does-not-compile'
  | 'unit-must-change'
  | 'too-many-units'
  | 'cannot-stack'
  | 'stacked-header-change'
  // create: what the differencing refuses.
  | 'layout-change'
  | 'changed-initializer'
  | 'changed-btf-id'
  | 'init-change'
  | 'changed-table'
  | 'unknown-special-section'
  | 'no-dwarf'
  | 'no-code-change'
  | 'only-new-functions'
  | 'unnamed-data-reference'
  | 'nothing-to-carry'
  | 'bad-hook'
  | 'unused-declaration'
  // The update file and its trust.
  | 'bad-update'
  | 'untrusted'
  /** An installed updates package's manifest.json that is not what the format says. */
  | 'bad-manifest'
  | 'no-module'
  | 'module-not-loaded'
  // apply, undo, unload on the target.
  | 'not-root'
  | 'locked'
  | 'wrong-kernel'
  | 'modules-disabled'
  | 'conflict'
  | 'match-failed'
  | 'ambiguous'
  | 'unresolved-reference'
  | 'late-reference'
  | 'too-large'
  | 'insmod-failed'
  | 'rmmod-failed'
  | 'nothing-to-stage'
  | 'busy'
  | 'kernel-refused'
  | 'bad-kernel-record'
  | 'core-not-loaded'
  | 'no-such-update'
  | 'no-such-function'
  | 'already-applied'
  | 'bad-state'
  | 'stacked-on-top'
  // The host: programs, archive, disk.
  | 'missing-program'
  | 'command-failed'
  | 'not-in-archive'
  | 'corrupt-download'
  | 'no-space'
  | 'not-prepared'
  | 'internal'
  /** Raised where no kind has been given yet. */
  | 'unclassified';

export interface Diagnostic {
  kind: DiagnosticKind;
  /** The file at fault: an ELF object, an update package, a patch, a kernel interface. */
  object?: string;
  /** The compilation unit (tree-relative `.c` file, or a header a change starts from). */
  unit?: string;
  function?: string;
  section?: string;
  /** Byte offset in `object` or `section`, or in `function`; always printed in hex. */
  offset?: number;
  /** What is wrong, without the place (the fields above say where). */
  reason: string;
}

/** The fields a throw site gives; `reason` defaults to the sentence. */
export type DiagnosticFields = Omit<Diagnostic, 'reason'> & { reason?: string };

export function hexOffset(offset: number | bigint): string {
  return `0x${offset.toString(16)}`;
}

/**
 * The sentence made from the fields: the place (object or unit, function, section, offset),
 * then the reason. `a.o: .debug_info at offset 0x1c: unsupported DWARF version 9`.
 */
export function sentenceOf(d: Omit<Diagnostic, 'kind'>): string {
  const where: string[] = [];
  const file = d.object ?? d.unit;
  if (file !== undefined) where.push(file);
  if (d.function !== undefined) where.push(d.function);
  const at = d.offset !== undefined ? `offset ${hexOffset(d.offset)}` : undefined;
  if (d.section !== undefined) where.push(at ? `${d.section} at ${at}` : d.section);
  else if (at) where.push(at);
  return [...where, d.reason].join(': ');
}

/** A Diagnostic as JSON: the offset as a hex string, absent fields left out. */
export interface DiagnosticJson {
  kind: DiagnosticKind;
  object?: string;
  unit?: string;
  function?: string;
  section?: string;
  offset?: string;
  reason: string;
}

export function diagnosticJson(d: Diagnostic): DiagnosticJson {
  return {
    kind: d.kind,
    ...(d.object !== undefined ? { object: d.object } : {}),
    ...(d.unit !== undefined ? { unit: d.unit } : {}),
    ...(d.function !== undefined ? { function: d.function } : {}),
    ...(d.section !== undefined ? { section: d.section } : {}),
    ...(d.offset !== undefined ? { offset: hexOffset(d.offset) } : {}),
    reason: d.reason,
  };
}

export interface UserErrorOptions {
  /** Process exit status the CLI uses for this error. */
  exitCode?: number;
  /** The whole story (a command line and everything it printed): shown only when verbose. */
  details?: string;
  /** Further problems found with the first (create lists every refusal). */
  more?: readonly Diagnostic[];
}

/**
 * A failure the user can act on: the message is one sentence naming the file, package,
 * function or offset at fault, and `diagnostic` holds the same as fields. The CLI prints it
 * without a stack trace and exits non-zero.
 */
export class UserError extends Error {
  override readonly name: string = 'UserError';
  readonly exitCode: number;
  readonly details?: string;
  #diagnostics: readonly Diagnostic[];

  constructor(message: string, fields: DiagnosticFields = { kind: 'unclassified' }, options: UserErrorOptions = {}) {
    super(message);
    this.exitCode = options.exitCode ?? 1;
    if (options.details !== undefined) this.details = options.details;
    // A reason is a clause for a sentence (sentenceOf), so the sentence's full stop is left off.
    this.#diagnostics = [{ ...fields, reason: fields.reason ?? (message.endsWith('.') ? message.slice(0, -1) : message) }, ...(options.more ?? [])];
  }

  /** An error whose sentence is made from its fields (sentenceOf), ending with a full stop. */
  static of(diagnostic: Diagnostic, options: UserErrorOptions = {}): UserError {
    const sentence = sentenceOf(diagnostic);
    return new UserError(['.', '!', '?'].some((end) => sentence.endsWith(end)) ? sentence : `${sentence}.`, diagnostic, options);
  }

  /** The problem, as fields. */
  get diagnostic(): Diagnostic {
    return this.#diagnostics[0] as Diagnostic;
  }

  /** Every problem found, the first being `diagnostic`. */
  get diagnostics(): readonly Diagnostic[] {
    return this.#diagnostics;
  }

  get kind(): DiagnosticKind {
    return this.diagnostic.kind;
  }

  /**
   * Gives the kind and fields a caller knows, when the code that raised the error gave none
   * (a library that says what went wrong, not what it means here); the sentence stays.
   */
  classify(fields: DiagnosticFields): this {
    if (this.kind === 'unclassified') this.#diagnostics = [{ ...fields, reason: fields.reason ?? this.diagnostic.reason }, ...this.#diagnostics.slice(1)];
    return this;
  }
}

/** `error` classified with `fields` when it is a UserError with no kind yet (UserError.classify). */
export function classified(error: unknown, fields: DiagnosticFields): unknown {
  return error instanceof UserError ? error.classify(fields) : error;
}

/** The diagnostics of an error the CLI or the harness caught: a UserError's, or none. */
export function diagnosticsOf(error: unknown): readonly Diagnostic[] {
  return error instanceof UserError ? error.diagnostics : [];
}
