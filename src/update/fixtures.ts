/** A small well-formed update, for the tests of the file format, its shape and its signatures. */
import type { UpdatePackage } from './format.js';
import { moduleNameFor } from './module.js';
import type { InstalledManifest } from './installed-manifest.js';

export const SAMPLE_ID = 'proc-version-string-3a7ff6ee';

export function sampleUpdate(): UpdatePackage {
  const code = (bytes: number[]) => ({ size: bytes.length, bytes: Buffer.from(bytes).toString('base64'), relocations: [] });
  return {
    format: 1,
    id: SAMPLE_ID,
    createdAt: '2026-12-04T00:00:00.000Z',
    target: { release: '6.1.0-47-amd64', distributionVersion: '6.1.170-3', sourceVersion: '6.1.170-3' },
    patches: [{ name: 'fix.patch', sha256: 'a'.repeat(64), text: '--- a/x\n+++ b/x\n' }],
    units: [{ unit: 'fs/proc/version.c', object: 'fs/proc/version.o', builtIn: 'y' }],
    functions: [
      {
        name: 'version_proc_show',
        status: 'changed',
        unit: 'fs/proc/version.c',
        section: '.text.version_proc_show',
        pre: code([0x0f, 0x1f, 0x44, 0x00, 0x00, 0xc3]),
        post: {
          size: 10,
          bytes: Buffer.from([0x0f, 0x1f, 0x44, 0x00, 0x00, 0xe8, 0, 0, 0, 0]).toString('base64'),
          relocations: [{ offset: 6, type: 'R_X86_64_PLT32', addend: '-4', target: { kind: 'symbol', name: 'seq_puts', addend: '0', local: false } }],
        },
      },
    ],
    data: [{ name: '.LC0', status: 'new', unit: 'fs/proc/version.c', section: '.rodata.str1.1' }],
    specialEntries: [],
    lineNumbersOnly: [],
    postObjects: [{ unit: 'fs/proc/version.c', bytes: Buffer.from('ELF').toString('base64') }],
    module: { name: moduleNameFor(SAMPLE_ID), bytes: Buffer.from('ko').toString('base64'), externals: [{ symbol: 'seq_puts', name: 'seq_puts', unit: 'fs/proc/version.c', local: false }] },
  };
}

/** An installed updates package's manifest of two updates and three changed files. */
export function sampleManifest(): InstalledManifest {
  return {
    format: 1,
    kernel: '6.1.0-47-amd64',
    from: '6.1.170-3',
    to: '6.1.176-1',
    package: { name: 'tsplice-updates-6.1.0-47-amd64', version: '6.1.176-1+tsplice1' },
    updates: [
      { id: 'kernel-audit-c-1a2b', file: '0001-kernel-audit-c.tsplice', sha256: 'a'.repeat(64), sources: ['kernel/audit.c'], modules: ['vmlinux'] },
      { id: 'nft-ct-3c4d', file: '0002-nft-ct.tsplice', sha256: 'b'.repeat(64), sources: ['net/netfilter/nft_ct.c'], modules: ['nft_ct'] },
    ],
    files: [
      { path: 'kernel/audit.c', outcome: 'live', update: 'kernel-audit-c-1a2b' },
      { path: 'mm/slab.h', outcome: 'needs-reboot', reason: 'a changed structure layout' },
      { path: 'net/ipv4/udp_tunnel_core.c', outcome: 'no-code-change', reason: 'only adds functions nothing calls' },
    ],
  };
}
