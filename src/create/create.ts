/**
 * `tsplice create`: source patch -> objects -> diff -> update package.
 *
 * The patch is applied to copies of the files it touches; each touched unit is compiled pre
 * (kbuild, in the prepared tree) and post (the same command on the patched copy); each pair
 * goes through the differencing pipeline. Anything refused stops the create with every
 * refusal named; a patch with no code change left is refused with that explanation.
 *
 * A unit built into vmlinux and a unit of a loadable module are compiled alike: kbuild's own
 * command carries `-DMODULE` and KBUILD_MODNAME for the module's, and the module it names
 * (src/kbuild/module-of.ts) is recorded on the unit and on each of its functions.
 *
 * The patch's own units are compiled and diffed first: if one is refused (a layout change
 * found in DWARF), that is the reason given. Then a changed header is followed into the units
 * built into vmlinux whose code it can reach (src/header-reach/header-reach.ts: the units that
 * include it and name what changed, directly or through other headers; not the module units it
 * reaches, which are counted and named as not rebuilt: docs/create.md "Header reach"), and a touched `.c` file that
 * kbuild builds only inside another unit (`#include "rtmutex.c"`) into those units; each is
 * rebuilt, its post compile seeing the patched copy. A unit whose code the change does not
 * touch after all yields no changed function and is left out of the update.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { UserError, classified, type Diagnostic } from '../host/errors.js';
import type { Log } from '../host/log.js';
import type { PreparedTree } from '../kbuild/tree.js';
import { DiffObject } from '../diff/object.js';
import { diffObjects, type DiffState, type Refusal } from '../diff/pipeline.js';
import { UPDATE_FORMAT_VERSION, type UpdatePackage } from '../update/format.js';
import { updatePartsFromDiff } from '../update/from-diff.js';
import { buildPayload } from '../update/payload.js';
import { buildUpdateModule } from '../update/module.js';
import { UPDATE_ID } from '../update/schema.js';
import { coreModuleFor } from '../update/core-module-build.js';
import { KbuildReader, readAutoConf, type BuildStatus } from '../kbuild/build-status.js';
import { foldersToMirror, includeGraph, includersOf, kbuildStatus, unitsIncluding, unitsReached, type HeaderUnits, type IncludeGraph } from '../kbuild/includers.js';
import { newReachCache, type ReachCache } from '../header-reach/header-reach.js';
import { buildPreObject, buildVariantObject, objectPathOf } from '../kbuild/compile.js';
import { moduleOf } from '../kbuild/module-of.js';
import { applyPatchesToCopies } from '../patch/patch.js';

export interface CreateOptions {
  tree: PreparedTree;
  patches: string[];
  id?: string;
  /** The distribution version of the target kernel (Debian's, for lab kernels). */
  distributionVersion?: string;
  /** Headers of the target kernel (kbuild's external-module tree): with them, the update carries its modules. */
  headersDir?: string;
  /** Refuse a changed header whose change reaches more built-in units than this (default 40). */
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
  /** The loadable module the unit is compiled into (kbuild's KBUILD_MODNAME), undefined for vmlinux. */
  module?: string;
}

export interface CreateResult {
  update: UpdatePackage;
  units: UnitResult[];
  /**
   * For each changed header (and each touched `.c` file kbuild compiles inside other units),
   * the units rebuilt for it, with the changed names that reach each, and those not rebuilt.
   */
  headerUnits: HeaderUnits[];
}

function defaultId(patches: string[]): string {
  const first = basename(patches[0] ?? 'update').replace(/\.(patch|diff)$/, '');
  const digest = createHash('sha256');
  for (const p of patches) digest.update(readFileSync(p));
  return `${first.replace(/[^\w.-]/g, '-').slice(0, 40)}-${digest.digest('hex').slice(0, 8)}`;
}

function list(items: readonly string[], max = 8): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

/**
 * The built-in units a changed header's change reaches (src/kbuild/includers.ts,
 * unitsReached), logged with the names that reach each.
 */
function unitsForHeader(options: CreateOptions, graph: IncludeGraph, header: string, sourceRoot: string, patched: ReadonlyMap<string, string>, cache: ReachCache): HeaderUnits {
  const { tree, log } = options;
  const treePath = join(tree.dir, header);
  const pre = existsSync(treePath) ? readFileSync(treePath, 'latin1') : '';
  const post = readFileSync(join(sourceRoot, header), 'latin1');
  const h = tooManyUnits(header, () => unitsReached(tree, header, { graph, limit: options.headerUnitLimit, pre, post, patched, cache }));
  const changed = h.changed ?? [];
  const what = changed.length === 0 ? 'changes no name (comments, whitespace or line positions only)' : `changes ${list(changed)}`;
  const rebuilt = h.units.length > 0 ? ` (${h.units.map((u) => `${u}: ${list(h.reasons?.[u] ?? [], 3)}`).join('; ')})` : '';
  const others = h.notReached ? `; ${h.notReached} other unit(s) include it but use nothing that changed` : '';
  const notBuilt = h.skipped.length > 0 ? `; not rebuilt: ${h.skipped.length} unit(s) not built into vmlinux` : '';
  log(`${header}: ${what}; rebuilding ${h.units.length} unit(s) built into vmlinux that use it${rebuilt}${others}${notBuilt}`);
  const unknown = h.skipped.filter((s) => s.status === 'unknown').map((s) => s.unit);
  if (unknown.length > 0) {
    log(`${header}: kbuild's Makefiles do not tell whether ${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} built into vmlinux; not rebuilt`);
  }
  return h;
}

/** Runs a header look-up (src/kbuild/includers.ts), its refusal of too many units given its kind. */
function tooManyUnits<T>(header: string, find: () => T): T {
  try {
    return find();
  } catch (error) {
    throw classified(error, { kind: 'too-many-units', unit: header });
  }
}

/**
 * A unit the patch does not change but whose code its header change reaches, that no longer
 * compiles: the patch changes what that unit uses (a renamed function, a declaration that
 * now conflicts) and would have to change the unit too. Named with gcc's first error (the
 * compile's refusal, src/kbuild/compile.ts).
 */
function unitBrokenByPatch(unit: string, reachedBy: readonly HeaderUnits[], compileError: UserError): UserError {
  const first = compileError.diagnostic.reason;
  const why = reachedBy.map((h) => `${h.header} (${list(h.reasons?.[unit] ?? [], 3)})`).join(', ');
  return new UserError(
    `${unit} does not compile with the patched ${why}: ${first}. The patch changes what ${unit} uses but not ${unit} itself; it has to change that unit too.`,
    { kind: 'unit-must-change', unit, reason: first },
    compileError.details !== undefined ? { details: compileError.details } : {},
  );
}

/** A refusal of the differencing as a diagnostic of `unit`; the reason names the symbol when no field does. */
function refusalDiagnostic(unit: string, r: Refusal): Diagnostic {
  const named = r.function === r.symbol || r.section === r.symbol;
  return {
    kind: r.kind,
    unit,
    ...(r.function !== undefined ? { function: r.function } : {}),
    section: r.section,
    ...(r.offset !== undefined ? { offset: r.offset } : {}),
    reason: named ? r.reason : `${r.symbol}: ${r.reason}`,
  };
}

/** Copies `unit` into the work folder (replacing a mirror's link), so that quoted includes find the patched copies beside it. */
function copyUnit(treeDir: string, sourceRoot: string, unit: string): void {
  const copy = join(sourceRoot, unit);
  const link = lstatSync(copy, { throwIfNoEntry: false });
  if (link && !link.isSymbolicLink()) return;
  if (link) rmSync(copy);
  mkdirSync(dirname(copy), { recursive: true });
  copyFileSync(join(treeDir, unit), copy);
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
    throw new UserError(`The update ${base.id} is for ${base.target.release}, not ${options.tree.release}: this one cannot go on top of it.`, { kind: 'cannot-stack' });
  }
  const files = base.patches.map((p, i) => {
    if (p.text === undefined) throw new UserError(`The update ${base.id} does not carry its patches (made by an older tsplice): nothing can go on top of it.`, { kind: 'cannot-stack' });
    const path = join(work, 'base-patches', `${i}-${p.name}`);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, p.text);
    return path;
  });
  const preRoot = join(work, 'pre-src');
  const baseTouched = applyPatchesToCopies(options.tree.dir, files, preRoot);
  if (baseTouched.some((f) => f.endsWith('.h'))) {
    const header = baseTouched.find((f) => f.endsWith('.h'));
    throw new UserError(`The update ${base.id} changes headers; tsplice does not yet stack an update on top of one that does.`, { kind: 'stacked-header-change', ...(header ? { unit: header } : {}) });
  }
  applyPatchesToCopies(options.tree.dir, files, sourceRoot);
  return { preRoot, baseTouched };
}

/** The hooks, declarations and shadow ids of the carried units, in the units' order (absent when none). */
function authoredParts(carried: readonly UnitResult[]): Pick<UpdatePackage, 'hooks' | 'declarations' | 'shadowIds'> {
  const hooks = carried.flatMap((u) => u.state.hooks.map((h) => ({ ...h, unit: u.unit })));
  const declarations = carried.flatMap((u) => u.state.declarations.map((d) => ({ ...d, unit: u.unit })));
  const shadowIds = carried.flatMap((u) => u.state.shadowIds.map((s) => ({ ...s, unit: u.unit })));
  return {
    ...(hooks.length > 0 ? { hooks } : {}),
    ...(declarations.length > 0 ? { declarations } : {}),
    ...(shadowIds.length > 0 ? { shadowIds } : {}),
  };
}

export async function createUpdate(options: CreateOptions): Promise<CreateResult> {
  const { tree, patches, log } = options;
  // The id names the update module and is written into its C stub and Kbuild file.
  if (options.id !== undefined && !UPDATE_ID.test(options.id)) {
    throw new UserError(`--id ${JSON.stringify(options.id)} is not an update id: 1 to 63 of A-Z a-z 0-9 _ . : -.`, { kind: 'bad-argument' });
  }
  const work = mkdtempSync(join(tmpdir(), 'tsplice-create-'));
  try {
    const sourceRoot = join(work, 'src');
    const outputRoot = join(work, 'post');
    const base = applyBase(options, work, sourceRoot);
    const touched = applyPatchesToCopies(tree.dir, patches, sourceRoot, base?.baseTouched ?? []);
    const others = touched.filter((f) => !f.endsWith('.c') && !f.endsWith('.h'));
    if (others.length > 0) {
      throw new UserError(`The patch changes ${others.join(', ')}, which tsplice cannot compile into an update (only .c units and the headers they include).`, { kind: 'unsupported-file', object: others[0] as string });
    }
    const headers = touched.filter((f) => f.endsWith('.h'));
    const makefiles = new KbuildReader(tree.dir, readAutoConf(tree.dir));
    const graph = includeGraph(tree);

    // Each touched .c file is a unit kbuild builds, or is #included by units it builds, or both.
    const own: { unit: string; status: BuildStatus }[] = [];
    const includedC: string[] = [];
    for (const file of touched.filter((f) => f.endsWith('.c'))) {
      const status = makefiles.unit(file);
      const includers = includersOf(graph, file).filter((f) => f.endsWith('.c') || f.endsWith('.h'));
      if (includers.length > 0) {
        includedC.push(file);
        const exact = status === 'built-in' ? status : kbuildStatus(tree, file);
        if (exact === 'built-in' || exact === 'module') own.push({ unit: file, status: exact });
        else log(`${file} is not a unit of its own for this configuration: kbuild compiles it inside the units that #include it`);
        continue;
      }
      if (status === 'not built') {
        throw new UserError(`${file} is not built for this kernel's configuration; tsplice updates code built into vmlinux or a module.`, { kind: 'not-built-in', unit: file });
      }
      own.push({ unit: file, status });
    }
    // gcc looks a quoted include up beside the including file first: the folders where one
    // could reach a patched header or .c file are mirrored into the work folder.
    const overlaid = [...headers, ...includedC];
    const mirrored = overlaid.length > 0 ? foldersToMirror(graph, overlaid) : [];
    for (const folder of mirrored) mirrorFolder(tree.dir, sourceRoot, folder);
    // An -I folder holding a mirrored folder is searched in the copy first, as one holding a
    // patched header is: a header found there includes its quoted neighbours from the copy.
    const inFront = [...overlaid, ...mirrored.map((folder) => `${folder}/`)];

    const units: UnitResult[] = [];
    const unitRecords: UpdatePackage['units'] = [];
    const compile = async (unit: string, status: BuildStatus, reachedBy?: HeaderUnits[]): Promise<void> => {
      log(`Compiling ${unit} (pre and post)...`);
      // On top of another update, a unit it changed is compiled pre from its patched source.
      const prePath = base?.baseTouched.includes(unit)
        ? await buildVariantObject(tree, unit, base.preRoot, join(work, 'pre'), [])
        : await buildPreObject(tree, unit);
      // kbuild recorded the unit's command with the pre compile: it says which module, if any.
      const module = moduleOf(tree, unit, status);
      if (module !== undefined) log(`${unit} is part of the module ${module}`);
      let postPath: string;
      try {
        postPath = await buildVariantObject(tree, unit, sourceRoot, outputRoot, inFront);
      } catch (error) {
        if (!reachedBy || !(error instanceof UserError) || error.kind !== 'does-not-compile') throw error;
        throw unitBrokenByPatch(unit, reachedBy, error);
      }
      const state = diffObjects(DiffObject.load(prePath), DiffObject.load(postPath));
      units.push({ unit, state, ...(module !== undefined ? { module } : {}) });
      unitRecords.push({ unit, object: objectPathOf(unit), builtIn: status, ...(module !== undefined ? { module } : {}) });
    };
    const refuse = (): void => {
      const refused = units.flatMap((u) => u.state.refused.map((r) => ({ line: `${u.unit}: ${r.symbol} (${r.section}): ${r.reason}`, diagnostic: refusalDiagnostic(u.unit, r) })));
      const [first, ...more] = refused.map((r) => r.diagnostic);
      if (first) throw new UserError(`The patch cannot be made into a safe update:\n  ${refused.map((r) => r.line).join('\n  ')}`, first, { more });
    };

    // 1. The patch's own units: a refusal there (a layout change) is the true reason, before
    //    any count of the units a header reaches.
    for (const { unit, status } of own) await compile(unit, status);
    refuse();

    // 2. The units the changed headers, and the .c files compiled inside other units, reach.
    const patched = new Map(touched.map((f) => [f, existsSync(join(sourceRoot, f)) ? readFileSync(join(sourceRoot, f), 'latin1') : '']));
    const cache = newReachCache();
    const headerUnits = headers.map((header) => unitsForHeader(options, graph, header, sourceRoot, patched, cache));
    for (const file of includedC) {
      const h = tooManyUnits(file, () => unitsIncluding(tree, file, { graph, limit: options.headerUnitLimit }));
      if (h.units.length === 0 && !own.some((o) => o.unit === file)) {
        throw new UserError(`${file} is compiled only inside the units that #include it, and none of those is built into vmlinux for this kernel's configuration; tsplice updates code built into vmlinux.`, {
          kind: 'not-built-in',
          unit: file,
        });
      }
      log(`${file}: #included by ${h.units.length} unit(s) built into vmlinux, rebuilt with the patched copy${h.units.length > 0 ? ` (${h.units.join(', ')})` : ''}`);
      headerUnits.push({ ...h, reasons: Object.fromEntries(h.units.map((u) => [u, [`#include of ${file}`]])) });
    }
    const compiled = new Set(own.map((o) => o.unit));
    for (const unit of new Set(headerUnits.flatMap((h) => h.units))) {
      if (compiled.has(unit)) continue;
      compiled.add(unit);
      copyUnit(tree.dir, sourceRoot, unit);
      // Units found through a header are built-in by kbuild's own lists already.
      await compile(unit, 'built-in', headerUnits.filter((h) => h.units.includes(unit)));
    }
    refuse();
    const functions = units.flatMap((u) => u.state.functions);
    // The author's own code: hooks are entry points, and declarations alone make a valid update
    // (an __init change that needs nothing at run time).
    const authored = units.some((u) => u.state.hooks.length > 0 || u.state.declarations.length > 0);
    if (functions.length === 0 && !authored) {
      const lineOnly = units.flatMap((u) => u.state.lineNumbersOnly);
      throw new UserError(
        lineOnly.length > 0
          ? `The patch changes no code: ${lineOnly.length} function(s) differ only in line numbers (${lineOnly.slice(0, 5).join(', ')}).`
          : 'The patch changes no code built into the kernel or its modules.',
        { kind: 'no-code-change' },
      );
    }
    // New functions no changed function calls sit in a module nothing reaches: refused, unless
    // the author's hooks call them, or the author declared the change that calls them (an
    // __init function) handled.
    if (!functions.some((f) => f.status === 'changed') && !authored && functions.length > 0) {
      // New functions that no replaced function calls would sit in a module nothing reaches.
      const added = functions.map((f) => f.name);
      const unit = units.find((u) => u.state.functions.length > 0)?.unit;
      throw new UserError(
        `The patch changes no running code: it only adds ${added.slice(0, 5).join(', ')}${added.length > 5 ? ', …' : ''}, which no changed function calls; it belongs in one update with the code that uses ${added.length === 1 ? 'it' : 'them'}.`,
        { kind: 'only-new-functions', ...(unit !== undefined ? { unit } : {}), ...(added[0] !== undefined ? { function: added[0] } : {}) },
      );
    }
    // A unit rebuilt only for a header it does not change has nothing to carry.
    const carried = units.filter((u) => touched.includes(u.unit) || u.state.functions.length > 0 || u.state.data.length > 0 || u.state.hooks.length > 0);
    const parts = carried.map((u) => updatePartsFromDiff(u.state, u.unit, u.module));
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
      ...authoredParts(carried),
    };
    if (options.headersDir) {
      log(`Building the update module and the core module for ${tree.release}...`);
      // A fix of declarations alone (an __init change that needs nothing now) has no new code.
      if (update.functions.length > 0) {
        const payload = buildPayload(carried);
        const module = await buildUpdateModule(options.headersDir, update.id, payload);
        update.module = { name: module.name, bytes: module.bytes.toString('base64'), externals: payload.externals, ...(payload.renamedFunctions.length > 0 ? { renamedFunctions: payload.renamedFunctions } : {}) };
      }
      update.coreModule = (await coreModuleFor(tree.release, options.headersDir)).toString('base64');
    }
    return { update, units, headerUnits };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
