/**
 * `tsplice create`: source patch -> objects -> diff -> update package.
 *
 * The patch is applied to copies of the files it touches; each touched unit is compiled pre
 * (kbuild, in the prepared tree) and post (the same command on the patched copy); each pair
 * goes through the differencing pipeline. Anything refused stops the create with every
 * refusal named; a patch with no code change left is refused with that explanation.
 *
 * A changed header is compiled into every unit that includes it, so each such unit built
 * into vmlinux (src/build/includers.ts) is rebuilt too, its post compile seeing the patched
 * copy; a unit whose code the header does not change simply yields no changed function.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
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
import { foldersToMirror, includeGraph, unitsIncluding, type HeaderUnits } from './includers.js';
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
  /** Refuse a changed header included by more built-in units than this (default 40). */
  headerUnitLimit?: number;
  /**
   * An update this one goes on top of: its patches are part of both sides, so the pre code is
   * that update's post code — what runs once it is applied — and the two stack.
   */
  onTopOf?: UpdatePackage;
  log: Log;
}

export interface UnitResult {
  unit: string;
  state: DiffState;
}

export interface CreateResult {
  update: UpdatePackage;
  units: UnitResult[];
  /** For each changed header, the units rebuilt for it and those not rebuilt, with why. */
  headerUnits: HeaderUnits[];
}

function defaultId(patches: string[]): string {
  const first = basename(patches[0] ?? 'update').replace(/\.(patch|diff)$/, '');
  const digest = createHash('sha256');
  for (const p of patches) digest.update(readFileSync(p));
  return `${first.replace(/[^\w.-]/g, '-').slice(0, 40)}-${digest.digest('hex').slice(0, 8)}`;
}

/**
 * Finds the built-in units each changed header reaches, logs them, and lays out the work
 * folder for their post compiles: each unit copied beside the patched header copies, and the
 * folders where a quoted include could reach a patched header mirrored with links to the
 * tree's files, so that `#include "x.h"` from there resolves as in the tree.
 */
function unitsForHeaders(options: CreateOptions, headers: string[], sourceRoot: string): HeaderUnits[] {
  if (headers.length === 0) return [];
  const { tree, log } = options;
  const graph = includeGraph(tree);
  const found = headers.map((header) => unitsIncluding(tree, header, { graph, limit: options.headerUnitLimit }));
  for (const h of found) {
    const unknown = h.skipped.filter((s) => s.status === 'unknown').map((s) => s.unit);
    const notRebuilt = h.skipped.length > 0 ? `; not rebuilt: ${h.skipped.length} unit(s) not built into vmlinux` : '';
    log(`${h.header}: rebuilding ${h.units.length} unit(s) built into vmlinux that include it${h.units.length > 0 ? ` (${h.units.join(', ')})` : ''}${notRebuilt}`);
    if (unknown.length > 0) {
      log(`${h.header}: kbuild's Makefiles do not tell whether ${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} built into vmlinux; not rebuilt`);
    }
    for (const unit of h.units) {
      const copy = join(sourceRoot, unit);
      if (existsSync(copy)) continue;
      mkdirSync(dirname(copy), { recursive: true });
      copyFileSync(join(tree.dir, unit), copy);
    }
  }
  for (const folder of foldersToMirror(graph, headers)) mirrorFolder(tree.dir, sourceRoot, folder);
  return found;
}

/** Links every file of the tree's `folder` that has no copy in `sourceRoot` (gcc takes a quoted include's folder from the path, not the link's target). */
function mirrorFolder(treeDir: string, sourceRoot: string, folder: string): void {
  if (!existsSync(join(treeDir, folder))) return;
  const target = join(sourceRoot, folder);
  mkdirSync(target, { recursive: true });
  for (const entry of readdirSync(join(treeDir, folder), { withFileTypes: true })) {
    if (entry.isFile() && !existsSync(join(target, entry.name))) symlinkSync(join(treeDir, folder, entry.name), join(target, entry.name));
  }
}

/**
 * For an update on top of another: write the base update's patches out, apply them to a pre
 * source copy and (first) to the post copy. Returns what the base touched, for the pre compiles.
 */
function applyBase(options: CreateOptions, work: string, sourceRoot: string): { preRoot: string; baseTouched: string[] } | undefined {
  const base = options.onTopOf;
  if (!base) return undefined;
  if (base.target.release !== options.tree.release) {
    throw new UserError(`The update ${base.id} is for ${base.target.release}, not ${options.tree.release}: this one cannot go on top of it.`);
  }
  const files = base.patches.map((p, i) => {
    if (p.text === undefined) throw new UserError(`The update ${base.id} does not carry its patches (made by an older tsplice): nothing can go on top of it.`);
    const path = join(work, 'base-patches', `${i}-${p.name}`);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, p.text);
    return path;
  });
  const preRoot = join(work, 'pre-src');
  const baseTouched = applyPatchesToCopies(options.tree.dir, files, preRoot);
  if (baseTouched.some((f) => f.endsWith('.h'))) {
    throw new UserError(`The update ${base.id} changes headers; tsplice does not yet stack an update on top of one that does.`);
  }
  applyPatchesToCopies(options.tree.dir, files, sourceRoot);
  return { preRoot, baseTouched };
}

export async function createUpdate(options: CreateOptions): Promise<CreateResult> {
  const { tree, patches, log } = options;
  const work = mkdtempSync(join(tmpdir(), 'tsplice-create-'));
  try {
    const sourceRoot = join(work, 'src');
    const outputRoot = join(work, 'post');
    const base = applyBase(options, work, sourceRoot);
    const touched = applyPatchesToCopies(tree.dir, patches, sourceRoot, base?.baseTouched ?? []);
    const others = touched.filter((f) => !f.endsWith('.c') && !f.endsWith('.h'));
    if (others.length > 0) throw new UserError(`The patch changes ${others.join(', ')}, which tsplice cannot compile into an update (only .c units and the headers they include).`);
    const headers = touched.filter((f) => f.endsWith('.h'));
    const headerUnits = unitsForHeaders(options, headers, sourceRoot);
    const config = readAutoConf(tree.dir);
    const units: UnitResult[] = [];
    const unitRecords: UpdatePackage['units'] = [];
    const rebuilt = new Set(headerUnits.flatMap((h) => h.units));
    for (const unit of new Set([...touched.filter((f) => f.endsWith('.c')), ...rebuilt])) {
      // Units found through a header are built-in by kbuild's own lists already.
      const status = touched.includes(unit) ? buildStatus(tree.dir, unit, config) : 'built-in';
      if (status === 'module' || status === 'not built') {
        throw new UserError(`${unit} is ${status === 'module' ? 'built as a module' : 'not built'} for this kernel's configuration; tsplice updates code built into vmlinux.`);
      }
      log(`Compiling ${unit} (pre and post)...`);
      // On top of another update, a unit it changed is compiled pre from its patched source.
      const prePath = base?.baseTouched.includes(unit)
        ? await buildVariantObject(tree, unit, base.preRoot, join(work, 'pre'), [])
        : await buildPreObject(tree, unit);
      const postPath = await buildVariantObject(tree, unit, sourceRoot, outputRoot, headers);
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
    // A unit rebuilt only for a header it does not change has nothing to carry.
    const carried = units.filter((u) => touched.includes(u.unit) || u.state.functions.length > 0 || u.state.data.length > 0);
    const parts = carried.map((u) => updatePartsFromDiff(u.state, u.unit));
    const update: UpdatePackage = {
      format: UPDATE_FORMAT_VERSION,
      id: options.id ?? defaultId(patches),
      createdAt: new Date().toISOString(),
      target: {
        release: tree.release,
        ...(options.distributionVersion ? { distributionVersion: options.distributionVersion } : {}),
        sourceVersion: tree.sourceVersion,
      },
      patches: patches.map((p) => {
        const text = readFileSync(p, 'utf8');
        return { name: basename(p), sha256: createHash('sha256').update(text).digest('hex'), text };
      }),
      ...(options.onTopOf ? { onTopOf: options.onTopOf.id } : {}),
      units: unitRecords.filter((r) => carried.some((u) => u.unit === r.unit)),
      functions: parts.flatMap((p) => p.functions),
      data: parts.flatMap((p) => p.data),
      specialEntries: parts.flatMap((p) => p.specialEntries),
      lineNumbersOnly: units.flatMap((u) => u.state.lineNumbersOnly),
      postObjects: carried.map((u) => ({ unit: u.unit, bytes: readFileSync(u.state.post.path).toString('base64') })),
    };
    if (options.headersDir) {
      log(`Building the update module and the core module for ${tree.release}...`);
      const payload = buildPayload(carried);
      const module = await buildUpdateModule(options.headersDir, update.id, payload);
      update.module = { name: module.name, bytes: module.bytes.toString('base64'), externals: payload.externals };
      update.coreModule = (await coreModuleFor(tree.release, options.headersDir)).toString('base64');
    }
    return { update, units, headerUnits };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
