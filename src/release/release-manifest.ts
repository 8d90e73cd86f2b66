/**
 * What a release's manifest says of each changed file: shipped live in an update, needing new
 * code from the patch author, needing a reboot, or changing no code that runs; each with why,
 * in the classes of create's refusals (refusal-classes.ts).
 */
import type { InstalledManifest, ManifestFile } from '../update/installed-manifest.js';
import type { FixResult } from './fix-updates.js';
import type { Diagnostic } from '../host/errors.js';
import { NEEDS_NEW_CODE, createClasses } from './refusal-classes.js';

/** The first line of a refusal, which names the file, function or symbol. */
const firstLine = (message: string): string => (message.split('\n').find((l) => l.trim() !== '') ?? message).trim();

/**
 * The refusal behind a file's class, as its fields say it (the unit, the function or object,
 * the reason), rather than the message's first line, which may only announce a list.
 */
function refusalOf(diagnostics: readonly Diagnostic[], cls: string): string | undefined {
  const d = diagnostics.find((one) => createClasses([one])[0] === cls);
  if (d === undefined) return undefined;
  const where = [d.unit, d.function ?? d.object].filter((w) => w !== undefined && w !== '').join(' ');
  return where === '' ? d.reason : `${where}: ${d.reason}`;
}

/** A file's outcome from its fix's result; `carrier` is the id of the update that carries it. */
export function fileOutcome(result: FixResult, carrier?: string): ManifestFile {
  const path = result.file;
  if (result.outcome === 'created') return { path, outcome: 'live', update: result.update.id, ...(result.adapted ? { reason: `adapted: ${result.adapted.newLines} lines of new code` } : {}) };
  if (result.outcome === 'carried') return { path, outcome: 'live', ...(carrier ? { update: carrier } : {}), reason: `in the update of ${result.carriedBy}` };
  const cls = result.classes[0] ?? 'create error';
  if (!result.changesCode) return { path, outcome: 'no-code-change', reason: cls };
  if (result.notLive !== undefined) return { path, outcome: 'needs-reboot', reason: `cannot be made safe live: ${result.notLive}` };
  if (result.adapted) return { path, outcome: 'needs-new-code', reason: `the adapted patch was refused: ${firstLine(result.adapted.error)}` };
  return { path, outcome: NEEDS_NEW_CODE.has(cls) ? 'needs-new-code' : 'needs-reboot', reason: `${cls}: ${refusalOf(result.diagnostics, cls) ?? firstLine(result.error)}` };
}

/** The manifest of a release, as the updates package installs it (src/update/installed-manifest.ts). */
export type ReleaseManifest = InstalledManifest;
