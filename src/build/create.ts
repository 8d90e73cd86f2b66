/**
 * `tsplice create`: source patch -> objects -> diff -> update package.
 *
 * The patch is applied to copies of the files it touches; each touched unit is compiled pre
 * (kbuild, in the prepared tree) and post (the same command on the patched copy); each pair
 * goes through the differencing pipeline. Anything refused stops the create with every
 * refusal named; a patch with no code change left is refused with that explanation.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { UserError } from '../errors.js';
import type { Log } from '../lab/apt.js';
import type { PreparedTree } from '../lab/prepare.js';
import { DiffObject } from '../diff/object.js';
import { diffObjects, type DiffState } from '../diff/pipeline.js';
import { UPDATE_FORMAT_VERSION, type UpdatePackage } from '../update/format.js';
import { updatePartsFromDiff } from '../update/from-diff.js';
import { buildPayload } from '../update/payload.js';
import { buildUpdateModule } from '../update/module.js';
import { coreModuleFor } from '../update/core-module-build.js';
import { buildStatus, readAutoConf } from './config.js';
import { buildPreObject, buildVariantObject, objectPathOf } from './kbuild.js';
import { applyPatchesToCopies } from './patch.js';

export interface CreateOptions {
  tree: PreparedTree;
  patches: string[];
  id?: string;
  /** The distribution version of the target kernel (Debian's, for lab kernels). */
  distributionVersion?: string;
  /** Headers of the target kernel (kbuild's external-module tree): with them, the update carries its modules. */
  headersDir?: string;
  log: Log;
}

export interface UnitResult {
  unit: string;
  state: DiffState;
}

export interface CreateResult {
  update: UpdatePackage;
  units: UnitResult[];
}

function defaultId(patches: string[]): string {
  const first = basename(patches[0] ?? 'update').replace(/\.(patch|diff)$/, '');
  const digest = createHash('sha256');
  for (const p of patches) digest.update(readFileSync(p));
  return `${first.replace(/[^\w.-]/g, '-').slice(0, 40)}-${digest.digest('hex').slice(0, 8)}`;
}

export async function createUpdate(options: CreateOptions): Promise<CreateResult> {
  const { tree, patches, log } = options;
  const work = mkdtempSync(join(tmpdir(), 'tsplice-create-'));
  try {
    const sourceRoot = join(work, 'src');
    const outputRoot = join(work, 'post');
    const touched = applyPatchesToCopies(tree.dir, patches, sourceRoot);
    const headers = touched.filter((f) => f.endsWith('.h'));
    if (headers.length > 0) {
      throw new UserError(
        `The patch changes ${headers.join(', ')}: tsplice does not yet find and rebuild the units that include a changed header, so it cannot make this update safely.`,
      );
    }
    const others = touched.filter((f) => !f.endsWith('.c') && !f.endsWith('.h'));
    if (others.length > 0) throw new UserError(`The patch changes ${others.join(', ')}, which tsplice cannot compile into an update (only .c units).`);
    const config = readAutoConf(tree.dir);
    const units: UnitResult[] = [];
    const unitRecords: UpdatePackage['units'] = [];
    for (const unit of touched) {
      const status = buildStatus(tree.dir, unit, config);
      if (status === 'module' || status === 'not built') {
        throw new UserError(`${unit} is ${status === 'module' ? 'built as a module' : 'not built'} for this kernel's configuration; tsplice updates code built into vmlinux.`);
      }
      log(`Compiling ${unit} (pre and post)...`);
      const prePath = await buildPreObject(tree, unit);
      const postPath = await buildVariantObject(tree, unit, sourceRoot, outputRoot);
      const state = diffObjects(DiffObject.load(prePath), DiffObject.load(postPath));
      units.push({ unit, state });
      unitRecords.push({ unit, object: objectPathOf(unit), builtIn: status });
    }
    const refused = units.flatMap((u) => u.state.refused.map((r) => `${u.unit}: ${r.symbol} (${r.section}): ${r.reason}`));
    if (refused.length > 0) throw new UserError(`The patch cannot be made into a safe update:\n  ${refused.join('\n  ')}`);
    const functions = units.flatMap((u) => u.state.functions);
    if (functions.length === 0) {
      const lineOnly = units.flatMap((u) => u.state.lineNumbersOnly);
      throw new UserError(
        lineOnly.length > 0
          ? `The patch changes no code: ${lineOnly.length} function(s) differ only in line numbers (${lineOnly.slice(0, 5).join(', ')}).`
          : 'The patch changes no code built into the kernel.',
      );
    }
    const parts = units.map((u) => updatePartsFromDiff(u.state, u.unit));
    const update: UpdatePackage = {
      format: UPDATE_FORMAT_VERSION,
      id: options.id ?? defaultId(patches),
      createdAt: new Date().toISOString(),
      target: {
        release: tree.release,
        ...(options.distributionVersion ? { distributionVersion: options.distributionVersion } : {}),
        sourceVersion: tree.sourceVersion,
      },
      patches: patches.map((p) => ({ name: basename(p), sha256: createHash('sha256').update(readFileSync(p)).digest('hex') })),
      units: unitRecords,
      functions: parts.flatMap((p) => p.functions),
      data: parts.flatMap((p) => p.data),
      specialEntries: parts.flatMap((p) => p.specialEntries),
      lineNumbersOnly: units.flatMap((u) => u.state.lineNumbersOnly),
      postObjects: units.map((u) => ({ unit: u.unit, bytes: readFileSync(u.state.post.path).toString('base64') })),
    };
    if (options.headersDir) {
      log(`Building the update module and the core module for ${tree.release}...`);
      const payload = buildPayload(units);
      const module = await buildUpdateModule(options.headersDir, update.id, payload);
      update.module = { name: module.name, bytes: module.bytes.toString('base64'), externals: payload.externals };
      update.coreModule = (await coreModuleFor(tree.release, options.headersDir)).toString('base64');
    }
    return { update, units };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
