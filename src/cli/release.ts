/** `tsplice release`: the updates a maintainer ships for a kernel when a newer source version comes out. */
import type { Command } from 'commander';
import { availableParallelism } from 'node:os';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { exportPublicKey, newSigningKey, stopGpgAgent } from '../debian/openpgp.js';
import { UserError } from '../host/errors.js';
import { chooseRelease } from '../debian/kernel-choice.js';
import { readPrivateKey } from '../update/signature.js';
import { makeRelease } from '../release/release.js';
import { publishRelease } from '../release/publish.js';
import type { StatusChoice } from '../release/derive.js';
import { printJson, progress } from './output.js';

interface ReleaseFlags {
  kernel?: string;
  to: string;
  output: string;
  sign?: string;
  status: string;
  only?: string;
  adapted?: string;
  jobs?: string;
  revision: string;
  repo?: string;
  gpgHome?: string;
  also: string[];
  json?: boolean;
}

const STATUSES: readonly StatusChoice[] = ['built-in', 'module', 'all'];

export function addReleaseCommand(program: Command): void {
  program
    .command('release')
    .description('make the updates, manifest, Debian package and apt repository of a newer source version of a kernel')
    .option('--kernel <release>', 'the kernel the updates are for (default: oldest complete 6.1)')
    .requiredOption('--to <version>', 'the newer Debian source version, e.g. 6.1.176-1')
    .requiredOption('-o, --output <dir>', 'where the updates, the package and the repository go')
    .option('--sign <key>', 'sign every update with this private key (tsplice key new)')
    .option('--status <which>', 'changed files built in, of modules, or all', 'all')
    .option('--only <files>', 'only these changed files, comma-separated (a cut-down release)')
    .option('--adapted <dir>', 'adapted patches for fixes that need new code (docs/hooks.md)')
    .option('--jobs <n>', 'files derived and updates created at once (default: the number of CPUs)')
    .option('--revision <n>', 'the package revision: version <to>+tsplice<n>', '1')
    .option('--repo <dir>', 'also add the package to the apt repository in this folder')
    .option('--gpg-home <dir>', 'GnuPG home holding the repository signing key (with --repo; tsplice key new-repository)')
    .option('--also <deb>', 'another package to publish in the repository, e.g. tsplice\'s own (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--json', 'print the manifest and where things are as JSON')
    .action(async (opts: ReleaseFlags) => {
      if (!STATUSES.includes(opts.status as StatusChoice)) throw new UserError(`--status takes built-in, module or all, not ${JSON.stringify(opts.status)}.`, { kind: 'bad-argument' });
      if (!/^[1-9]\d{0,3}$/.test(opts.revision)) throw new UserError(`--revision takes a whole number from 1 to 9999, not ${JSON.stringify(opts.revision)}.`, { kind: 'bad-argument' });
      if ((opts.gpgHome !== undefined || opts.also.length > 0) && opts.repo === undefined) throw new UserError('--gpg-home and --also are for a repository: give --repo too.', { kind: 'bad-argument' });
      // Read the key first: a wrong key path should not cost a build.
      const signingKey = opts.sign ? readPrivateKey(opts.sign) : undefined;
      const jobs = opts.jobs !== undefined ? Number(opts.jobs) : availableParallelism();
      if (!(Number.isInteger(jobs) && jobs >= 1 && jobs <= 64)) throw new UserError(`--jobs takes a whole number from 1 to 64, not ${JSON.stringify(opts.jobs)}.`, { kind: 'bad-argument' });
      const kernel = await chooseRelease(opts.kernel, progress);
      const outDir = resolve(opts.output);
      const release = await makeRelease({
        kernel,
        to: opts.to,
        outDir,
        status: opts.status as StatusChoice,
        ...(opts.only ? { only: opts.only.split(',').filter((f) => f !== '') } : {}),
        ...(opts.adapted ? { adaptedDir: resolve(opts.adapted) } : {}),
        ...(signingKey ? { signingKey } : {}),
        jobs,
        log: progress,
      });
      const published = await publishRelease(release, {
        outDir,
        revision: Number(opts.revision),
        ...(opts.repo ? { repoDir: resolve(opts.repo) } : {}),
        ...(opts.gpgHome ? { gpgHome: resolve(opts.gpgHome) } : {}),
        alsoPublish: opts.also.map((d) => resolve(d)),
        log: progress,
      });
      const { manifest } = release;
      const count = (o: string): number => manifest.files.filter((f) => f.outcome === o).length;
      if (opts.json) printJson({ manifest, ...published });
      else {
        process.stdout.write(
          `${manifest.package.name} ${manifest.package.version}: ${manifest.updates.length} updates for ${manifest.files.length} changed files ` +
            `(${count('live')} live, ${count('needs-new-code')} need new code, ${count('needs-reboot')} need a reboot, ${count('no-code-change')} change no code)\n`,
        );
        process.stdout.write(`package ${published.deb}\n`);
        if (published.repository) process.stdout.write(`repository ${published.repository}\n`);
      }
    });
}

/** `tsplice key new-repository`: the OpenPGP key a release's apt repository is signed with. */
export function addRepositoryKeyCommand(key: Command): void {
  key
    .command('new-repository')
    .description('make the key that signs a release\'s apt repository, and the keyring clients name in signed-by')
    .argument('<gpg-home>', 'a new GnuPG home folder to hold the secret key (give it to tsplice release --gpg-home)')
    .option('--name <name>', 'the key\'s user name', 'tsplice updates')
    .option('--email <address>', 'the key\'s address', 'tsplice@localhost')
    .action(async (gpgHome: string, opts: { name: string; email: string }) => {
      const home = resolve(gpgHome);
      if (existsSync(home) && readdirSync(home).length > 0) throw new UserError(`${home} is not empty: a repository key gets a GnuPG home of its own.`, { kind: 'file-exists', object: home });
      const fingerprint = await newSigningKey(home, opts.name, opts.email, progress);
      const keyring = join(home, 'repository-keyring.gpg');
      await exportPublicKey(home, fingerprint, keyring);
      await stopGpgAgent(home);
      process.stdout.write(`key ${fingerprint}\nkeyring for clients (/etc/apt/keyrings/, signed-by=) ${keyring}\n`);
    });
}
