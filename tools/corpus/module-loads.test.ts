import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { CorpusEntry, CorpusManifest } from '../../src/release/derive.js';
import { loadScript, manifestModules, parseLoadLines, recordLoads } from './module-loads.js';

const entry = (file: string, module?: string): CorpusEntry => ({
  file,
  unit: file,
  status: module ? 'module' : 'built-in',
  ...(module ? { module } : {}),
  headers: [],
  compile: 'alone',
  patch: 'p.patch',
  diffBytes: 1,
  sha256: '0',
});

it('loads and unloads each module on a line of its own, and reads the results', () => {
  const script = loadScript(['nft_ct', 'amdgpu']);
  assert.equal(script.split('\n').filter(Boolean).length, 2);
  assert.match(script, /^if out=\$\(modprobe nft_ct 2>&1\); then echo "tsplice-load ok nft_ct"; modprobe -r nft_ct/m);
  const found = parseLoadLines([
    'tsplice-load ok nft_ct',
    '[   12.345] random kernel line',
    'tsplice-load failed amdgpu: modprobe: ERROR: could not insert \'amdgpu\': No such device',
    'tsplice-load failed bare:',
  ]);
  assert.deepEqual(found.get('nft_ct'), { loads: true });
  assert.deepEqual(found.get('amdgpu'), { loads: false, error: 'modprobe: ERROR: could not insert \'amdgpu\': No such device' });
  assert.deepEqual(found.get('bare'), { loads: false, error: 'modprobe failed' });
  assert.equal(found.size, 3);
});

it('records in each module entry whether its module loads, and nothing for one not tried', () => {
  const manifest = { files: [entry('kernel/a.c'), entry('net/x.c', 'nft_ct'), entry('drivers/y.c', 'amdgpu'), entry('drivers/z.c', 'untried'), entry('net/w.c', 'nft_ct')] } as CorpusManifest;
  assert.deepEqual(manifestModules(manifest), ['amdgpu', 'nft_ct', 'untried']);
  recordLoads(manifest, new Map([['nft_ct', { loads: true }], ['amdgpu', { loads: false, error: 'No such device' }]]), { at: 'now', release: 'r', command: 'c' });
  assert.deepEqual(manifest.files.map((f) => [f.file, f.loadsInLab, f.loadError]), [
    ['kernel/a.c', undefined, undefined],
    ['net/x.c', true, undefined],
    ['drivers/y.c', false, 'No such device'],
    ['drivers/z.c', undefined, undefined],
    ['net/w.c', true, undefined],
  ]);
  assert.deepEqual(manifest.loadsChecked, { at: 'now', release: 'r', command: 'c' });
});
