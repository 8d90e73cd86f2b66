/**
 * tsplice's own Debian package, `tsplice_<version>_amd64.deb`, from this repository (built
 * first: `npm run package:deb`). It holds what a target runs and nothing of the build host's
 * or the lab's: bin/, the compiled dist/src (tests left out), package.json and the production
 * node_modules under /usr/lib/tsplice; the /usr/bin/tsplice launcher; tsplice.service; the
 * operator's guide. It runs on Debian's own nodejs (docs/operating.md, "Which Node").
 *
 * Architecture amd64, though every file is JavaScript: tsplice patches x86-64 kernels only,
 * and `all` would let apt offer it to an arm64 server where it can do nothing.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { writeDebPackage, type DebFile, type DebPackage } from '../../src/debian/deb-package.js';
import { projectRoot } from '../../src/host/project.js';
import { productionPackages } from '../lab/guest-image.js';

/** Where the package puts the program; the updates packages' folders live under it too. */
export const INSTALL_DIR = '/usr/lib/tsplice';
/** The Debian revision of this packaging, after the upstream version in package.json. */
export const DEBIAN_REVISION = '1';

/** Every file under `dir` except tests, as DebFiles under `target`. */
function treeFiles(dir: string, target: string, keep: (path: string) => boolean = () => true): DebFile[] {
  const files: DebFile[] = [];
  const walk = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && keep(path)) files.push({ path: join(target, relative(dir, path)), from: path, mode: statSync(path).mode & 0o111 ? 0o755 : 0o644 });
    }
  };
  walk(dir);
  return files;
}

/** The package description for the repository at `root` (compiled: dist/src exists). */
export function tsplicePackage(root = projectRoot()): DebPackage {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; engines?: { node?: string } };
  const packaging = join(root, 'packaging');
  // Tests and what only tests use stay on the build host.
  const notTest = (path: string): boolean => !/\.test\.js(\.map)?$|\/test-support\/|\/fixtures\.js(\.map)?$/.test(path);
  return {
    name: 'tsplice',
    version: `${manifest.version}-${DEBIAN_REVISION}`,
    architecture: 'amd64',
    maintainer: 'tsplice maintainers <tsplice@example.org>',
    description: [
      'rebootless updates for the running Linux kernel',
      'tsplice applies binary updates, made from source patches, to the running kernel',
      'without a reboot, and undoes them. Updates come in packages per kernel release',
      '(tsplice-updates-RELEASE), applied when installed and again at every boot by',
      'tsplice.service.',
    ].join('\n'),
    // Debian 12's nodejs is 18.20 (package.json engines); kmod gives insmod and rmmod.
    depends: ['nodejs (>= 18.19)', 'kmod'],
    section: 'admin',
    priority: 'optional',
    files: [
      { path: '/usr/bin/tsplice', from: join(packaging, 'tsplice.launcher'), mode: 0o755 },
      { path: '/lib/systemd/system/tsplice.service', from: join(packaging, 'tsplice.service'), mode: 0o644 },
      { path: `${INSTALL_DIR}/package.json`, from: join(root, 'package.json'), mode: 0o644 },
      { path: `${INSTALL_DIR}/bin/tsplice.js`, from: join(root, 'bin', 'tsplice.js'), mode: 0o755 },
      ...treeFiles(join(root, 'dist', 'src'), `${INSTALL_DIR}/dist/src`, notTest),
      ...productionPackages(root).flatMap((dir) => treeFiles(dir, join(INSTALL_DIR, relative(root, dir)))),
      { path: '/usr/share/doc/tsplice/operating.md', from: join(root, 'docs', 'operating.md'), mode: 0o644 },
      { path: '/usr/share/doc/tsplice/README.md', from: join(root, 'README.md'), mode: 0o644 },
    ],
    scripts: {
      postinst: readFileSync(join(packaging, 'tsplice.postinst'), 'utf8'),
      postrm: readFileSync(join(packaging, 'tsplice.postrm'), 'utf8'),
    },
  };
}

/** Builds the package into `outDir`; returns its path. */
export function buildTsplicePackage(outDir: string, root = projectRoot()): Promise<string> {
  return writeDebPackage(tsplicePackage(root), outDir);
}
