/**
 * The core module's parts (kmod/late.c) on a booted kernel, driven through its commands alone:
 * a function of the test module tsplice_target, staged while that module is not loaded, is
 * patched as the module loads, forgotten when it unloads, patched again when it loads again,
 * and not after undo; a part whose pre code differs from the module is refused at apply (module
 * loaded) and leaves the module unpatched when it loads later, with a kernel log line naming
 * update, module, function and offset. The pre code and its mask are read from the module's
 * file on the host, as apply reads them from an update.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parseElf, relocationInfo, STT_FUNC } from '../elf/index.js';
import { labKernel } from '../debian/fetch.js';
import { chooseRelease } from '../debian/kernel-choice.js';
import { buildTestModules } from './test-modules.js';
import { runGuestScript } from '../../tools/lab/guest-script.js';
import type { GuestRunResult } from '../../tools/lab/qemu.js';

const quiet = (): void => {};

/** Special sections whose entries name a site the loader rewrites, and the site's length. */
const REWRITTEN: Record<string, number> = { '__mcount_loc': 5, '.return_sites': 5, '.retpoline_sites': 6 };

/**
 * `name`'s bytes in the module file and the ranges where the loaded copy may differ: its
 * relocation fields, and the sites __mcount_loc and the thunk tables name.
 */
function preCode(ko: string, name: string): { pre: string; mask: string; size: number } {
  const elf = parseElf(readFileSync(ko), ko);
  const fn = elf.symbols.find((s) => s.name === name && s.type === STT_FUNC);
  assert.ok(fn, `${name} is not in ${ko}`);
  const section = elf.sections[fn.shndx];
  assert.ok(section);
  const start = Number(fn.value);
  const ranges: [number, number][] = [];
  for (const rela of elf.relaFor(section)) {
    if (rela.offset >= start && rela.offset < start + fn.size) ranges.push([rela.offset - start, relocationInfo(rela.type)?.size ?? 4]);
  }
  for (const [special, length] of Object.entries(REWRITTEN)) {
    const table = elf.sectionByName(special);
    if (!table) continue;
    for (const rela of elf.relaFor(table)) {
      const target = elf.symbols[rela.symbolIndex];
      const at = Number(rela.addend) + Number(target?.value ?? 0n);
      if (target?.shndx === fn.shndx && at >= start && at < start + fn.size) ranges.push([at - start, length]);
    }
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const pre = Buffer.from(section.data.subarray(start, start + fn.size)).toString('hex');
  return { pre, mask: ranges.map(([o, l]) => `${o}+${l}`).join(',') || '-', size: fn.size };
}

interface Outcome {
  ok: boolean;
  out: string;
}
interface Report {
  failure?: string;
  stagedWaiting: Outcome;
  applied: Outcome;
  statusWaiting: string;
  valueFirst: string;
  statusBound: string;
  rmmod: Outcome;
  statusGone: string;
  valueReload: string;
  statusReload: string;
  mismatchLoaded: Outcome;
  statusMismatchLoaded: string;
  mismatchApplied: Outcome;
  valueMismatchLoad: string;
  statusMismatchLoad: string;
  refusedLoad: Outcome;
  modulesRefusedLoad: string;
  statusRefusedLoad: string;
  valueAfterRefusal: string;
  undo: Outcome;
  valueUndone: string;
  valueAfterUndoReload: string;
  statusEnd: string;
  dmesg: string;
}

const GUEST_SCRIPT = `
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
const pre = JSON.parse(readFileSync('pre.json', 'utf8'));
const report = {};
const sh = (cmd) => execFileSync('sh', ['-c', cmd], { encoding: 'utf8', timeout: 60000 });
const tryRun = (cmd) => { try { return { ok: true, out: sh(cmd + ' 2>&1') }; } catch (e) { return { ok: false, out: String(e.stdout ?? '') + String(e.stderr ?? '') }; } };
// One command per write; the result is read back through the same open file.
const control = (line) => {
  const fd = openSync('/proc/tsplice/control', 'r+');
  const answer = () => { const b = Buffer.alloc(4096); return b.subarray(0, readSync(fd, b, 0, 4096, 0)).toString(); };
  try {
    try { writeSync(fd, line + '\\n'); } catch (e) { return { ok: false, out: e.code + ': ' + answer() }; }
    return { ok: true, out: answer() };
  } finally { closeSync(fd); }
};
const status = () => readFileSync('/proc/tsplice/status', 'utf8');
const value = () => readFileSync('/proc/tsplice_target/value', 'utf8').trim();
const address = (name) => '0x' + readFileSync('/proc/kallsyms', 'utf8').split('\\n').find((l) => l.split(/\\s+/)[2] === name).split(' ')[0];
const part = (id, name, newName, flip) => {
  let bytes = pre[name].pre;
  if (flip !== undefined) bytes = bytes.slice(0, 2 * flip) + (parseInt(bytes.slice(2 * flip, 2 * flip + 2), 16) ^ 0xff).toString(16).padStart(2, '0') + bytes.slice(2 * flip + 2);
  return control('part ' + id + ' ' + name + ' tsplice_target ' + address(newName) + ' ' + pre[newName].size + ' ' + bytes + ' ' + pre[name].mask);
};
try {
  sh('insmod ./modules/tsplice_replacement.ko && insmod ./modules/tsplice_core.ko');
  // u1: staged and applied while tsplice_target is not loaded.
  report.stagedWaiting = part('u1', 'target_show_value', 'replacement_show_value');
  report.applied = control('apply u1');
  report.statusWaiting = status();
  sh('insmod ./modules/tsplice_target.ko');
  report.valueFirst = value();
  report.statusBound = status();
  report.rmmod = tryRun('rmmod tsplice_target');
  report.statusGone = status();
  sh('insmod ./modules/tsplice_target.ko');
  report.valueReload = value();
  report.statusReload = status();
  // u2: a pre code that differs, with the module loaded: apply refuses.
  part('u2', 'target_wait', 'replacement_wait', pre.flip);
  report.mismatchLoaded = control('apply u2');
  report.statusMismatchLoaded = status();
  control('drop u2');
  // u3: the same, applied with the module unloaded: the module loads unpatched.
  sh('rmmod tsplice_target');
  part('u3', 'target_wait', 'replacement_wait', pre.flip);
  report.mismatchApplied = control('apply u3');
  sh('insmod ./modules/tsplice_target.ko');
  report.valueMismatchLoad = value();
  report.statusMismatchLoad = status();
  // refuse_load=Y: the same copy is refused at load instead.
  sh('echo Y > /sys/module/tsplice_core/parameters/refuse_load && rmmod tsplice_target');
  report.refusedLoad = tryRun('insmod ./modules/tsplice_target.ko');
  report.modulesRefusedLoad = readFileSync('/proc/modules', 'utf8');
  report.statusRefusedLoad = status();
  sh('echo N > /sys/module/tsplice_core/parameters/refuse_load && insmod ./modules/tsplice_target.ko');
  report.valueAfterRefusal = value();
  report.undo = control('undo u1');
  report.valueUndone = value();
  sh('rmmod tsplice_target && insmod ./modules/tsplice_target.ko');
  report.valueAfterUndoReload = value();
  control('undo u3');
  control('drop u1');
  control('drop u3');
  report.statusEnd = status();
} catch (e) {
  report.failure = String(e && e.stack || e);
}
report.dmesg = sh('dmesg');
writeFileSync('report.json', JSON.stringify(report));
`;

/** The `part` line of update `id` for `name` in a status text. */
function partLine(text: string, id: string, name: string): string {
  return text.split('\n').find((l) => l.startsWith(`part ${id} ${name} `)) ?? '';
}

describe('the core module binds a module\'s functions as the module comes and goes', () => {
  let run0: GuestRunResult;
  let r: Report;
  let flip = 0;

  before(async () => {
    const kernel = await labKernel(await chooseRelease(undefined, quiet), quiet);
    const share = mkdtempSync(join(tmpdir(), 'tsplice-parts-test-'));
    const { target, replacement } = await buildTestModules(kernel, share);
    const wait = preCode(target, 'target_wait');
    // The byte to flip: the first one outside the mask, past the __fentry__ site.
    const masked = new Set(wait.mask.split(',').flatMap((r) => {
      const [o, l] = r.split('+').map(Number) as [number, number];
      return Array.from({ length: l }, (_, i) => o + i);
    }));
    flip = 5;
    while (masked.has(flip)) flip++;
    assert.ok(flip < wait.size);
    const pre = {
      target_show_value: preCode(target, 'target_show_value'),
      target_wait: wait,
      replacement_show_value: preCode(replacement, 'replacement_show_value'),
      replacement_wait: preCode(replacement, 'replacement_wait'),
      flip,
    };
    writeFileSync(join(share, 'pre.json'), JSON.stringify(pre));
    const guest = await runGuestScript<Report>({ kernel, share, script: GUEST_SCRIPT, timeoutSeconds: 600 });
    run0 = guest.run;
    assert.ok(guest.report, run0.lines.slice(-30).join('\n'));
    r = guest.report;
  });

  it('ran the whole guest script', () => {
    assert.equal(run0.status, 0);
    assert.equal(r.failure, undefined, r.failure);
  });

  it('applies a part while its module is not loaded: the part waits', () => {
    assert.ok(r.stagedWaiting.ok, r.stagedWaiting.out);
    assert.ok(r.applied.ok, r.applied.out);
    assert.match(r.applied.out, /ok: applied u1: 0 function\(s\).*; 1 waiting for their module/);
    assert.match(partLine(r.statusWaiting, 'u1', 'target_show_value'), /module=tsplice_target state=waiting old=0x0 loads=0 /);
    assert.match(r.statusWaiting, /^update u1 state=applied /m);
  });

  it('patches the module as it loads, forgets it as it goes, patches it again', () => {
    assert.equal(r.valueFirst, 'value 2222');
    assert.match(partLine(r.statusBound, 'u1', 'target_show_value'), /state=bound old=0xffffffff[0-9a-f]+ loads=1 /);
    assert.match(r.statusBound, /^function u1 target_show_value old=0x[0-9a-f]+ .* owner=tsplice_target new_owner=tsplice_replacement$/m);
    assert.ok(r.rmmod.ok, r.rmmod.out);
    assert.match(partLine(r.statusGone, 'u1', 'target_show_value'), /state=waiting old=0x0 loads=1 /);
    assert.doesNotMatch(r.statusGone, /^function u1 /m);
    assert.equal(r.valueReload, 'value 2222');
    assert.match(partLine(r.statusReload, 'u1', 'target_show_value'), /state=bound old=0x[0-9a-f]+ loads=2 /);
  });

  it('refuses at apply a part whose pre code differs from the loaded module, naming function and offset', () => {
    assert.equal(r.mismatchLoaded.ok, false);
    assert.match(r.statusMismatchLoaded, new RegExp(`^refusal .*command=apply id=u2 reason=pre-code-differs function=target_wait offset=0x${flip.toString(16)} `, 'm'));
  });

  it('loads a module whose copy differs unpatched, logs why, and shows the part refused', () => {
    assert.ok(r.mismatchApplied.ok, r.mismatchApplied.out);
    assert.match(partLine(r.statusMismatchLoad, 'u3', 'target_wait'), new RegExp(`state=refused old=0x0 loads=0 .* reason=pre-code-differs function=target_wait offset=0x${flip.toString(16)} error=`));
    assert.doesNotMatch(r.statusMismatchLoad, /^function u3 /m);
    assert.match(r.dmesg, new RegExp(`tsplice_core: update=u3 module=tsplice_target reason=pre-code-differs function=target_wait offset=0x${flip.toString(16)}`));
    // u1 bound on the same load.
    assert.equal(r.valueMismatchLoad, 'value 2222');
  });

  it('with refuse_load=Y, refuses to load such a copy, and forgets what other updates bound in it', () => {
    assert.equal(r.refusedLoad.ok, false, r.refusedLoad.out);
    assert.doesNotMatch(r.modulesRefusedLoad, /^tsplice_target /m);
    assert.match(partLine(r.statusRefusedLoad, 'u3', 'target_wait'), /state=refused .*reason=pre-code-differs/);
    assert.match(partLine(r.statusRefusedLoad, 'u1', 'target_show_value'), /state=waiting old=0x0 /);
    assert.doesNotMatch(r.statusRefusedLoad, /^function u1 /m);
    assert.match(r.dmesg, /update=u3 module=tsplice_target refused to load \(refuse_load=Y\)/);
    assert.equal(r.valueAfterRefusal, 'value 2222');
  });

  it('runs the original code after undo, also in a copy loaded afterwards', () => {
    assert.ok(r.undo.ok, r.undo.out);
    assert.equal(r.valueUndone, 'value 1111');
    assert.equal(r.valueAfterUndoReload, 'value 1111');
    assert.doesNotMatch(r.statusEnd, /^update /m);
  });

  it('leaves no warning or oops in the kernel log', () => {
    assert.doesNotMatch(r.dmesg, /BUG:|WARNING:|Oops|general protection|Call Trace/);
  });
});
