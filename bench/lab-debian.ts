/**
 * `npm run bench:lab-debian`: what the Debian disk guest costs against the initramfs guest.
 * Prints the image's size, then, for each guest, the time from starting the machine (QEMU, or
 * the reset of a reboot) to the lab's command running, on the host's clock, and the guest's own
 * uptime at that moment. The Debian guest is measured in one QEMU session of RUNS boots (the
 * first a cold start, the others `systemctl reboot`s); the initramfs guest in RUNS `lab run`s.
 * The image is built first when the cache lacks it (its build time is printed by the build).
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../src/host/project.js';
import { chooseRelease } from '../src/debian/kernel-choice.js';
import { debianRoot } from '../tools/lab/debian-root.js';
import { runDebianGuest } from '../tools/lab/debian-guest.js';

const RUNS = 4;
const log = (message: string): void => void process.stderr.write(`${message}\n`);

function summary(values: number[], unit = 's'): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  return `median ${median.toFixed(1)} ${unit} (min ${sorted[0]?.toFixed(1)}, max ${sorted.at(-1)?.toFixed(1)}, n=${values.length})`;
}

const uptime = (lines: string[]): number => Number(lines.find((l) => /^\d+\.\d+ /.test(l))?.split(' ')[0]);

const rows: [string, string][] = [];
const release = await chooseRelease(undefined, log);
const root = await debianRoot(release, log);
const image = statSync(root.image);
rows.push(['Debian image (root.raw)', `${(image.size / 2 ** 30).toFixed(0)} GiB sparse, ${(image.blocks * 512 / 1e6).toFixed(0)} MB on disk`]);
rows.push(['Debian kernel + initrd', `${((statSync(root.vmlinuz).size + statSync(root.initrd).size) / 1e6).toFixed(0)} MB`]);

const share = projectRoot();
const session = await runDebianGuest({ root, shares: [share], boots: Array.from({ length: RUNS }, () => 'cat /proc/uptime'), timeoutSeconds: 1800, onLine: () => {} });
const [cold, ...reboots] = session.boots;
rows.push(['Debian: start to script, cold (host)', `${((cold?.bootMs ?? NaN) / 1000).toFixed(1)} s, guest uptime ${uptime(cold?.lines ?? []).toFixed(1)} s`]);
rows.push(['Debian: reboot to script (host)', summary(reboots.map((b) => b.bootMs / 1000))]);
rows.push(['Debian: guest uptime at script', summary(session.boots.map((b) => uptime(b.lines)))]);
rows.push(['Debian: session of all boots (wall)', `${(session.elapsedMs / 1000).toFixed(1)} s for ${RUNS} boots`]);

const cli = join(projectRoot(), 'bin', 'tsplice.js');
const initramfs = Array.from({ length: RUNS }, () => {
  const started = Date.now();
  const r = spawnSync(process.execPath, [cli, 'lab', 'run', '--', 'cat', '/proc/uptime'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`tsplice lab run failed with status ${r.status}`);
  return { wall: (Date.now() - started) / 1000, uptime: uptime(r.stdout.split('\n')) };
});
rows.push(['initramfs: lab run (wall, incl. archive)', summary(initramfs.map((r) => r.wall))]);
rows.push(['initramfs: guest uptime at command', summary(initramfs.map((r) => r.uptime))]);

const width = Math.max(...rows.map(([k]) => k.length));
for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
