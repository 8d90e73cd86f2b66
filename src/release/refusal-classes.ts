/**
 * The classes of `tsplice create`'s refusals, named from the kind and fields of its diagnostics
 * (src/host/errors.ts), never from its sentences: the release manifest says with them why a
 * changed file ships no update, and the corpus bench counts with them.
 */
import type { Diagnostic, DiagnosticKind } from '../host/errors.js';

const kind =
  (k: DiagnosticKind) =>
  (d: Diagnostic): boolean =>
    d.kind === k;

/**
 * Refusal classes of `tsplice create`, in priority order: a create can give several
 * refusals, each gets a class, and the first class of this list present is the file's.
 * 'layout change' is kept apart; changed initializers that are only a renumbered or moved
 * line (dynamic debug descriptors, __BTF_ID__ names) are told from real ones.
 */
export const CREATE_CLASSES: [string, (d: Diagnostic) => boolean][] = [
  ['layout change', kind('layout-change')],
  ['header change: too many units include it', kind('too-many-units')],
  ['header change: another unit must change too', kind('unit-must-change')],
  ['only adds functions nothing calls', kind('only-new-functions')],
  ['header change', kind('stacked-header-change')],
  ['__init code or data', kind('init-change')],
  ['changed initializer: __dyndbg descriptor (line number)', (d) => d.kind === 'changed-initializer' && d.section === '__dyndbg'],
  ['changed initializer: renumbered __BTF_ID__ name', kind('changed-btf-id')],
  ['changed initializer', kind('changed-initializer')],
  ['changed table', kind('changed-table')],
  ['unknown special section', kind('unknown-special-section')],
  ['no DWARF', kind('no-dwarf')],
  ['no code change', kind('no-code-change')],
  ['#included file (not a unit)', kind('not-a-unit')],
  ['compiled only with its whole folder', kind('built-by-another-folder')],
  ['module or not built', kind('not-built-in')],
  ['unit of several modules', kind('several-modules')],
  ['unit of vmlinux and a module', kind('built-in-and-module')],
  ['patch does not apply', kind('patch-does-not-apply')],
  ['unnamed data reference', kind('unnamed-data-reference')],
  ['compile error', kind('does-not-compile')],
];

/** Every class a create's refusals name (a UserError's diagnostics), the file's own first. */
export function createClasses(diagnostics: readonly Diagnostic[]): string[] {
  const found = new Set<string>();
  for (const d of diagnostics) {
    const hit = CREATE_CLASSES.find(([, is]) => is(d));
    if (hit) found.add(hit[0]);
  }
  const ordered = CREATE_CLASSES.map(([name]) => name).filter((name) => found.has(name));
  return ordered.length > 0 ? ordered : ['create error'];
}

/**
 * The classes of refusal that new code from the patch author answers (docs/hooks.md): shadow
 * data for a layout change, a declaration or hooks for a changed initial value, table or __init
 * code. Any other refusal is a fix that needs a reboot.
 */
export const NEEDS_NEW_CODE: ReadonlySet<string> = new Set([
  'layout change',
  '__init code or data',
  'changed initializer: __dyndbg descriptor (line number)',
  'changed initializer: renumbered __BTF_ID__ name',
  'changed initializer',
  'changed table',
]);
