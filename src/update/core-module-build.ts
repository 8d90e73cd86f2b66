/**
 * The core module (kmod/) built for one kernel release, cached by the hash of its sources:
 * every update carries the core module of its kernel, so a target needs no compiler.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cachePath } from '../host/cache.js';
import { AUTHOR_HEADER, projectRoot } from '../host/project.js';
import { buildExternalModule, type ModuleSources } from '../kbuild/external-module.js';

/** The files of kmod/ the core module is built from (not its tests/ folder, not build products). */
const isCoreSource = (file: string): boolean => file === 'Kbuild' || file.endsWith('.c') || file.endsWith('.h');

/**
 * What the core module is built from: kmod/'s own files (a copy of kmod/ for the tests), and
 * the author's header under include/, which the flat copy of a module's folder leaves out.
 */
export function coreModuleSources(source: string): ModuleSources {
  return { from: source, filter: isCoreSource, files: { [AUTHOR_HEADER]: readFileSync(join(source, AUTHOR_HEADER)) } };
}

export async function coreModuleFor(release: string, headersDir: string): Promise<Buffer> {
  const source = join(projectRoot(), 'kmod');
  // Every file the module is built from, by name: a part added, renamed or changed is a new key.
  const files = [...readdirSync(source).filter(isCoreSource), AUTHOR_HEADER].sort();
  const hash = createHash('sha256');
  for (const file of files) {
    const bytes = readFileSync(join(source, file));
    hash.update(`${file}\0${bytes.length}\0`).update(bytes);
  }
  const key = hash.digest('hex').slice(0, 16);
  const cached = cachePath('core-module', release, key, 'tsplice_core.ko');
  if (existsSync(cached)) return readFileSync(cached);
  const bytes = await buildExternalModule(headersDir, 'tsplice_core', coreModuleSources(source), { what: `the core module for ${release}`, tmpPrefix: 'tsplice-core-' });
  mkdirSync(join(cached, '..'), { recursive: true });
  writeFileSync(cached, bytes);
  return bytes;
}
