/**
 * The core module (kmod/) built for one kernel release, cached by the hash of its sources:
 * every update carries the core module of its kernel, so a target needs no compiler.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cachePath } from '../host/cache.js';
import { projectRoot } from '../host/project.js';
import { buildExternalModule } from '../kbuild/external-module.js';

export async function coreModuleFor(release: string, headersDir: string): Promise<Buffer> {
  const source = join(projectRoot(), 'kmod');
  const hash = createHash('sha256');
  for (const file of ['Kbuild', 'tsplice_core.c']) hash.update(readFileSync(join(source, file)));
  const key = hash.digest('hex').slice(0, 16);
  const cached = cachePath('core-module', release, key, 'tsplice_core.ko');
  if (existsSync(cached)) return readFileSync(cached);
  const copied = (file: string): boolean => file === 'Kbuild' || file.endsWith('.c') || file.endsWith('.h');
  const bytes = await buildExternalModule(headersDir, 'tsplice_core', { from: source, filter: copied }, { what: `the core module for ${release}`, tmpPrefix: 'tsplice-core-' });
  mkdirSync(join(cached, '..'), { recursive: true });
  writeFileSync(cached, bytes);
  return bytes;
}
