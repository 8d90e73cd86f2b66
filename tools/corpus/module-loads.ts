/**
 * Whether each module fix's module loads in the lab guest: the corpus manifest records it
 * (`loadsInLab`, and `loadError` with modprobe's words when it does not), from one boot that
 * runs `modprobe M` then `modprobe -r M` for each module, one at a time, so that no driver is
 * tried beside another one's state (module-loads-cli.ts). Most drivers load under QEMU without
 * their hardware (they register and wait); one that does not is its own outcome in the
 * corpus, not counted as applied.
 */
import type { CorpusManifest } from '../../src/release/derive.js';

export interface ModuleLoad {
  loads: boolean;
  /** modprobe's last line, when it failed. */
  error?: string;
}

/** The guest's shell script: each module loaded and unloaded, its result on one line. */
export function loadScript(modules: readonly string[]): string {
  const lines = modules.map(
    (m) => `if out=$(modprobe ${m} 2>&1); then echo "tsplice-load ok ${m}"; modprobe -r ${m} >/dev/null 2>&1; else echo "tsplice-load failed ${m}: $(echo "$out" | tail -n 1)"; fi`,
  );
  return `${lines.join('\n')}\n`;
}

/** The script's lines (`tsplice-load ok M`, `tsplice-load failed M: words`), by module. */
export function parseLoadLines(lines: readonly string[]): Map<string, ModuleLoad> {
  const found = new Map<string, ModuleLoad>();
  for (const line of lines) {
    const m = /^tsplice-load (ok|failed) ([\w-]+)(?::\s*(.*))?$/.exec(line.trim());
    if (!m?.[2]) continue;
    found.set(m[2], m[1] === 'ok' ? { loads: true } : { loads: false, error: (m[3] ?? '').trim() || 'modprobe failed' });
  }
  return found;
}

/** The modules of the manifest's entries, each once, sorted. */
export function manifestModules(manifest: CorpusManifest): string[] {
  return [...new Set(manifest.files.flatMap((f) => (f.module !== undefined ? [f.module] : [])))].sort();
}

/** Writes the results into the entries; an entry whose module was not tried gets neither field. */
export function recordLoads(manifest: CorpusManifest, found: ReadonlyMap<string, ModuleLoad>, checked: CorpusManifest['loadsChecked']): void {
  for (const entry of manifest.files) {
    delete entry.loadsInLab;
    delete entry.loadError;
    const result = entry.module !== undefined ? found.get(entry.module) : undefined;
    if (!result) continue;
    entry.loadsInLab = result.loads;
    if (result.error !== undefined) entry.loadError = result.error;
  }
  if (checked) manifest.loadsChecked = checked;
}
