/**
 * The guest's initramfs, in two archives the kernel unpacks one after the other:
 *  - a base archive, cached per lab kernel: busybox, the host's Node binary with the shared
 *    libraries it loads (at their host paths, so the same ELF interpreter path works), the
 *    kernel modules that virtio-9p needs, and /init;
 *  - a run archive, made for each boot: this project (bin/, dist/, production node_modules)
 *    and what to run. Rebuilding only the small one keeps a code change from costing a
 *    100 MB archive.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import { UserError } from '../../src/host/errors.js';
import { projectRoot } from '../../src/host/project.js';
import { cachePath, ensureDir } from '../../src/host/cache.js';
import { CpioArchive } from './cpio.js';
import type { LabKernel } from '../../src/debian/fetch.js';

/** Modules that let the guest mount the host's folder over virtio-9p, with their dependencies. */
const SHARE_MODULES = ['virtio_pci', '9pnet_virtio', '9p'];

/**
 * The 9p tag of the stock image's /lib/modules/RELEASE, which QEMU shares read-only and /init
 * mounts in place of the few modules the archive holds: 390 MB of modules stay out of the
 * initramfs, and modprobe finds every one with its dependencies (modules.dep).
 */
export const MODULES_TAG = 'modules';

/** Where the project sits inside the guest. */
export const GUEST_PROJECT_DIR = '/opt/tsplice';


/** Shared libraries a program loads, as `ldd` lists them (host paths, interpreter included). */
function sharedLibraries(program: string): string[] {
  const r = spawnSync('ldd', [program], { encoding: 'utf8' });
  if (r.status !== 0) throw new UserError(`Cannot list the libraries of ${program} with ldd: ${r.stderr.trim()}`, { kind: 'command-failed', object: program });
  const libs: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

/** Module file names (relative to lib/modules/REL) in load order: dependencies first. */
export function moduleLoadOrder(modulesDep: string, wanted: readonly string[]): string[] {
  const deps = new Map<string, string[]>();
  for (const line of modulesDep.split('\n')) {
    const [file, rest] = line.split(':');
    if (file && rest !== undefined) deps.set(file, rest.trim().split(/\s+/).filter(Boolean));
  }
  const byName = new Map<string, string>();
  for (const file of deps.keys()) byName.set(file.split('/').pop()?.replace(/\.ko(\.\w+)?$/, '') ?? file, file);
  const order: string[] = [];
  const visit = (file: string): void => {
    if (order.includes(file)) return;
    for (const dep of deps.get(file) ?? []) visit(dep);
    order.push(file);
  };
  for (const name of wanted) {
    const file = byName.get(name) ?? byName.get(name.replace(/-/g, '_'));
    if (!file) throw new UserError(`The kernel has no module ${name} (modules.dep lists none).`, { kind: 'missing-file', object: name });
    visit(file);
  }
  return order;
}

/** The guest's /init: mount what a kernel tool needs, mount the share, run the command. */
function initScript(release: string, modules: string[]): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root TERM=linux
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run /root
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
hostname tsplice-lab
ip link set lo up 2>/dev/null
${modules.map((m) => `insmod /lib/modules/${release}/${m}`).join('\n')}
# The kernel asks this program for a module it needs (crypto drivers, protocol families).
echo /bin/modprobe > /proc/sys/kernel/modprobe
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro ${MODULES_TAG} /lib/modules/${release} || echo "tsplice-lab: cannot mount the kernel's modules"
. /etc/tsplice/run.env
for share in $TSPLICE_SHARES; do
  mkdir -p "$share"
  tag=share$((${'$'}{n:-0}))
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none "$tag" "$share" || echo "tsplice-lab: cannot mount $share"
  n=$((${'$'}{n:-0} + 1))
done
cd "$TSPLICE_CWD" || cd /
if [ "$TSPLICE_MODE" = shell ]; then
  echo "tsplice lab shell: root on $(uname -r); exit or Ctrl-D powers the guest off."
  setsid cttyhack sh -l
else
  sh /etc/tsplice/command
  echo "TSPLICE-EXIT-$TSPLICE_NONCE:$?"
fi
sync
poweroff -f
`;
}

/**
 * The cached base archive for a lab kernel; rebuilt when Node, busybox or the modules change.
 */
export function baseArchive(kernel: LabKernel): string {
  const node = realpathSync(process.execPath);
  const busybox = '/bin/busybox';
  if (!existsSync(busybox)) throw new UserError('busybox-static is not installed (/bin/busybox is missing).', { kind: 'missing-program', object: busybox });
  const modulesDep = readFileSync(join(kernel.modulesDir, 'modules.dep'), 'utf8');
  const modules = moduleLoadOrder(modulesDep, SHARE_MODULES);
  const init = initScript(kernel.release, modules);
  const inputs = [node, busybox, ...sharedLibraries(node)].map((p) => `${p}:${statSync(p).size}:${statSync(p).mtimeMs}`);
  const key = createHash('sha256').update(JSON.stringify({ inputs, modules, init, release: kernel.release })).digest('hex').slice(0, 16);
  const dir = ensureDir(cachePath('guest', kernel.release));
  const path = join(dir, `base-${key}.cpio`);
  if (existsSync(path)) return path;

  const archive = new CpioArchive();
  for (const d of ['/proc', '/sys', '/dev', '/tmp', '/run', '/root', '/etc', '/usr/bin', '/sbin', '/usr/sbin']) archive.directory(d);
  archive.file('/bin/busybox', readFileSync(busybox), 0o755);
  archive.file('/init', init, 0o755);
  archive.file('/usr/bin/node', readFileSync(node), 0o755);
  for (const lib of sharedLibraries(node)) archive.file(lib, readFileSync(realpathSync(lib)), 0o755);
  for (const m of modules) archive.file(join('/lib/modules', kernel.release, m), readFileSync(join(kernel.modulesDir, m)));
  archive.file('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  archive.file('/etc/group', 'root:x:0:\n');
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, archive.toBuffer());
  spawnSync('mv', [tmp, path]);
  return path;
}

/** Production dependencies of a package folder, recursively (folders under node_modules). */
export function productionPackages(root: string): string[] {
  const found = new Set<string>();
  const visit = (packageDir: string): void => {
    const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    for (const name of Object.keys(manifest.dependencies ?? {})) {
      const dir = join(root, 'node_modules', name);
      if (found.has(dir) || !existsSync(dir)) continue;
      found.add(dir);
      visit(dir);
    }
  };
  visit(root);
  return [...found];
}

function addTree(archive: CpioArchive, hostDir: string, guestDir: string): void {
  for (const entry of readdirSync(hostDir, { withFileTypes: true })) {
    const host = join(hostDir, entry.name);
    const guest = join(guestDir, entry.name);
    if (entry.isDirectory()) addTree(archive, host, guest);
    else if (entry.isFile() && !entry.name.endsWith('.map')) archive.file(guest, readFileSync(host), statSync(host).mode & 0o777);
  }
}

export interface RunArchiveOptions {
  /** The shell command line to run in the guest, or undefined for an interactive shell. */
  command?: string;
  cwd: string;
  shares: string[];
  nonce: string;
  env?: Record<string, string>;
}

/** The per-boot archive: this project and what to run. */
export function runArchive(options: RunArchiveOptions): Buffer {
  const root = projectRoot();
  const dist = join(root, 'dist');
  if (!existsSync(join(dist, 'src/cli/main.js'))) throw new UserError(`${dist} is not built; run 'npm run build' first.`, { kind: 'missing-file', object: dist });
  const archive = new CpioArchive();
  archive.file(join(GUEST_PROJECT_DIR, 'package.json'), readFileSync(join(root, 'package.json')));
  addTree(archive, join(root, 'bin'), join(GUEST_PROJECT_DIR, 'bin'));
  addTree(archive, join(dist, 'src'), join(GUEST_PROJECT_DIR, 'dist/src'));
  addTree(archive, join(dist, 'tools'), join(GUEST_PROJECT_DIR, 'dist/tools'));
  for (const dir of productionPackages(root)) addTree(archive, dir, join(GUEST_PROJECT_DIR, relative(root, dir)));
  archive.file('/usr/local/bin/tsplice', `#!/bin/sh\nexec /usr/bin/node ${GUEST_PROJECT_DIR}/bin/tsplice.js "$@"\n`, 0o755);
  const env: Record<string, string> = {
    ...options.env,
    TSPLICE_MODE: options.command === undefined ? 'shell' : 'run',
    TSPLICE_CWD: options.cwd,
    TSPLICE_SHARES: options.shares.join(' '),
    TSPLICE_NONCE: options.nonce,
    TSPLICE_IN_GUEST: '1',
  };
  archive.file(
    '/etc/tsplice/run.env',
    Object.entries(env)
      .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
      .join('\n') + '\n',
  );
  archive.file('/etc/tsplice/command', `${options.command ?? 'true'}\n`);
  return archive.toBuffer();
}

export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
