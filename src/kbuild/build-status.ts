/**
 * Whether a compilation unit is built into vmlinux for the tree's configuration. kbuild
 * decides this from the unit's folder Makefile (`obj-$(CONFIG_FOO) += foo.o`, composite
 * objects `bar-y += foo.o`) and the configuration in include/config/auto.conf. This reads the
 * same two files for the common forms; anything else is 'unknown', and said so.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export type BuildStatus = 'built-in' | 'module' | 'not built' | 'unknown';

export function readAutoConf(treeDir: string): Map<string, string> {
  const config = new Map<string, string>();
  const path = join(treeDir, 'include/config/auto.conf');
  if (!existsSync(path)) return config;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) config.set(m[1], m[2].replace(/^"|"$/g, ''));
  }
  return config;
}

/** Makefile assignments, with continuation lines joined: [variable, words]. */
function assignments(makefile: string): [string, string[]][] {
  const joined = makefile.replace(/\\\n/g, ' ');
  const out: [string, string[]][] = [];
  for (const line of joined.split('\n')) {
    const m = /^\s*([\w$().-]+)\s*[+:]?=\s*(.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) out.push([m[1], m[2].split(/\s+/).filter(Boolean)]);
  }
  return out;
}

function expand(variable: string, config: Map<string, string>): string {
  return variable.replace(/\$\((CONFIG_\w+)\)/g, (_all, name: string) => config.get(name) ?? '');
}

/** The build status of `<dir>/<name>.o` from the folder's Makefile (or Kbuild). */
export function buildStatus(treeDir: string, unit: string, config = readAutoConf(treeDir), depth = 0): BuildStatus {
  const dir = dirname(unit);
  const object = basename(unit).replace(/\.[cS]$/, '.o');
  const makefilePath = [join(treeDir, dir, 'Kbuild'), join(treeDir, dir, 'Makefile')].find((p) => existsSync(p));
  if (!makefilePath || depth > 3) return 'unknown';
  let best: BuildStatus = 'not built';
  let mentioned = false;
  for (const [variable, words] of assignments(readFileSync(makefilePath, 'utf8'))) {
    if (!words.includes(object)) continue;
    mentioned = true;
    const expanded = expand(variable, config);
    const m = /^(.*)-(y|m|objs|)$/.exec(expanded);
    if (!m) continue;
    const [, owner, suffix] = m;
    let status: BuildStatus;
    if (owner === 'obj' || owner === 'lib' || owner === 'core' || owner === 'obj-y') {
      status = suffix === 'y' ? 'built-in' : suffix === 'm' ? 'module' : 'not built';
    } else if (suffix === 'y' || suffix === 'objs') {
      // A part of a composite object: it is built as that object is.
      status = buildStatus(treeDir, join(dir, `${owner}.c`), config, depth + 1);
    } else {
      status = 'not built';
    }
    if (status === 'built-in') return status;
    if (status === 'module' || (status === 'unknown' && best === 'not built')) best = status;
  }
  return mentioned ? best : 'unknown';
}
