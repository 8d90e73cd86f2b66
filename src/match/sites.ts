/**
 * Where the running kernel may legally differ from the pre code: the sites it rewrote at boot.
 * Each comes from a special-section entry of the pre code that the update carries, and each
 * kind has its own set of running forms (measured on the lab kernel; see
 * shared notes "How the running kernel's text differs from the on-disk vmlinux").
 */
import { relocationFieldSize } from '../elf/index.js';
import type { UpdateFunction, UpdateSpecialEntry } from '../update/format.js';

export type SiteKind =
  | 'fentry' // __mcount_loc: call __fentry__ -> nop5, or a call into an ftrace trampoline
  | 'return-thunk' // .return_sites: jmp __x86_return_thunk -> ret; int3 x4, or another thunk
  | 'retpoline' // .retpoline_sites: call/jmp __x86_indirect_thunk_r -> kept, or an indirect call/jmp
  | 'lock-prefix' // .smp_locks: lock -> ds on a uniprocessor
  | 'alternative' // .altinstructions: replacement copied in and padded
  | 'paravirt' // .parainstructions: indirect pv call -> inline native code or a direct call
  | 'static-call' // .static_call_sites: call __SCT__x -> direct call, nop5, ret0
  | 'jump-label'; // __jump_table: nop <-> jmp, 2 or 5 bytes

export interface RewriteSite {
  kind: SiteKind;
  /** Offset from the function's entry. */
  offset: number;
  /** Bytes the site covers in the pre code. */
  length: number;
}

const SECTION_KIND: Record<string, SiteKind> = {
  __mcount_loc: 'fentry',
  '.return_sites': 'return-thunk',
  '.retpoline_sites': 'retpoline',
  '.smp_locks': 'lock-prefix',
  '.altinstructions': 'alternative',
  '.parainstructions': 'paravirt',
  '.static_call_sites': 'static-call',
  __jump_table: 'jump-label',
};

/** Length of a site in the pre code, from the entry or the code itself. */
function siteLength(kind: SiteKind, entry: UpdateSpecialEntry, code: Uint8Array, offset: number): number {
  const bytes = Buffer.from(entry.bytes, 'base64');
  switch (kind) {
    case 'fentry':
    case 'return-thunk':
    case 'static-call':
      return 5;
    case 'retpoline':
      // call/jmp rel32, possibly behind a cs prefix
      return code[offset] === 0x2e ? 6 : 5;
    case 'lock-prefix':
      return 1;
    case 'alternative':
      return bytes[10] ?? 0; // struct alt_instr: instrlen
    case 'paravirt':
      return bytes[9] ?? 0; // struct paravirt_patch_site: len
    case 'jump-label':
      // eb xx / 66 90 are two bytes; e9 rel32 / 0f 1f 44 00 00 five.
      return code[offset] === 0xeb || (code[offset] === 0x66 && code[offset + 1] === 0x90) ? 2 : 5;
  }
}

/** The rewrite sites of one function's pre code, sorted by offset. */
export function rewriteSites(fn: UpdateFunction, entries: readonly UpdateSpecialEntry[]): RewriteSite[] {
  const code = Buffer.from(fn.pre?.bytes ?? '', 'base64');
  const sites: RewriteSite[] = [];
  for (const entry of entries) {
    if (entry.side !== 'pre' || entry.owner !== fn.name || entry.unit !== fn.unit) continue;
    const kind = SECTION_KIND[entry.section];
    if (!kind) continue;
    const offset = Number(entry.offsetInOwner);
    const length = siteLength(kind, entry, code, offset);
    if (length > 0) sites.push({ kind, offset, length });
  }
  sites.sort((a, b) => a.offset - b.offset || b.length - a.length);
  return sites;
}

const NOP5 = [0x0f, 0x1f, 0x44, 0x00, 0x00];

function startsWith(bytes: Uint8Array, prefix: readonly number[]): boolean {
  return prefix.every((b, i) => bytes[i] === b);
}

/**
 * Whether `running` is a form the kernel may have rewritten the site `pre` into. Alternative
 * and paravirt regions take replacement code the update does not carry, so any bytes of the
 * right length are accepted there: the rest of the function still has to match exactly.
 */
export function acceptsRunningForm(site: RewriteSite, pre: Uint8Array, running: Uint8Array): boolean {
  switch (site.kind) {
    case 'fentry':
      return startsWith(running, NOP5) || running[0] === 0xe8;
    case 'return-thunk':
      return startsWith(running, [0xc3, 0xcc, 0xcc, 0xcc, 0xcc]) || running[0] === 0xe9 || Buffer.from(running).equals(Buffer.from(pre));
    case 'retpoline':
      // `cs call __x86_indirect_thunk_r11` (-mindirect-branch-cs-prefix) kept as a thunk call:
      // the prefix stays and the rel32 now reaches the thunk.
      if (pre[0] === 0x2e && running[0] === 0x2e && (running[1] === 0xe8 || running[1] === 0xe9)) return running[1] === pre[1];
      return Buffer.from(running).equals(Buffer.from(pre)) || running[0] === 0xe8 || running[0] === 0xe9 || running[0] === 0xff || running[0] === 0x41 || running[0] === 0x0f;
    case 'lock-prefix':
      return running[0] === 0xf0 || running[0] === 0x3e;
    case 'alternative':
    case 'paravirt':
      return true;
    case 'static-call':
      return (
        running[0] === 0xe8 ||
        running[0] === 0xe9 ||
        startsWith(running, NOP5) ||
        startsWith(running, [0x2e, 0x2e, 0x2e, 0x31, 0xc0]) ||
        startsWith(running, [0xc3, 0xcc, 0xcc, 0xcc, 0xcc])
      );
    case 'jump-label':
      return site.length === 2
        ? startsWith(running, [0x66, 0x90]) || running[0] === 0xeb
        : startsWith(running, NOP5) || running[0] === 0xe9;
  }
}

/**
 * The bytes of a module function's pre code where its running copy may differ: relocation
 * fields, and the sites the loader rewrites (ftrace, alternatives, jump labels, static calls).
 * The core module compares a module's copy with the pre code outside these (kmod/late.c).
 */
export function identityMask(fn: UpdateFunction, entries: readonly UpdateSpecialEntry[]): { offset: number; length: number }[] {
  const ranges = [
    ...(fn.pre?.relocations ?? []).map((r) => ({ offset: r.offset, length: relocationFieldSize(r.type) })),
    ...rewriteSites(fn, entries).map((s) => ({ offset: s.offset, length: s.length })),
  ].sort((a, b) => a.offset - b.offset);
  const merged: { offset: number; length: number }[] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r.offset <= last.offset + last.length) last.length = Math.max(last.length, r.offset + r.length - last.offset);
    else merged.push({ ...r });
  }
  return merged;
}
