/** `tsplice create`, `inspect` and `key new`: making an update from a patch, reading one, signing keys. */
import type { Command } from 'commander';
import { UserError } from '../host/errors.js';
import { createUpdate } from '../create/create.js';
import { labKernel } from '../debian/fetch.js';
import { chooseRelease } from '../debian/kernel-choice.js';
import { prepareTree, preparedTree, preparedTreeAt } from '../kbuild/tree.js';
import { readUpdate, readUpdateFile, writeUpdate, type UpdateFunction, type UpdatePackage } from '../update/format.js';
import { newKeyPair, readPrivateKey } from '../update/signature.js';
import { printJson, progress } from './output.js';
import { addRepositoryKeyCommand } from './release.js';

/** Where a function is, as the CLI prints it: its unit, and its module when it is not vmlinux's. */
function placeOf(f: UpdateFunction): string {
  return f.module !== undefined ? `${f.unit}, module ${f.module}` : f.unit;
}

function summary(update: UpdatePackage): object {
  return {
    id: update.id,
    format: update.format,
    target: update.target,
    createdAt: update.createdAt,
    units: update.units.map((u) => u.unit),
    ...(update.units.some((u) => u.module !== undefined) ? { modules: [...new Set(update.units.flatMap((u) => (u.module !== undefined ? [u.module] : [])))] } : {}),
    functions: update.functions.map((f) => ({
      name: f.name,
      status: f.status,
      unit: f.unit,
      ...(f.module !== undefined ? { module: f.module } : {}),
      preSize: f.pre?.size,
      postSize: f.post.size,
    })),
    data: update.data.map((d) => ({ name: d.name, status: d.status, size: d.data?.size })),
    specialEntries: update.specialEntries.length,
    lineNumbersOnly: update.lineNumbersOnly,
    hooks: update.hooks ?? [],
    declarations: update.declarations ?? [],
    shadowIds: update.shadowIds ?? [],
  };
}

export function addCreateCommands(program: Command): void {
  program
    .command('create')
    .description('turn a kernel source patch into a binary update by pre-post differencing')
    .option('--kernel <release>', 'lab kernel whose prepared tree to use (default: oldest complete 6.1)')
    .option('--source <dir>', 'a prepared kernel tree (.config and prepare done) instead of the lab\'s')
    .requiredOption('--patch <file>', 'unified diff against the kernel source (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('-o, --output <file>', 'where to write the update (default: <id>.tsplice)')
    .option('--id <name>', 'the update\'s id (default: from the patch name and contents)')
    .option('--on-top-of <update>', 'an update this one stacks on: its patches are applied first on both sides')
    .option('--sign <key>', 'sign the update with this private key (tsplice key new)')
    .option('--json', 'print what the update holds as JSON (a refusal: {"error": {kind, unit, function, ...}})')
    .option('--verbose', 'on a failed compile, print the whole command and its output to stderr')
    .action(async (opts: { kernel?: string; source?: string; patch: string[]; output?: string; id?: string; onTopOf?: string; sign?: string; json?: boolean; verbose?: boolean }) => {
      // Read the key first: a wrong key path should not cost a build.
      const signingKey = opts.sign ? readPrivateKey(opts.sign) : undefined;
      let tree;
      let distributionVersion: string | undefined;
      let headersDir: string | undefined;
      if (opts.source) {
        tree = preparedTreeAt(opts.source);
      } else {
        const release = await chooseRelease(opts.kernel, progress);
        const kernel = await labKernel(release, progress);
        distributionVersion = kernel.version;
        headersDir = kernel.headersDir;
        tree = preparedTree(release, kernel.version) ?? (await prepareTree(release, progress));
      }
      const started = Date.now();
      const { update } = await createUpdate({
        tree,
        patches: opts.patch,
        ...(opts.id ? { id: opts.id } : {}),
        ...(distributionVersion ? { distributionVersion } : {}),
        ...(headersDir ? { headersDir } : {}),
        ...(opts.onTopOf ? { onTopOf: readUpdate(opts.onTopOf) } : {}),
        log: progress,
      });
      const output = opts.output ?? `${update.id}.tsplice`;
      writeUpdate(output, update, signingKey);
      if (opts.json) printJson({ ...summary(update), output, seconds: (Date.now() - started) / 1000 });
      else {
        process.stdout.write(`${output}: update ${update.id} for ${update.target.release}\n`);
        for (const f of update.functions) process.stdout.write(`  ${f.status.padEnd(7)} ${f.name}  (${placeOf(f)})\n`);
        for (const d of update.data) process.stdout.write(`  new data ${d.name}\n`);
      }
    });

  program
    .command('inspect')
    .description('show what an update holds: target kernel, functions, data, sizes, hooks, declarations, shadow ids')
    .argument('<file>', 'an update made by tsplice create')
    .option('--json', 'print JSON')
    .action((file: string, opts: { json?: boolean }) => {
      const { update, signature } = readUpdateFile(file);
      if (opts.json) {
        printJson({ ...summary(update), signedBy: signature?.keyId ?? null });
        return;
      }
      process.stdout.write(`update ${update.id} (format ${update.format}), made ${update.createdAt}\n`);
      process.stdout.write(signature ? `signed by key ${signature.keyId}\n` : 'not signed\n');
      process.stdout.write(`target: ${update.target.release}${update.target.distributionVersion ? ` (${update.target.distributionVersion})` : ''}, source ${update.target.sourceVersion}\n`);
      for (const f of update.functions) {
        process.stdout.write(`  ${f.status.padEnd(7)} ${f.name}  ${placeOf(f)}  ${f.pre ? `${f.pre.size} -> ` : ''}${f.post.size} bytes\n`);
      }
      for (const d of update.data) process.stdout.write(`  new data ${d.name}${d.data ? `  ${d.data.size} bytes` : ''}\n`);
      process.stdout.write(`  ${update.specialEntries.length} special-section entries\n`);
      for (const h of update.hooks ?? []) process.stdout.write(`  hook ${h.kind.padEnd(13)} ${h.function}  ${h.unit}\n`);
      for (const d of update.declarations ?? []) process.stdout.write(`  declared tsplice_${d.kind}(${d.symbol})  ${d.unit}\n`);
      for (const id of [...new Set((update.shadowIds ?? []).map((u) => u.id))]) {
        const users = (update.shadowIds ?? []).filter((u) => u.id === id).map((u) => `${u.function} (${u.call.replace(/^tsplice_shadow_/, '')})`);
        process.stdout.write(`  shadow id ${id}  ${[...new Set(users)].join(', ')}\n`);
      }
      const authored = (update.hooks?.length ?? 0) + (update.declarations?.length ?? 0) > 0;
      if (update.functions.length === 0 && !authored) throw new UserError(`${file} carries no function.`, { kind: 'nothing-to-carry', object: file });
    });

  const key = program.command('key').description('signing keys for updates and for their apt repositories');
  key
    .command('new')
    .description('make an Ed25519 key pair: FILE (private, mode 0600) and FILE.pub (put it in /etc/tsplice/keys on targets)')
    .argument('<file>', 'where to write the private key')
    .action((file: string) => {
      const id = newKeyPair(file);
      process.stdout.write(`key ${id}: private ${file}, public ${file}.pub\n`);
    });
  addRepositoryKeyCommand(key);
}
