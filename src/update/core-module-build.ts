/**
 * The core module (kmod/) built for one kernel release, cached by the hash of its sources:
 * every update carries the core module of its kernel, so a target needs no compiler.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachePath } from '../host/cache.js';
import { projectRoot } from '../host/project.js';
import { run } from '../host/exec.js';

export async function coreModuleFor(release: string, headersDir: string): Promise<Buffer> {
  const source = join(projectRoot(), 'kmod');
  // Every file the module is built from, by name: a part added, renamed or changed is a new key.
  const files = readdirSync(source).filter((file) => file === 'Kbuild' || file.endsWith('.c') || file.endsWith('.h')).sort();
  const hash = createHash('sha256');
  for (const file of files) {
    const bytes = readFileSync(join(source, file));
    hash.update(`${file}\0${bytes.length}\0`).update(bytes);
  }
  const key = hash.digest('hex').slice(0, 16);
  const cached = cachePath('core-module', release, key, 'tsplice_core.ko');
  if (existsSync(cached)) return readFileSync(cached);
  const dir = mkdtempSync(join(tmpdir(), 'tsplice-core-'));
  try {
    for (const file of files) cpSync(join(source, file), join(dir, file));
    await run(['make', '-C', headersDir, `M=${dir}`, 'modules'], { purpose: `building the core module for ${release}` });
    const bytes = readFileSync(join(dir, 'tsplice_core.ko'));
    mkdirSync(join(cached, '..'), { recursive: true });
    writeFileSync(cached, bytes);
    return bytes;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
