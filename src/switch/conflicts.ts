/**
 * Other users of a function's first bytes that a jmp written after its __fentry__ site would
 * break or be bypassed by, checked before matching so that the refusal names them:
 * - a kprobe inside the function (its int3, or an optimized probe's jmp, is in the bytes that
 *   matching compares and, near the entry, where the jmp goes; disarming it later would write
 *   its saved byte into the jmp). A probe at the entry of a function with a __fentry__ site is
 *   ftrace-based, patches nothing, and is allowed;
 * - an ftrace user that changes where the function continues (IPMODIFY: livepatch, a kprobe
 *   with a post handler, BPF override) or a direct trampoline: it runs at the __fentry__ site,
 *   before the jmp, and the new code would never run;
 * - a livepatch of the function (also IPMODIFY, named by its patch).
 * Each source is read where it is mounted (debugfs, tracefs, sysfs); the core module checks the
 * jmp's own bytes against kprobes again when it stages and inside the stop.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../host/errors.js';

/** A probed or redirected function, and why it cannot be replaced now. */
export interface Conflict {
  function: string;
  reason: string;
}

/** `ffffffff8114b7c5  k  do_nanosleep+0x5    [FTRACE]` -> function, offset, flags. */
export function parseKprobeList(text: string): { function: string; offset: number; flags: string }[] {
  const probes: { function: string; offset: number; flags: string }[] = [];
  for (const line of text.split('\n')) {
    const m = /^[0-9a-f]+\s+[kr]\s+([A-Za-z0-9_.$]+)\+0x([0-9a-f]+)(?:\s+\[[^\]]*\])*\s*(.*)$/.exec(line.trim());
    if (!m?.[1] || m[2] === undefined) continue;
    probes.push({ function: m[1], offset: parseInt(m[2], 16), flags: line.slice(line.indexOf(m[1])) });
  }
  return probes;
}

/** enabled_functions: `do_nanosleep (1) R I   \ttramp: …` -> the functions with I or D. */
export function parseRedirectedFunctions(text: string): Map<string, string> {
  const redirected = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(\S+)(?: \[\S+\])? \((\d+)\)( R| {2})( I| {2})( D| {2})?/.exec(line);
    if (!m?.[1]) continue;
    const kinds = [m[4] === ' I' ? 'an ftrace user that changes where it continues (IPMODIFY)' : '', m[5] === ' D' ? 'a direct ftrace trampoline' : ''].filter((k) => k);
    if (kinds.length > 0) redirected.set(m[1], kinds.join(' and '));
  }
  return redirected;
}

function readIfPresent(path: string): string | undefined {
  try {
    return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  } catch {
    return undefined;
  }
}

/** /sys/kernel/livepatch/PATCH/OBJECT/FUNCTION,SYMPOS -> function -> patch. */
function livepatchedFunctions(root = '/sys/kernel/livepatch'): Map<string, string> {
  const patched = new Map<string, string>();
  if (!existsSync(root)) return patched;
  for (const patch of readdirSync(root)) {
    const patchDir = join(root, patch);
    for (const object of readdirSync(patchDir, { withFileTypes: true })) {
      if (!object.isDirectory()) continue;
      for (const fn of readdirSync(join(patchDir, object.name), { withFileTypes: true })) {
        if (fn.isDirectory()) patched.set(fn.name.split(',')[0] ?? fn.name, patch);
      }
    }
  }
  return patched;
}

/**
 * The conflicts of the functions an update replaces; `fentry` says which have a __fentry__
 * site (a probe at their entry is ftrace-based and allowed).
 */
export function findConflicts(functions: readonly { name: string; fentry: boolean }[]): Conflict[] {
  const wanted = new Map(functions.map((f) => [f.name, f.fentry]));
  const conflicts: Conflict[] = [];
  const probes = readIfPresent('/sys/kernel/debug/kprobes/list');
  for (const p of probes ? parseKprobeList(probes) : []) {
    const fentry = wanted.get(p.function);
    if (fentry === undefined || (fentry && p.offset === 0)) continue;
    conflicts.push({ function: p.function, reason: `a kprobe is registered at ${p.function}+0x${p.offset.toString(16)}` });
  }
  for (const [name, patch] of livepatchedFunctions()) {
    if (wanted.has(name)) conflicts.push({ function: name, reason: `livepatch ${patch} replaces it` });
  }
  const enabled = readIfPresent('/sys/kernel/tracing/enabled_functions') ?? readIfPresent('/sys/kernel/debug/tracing/enabled_functions');
  for (const [name, kind] of enabled ? parseRedirectedFunctions(enabled) : []) {
    if (wanted.has(name) && !conflicts.some((c) => c.function === name)) conflicts.push({ function: name, reason: `${kind} is attached to it` });
  }
  return conflicts;
}

/** Refuses, in one sentence, an update whose functions another mechanism holds. */
export function refuseConflicts(id: string, functions: readonly { name: string; fentry: boolean }[]): void {
  const found = findConflicts(functions);
  const first = found[0];
  if (!first) return;
  const more = found.length > 1 ? ` (and ${found.length - 1} more: ${found.slice(1).map((c) => c.function).join(', ')})` : '';
  throw new UserError(
    `Cannot apply update ${id}: ${first.function} cannot be replaced while ${first.reason}${more}; remove it first. The kernel is unchanged.`,
    { kind: 'conflict', function: first.function, reason: `${first.reason}${more}` },
  );
}
