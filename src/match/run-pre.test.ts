/**
 * Run-pre matching on the host, no kernel needed: the pre code comes from a unit the host gcc
 * compiles the way kbuild does, the "running kernel" is that object linked by ld at kernel
 * addresses with a stand-in for the rest of the kernel, kernel memory is a buffer over the
 * linked image, and /proc/kallsyms is written from the linked symbol table.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { KERNEL_LIKE_FLAGS } from '../diff/fixtures.js';
import { DiffObject } from '../diff/object.js';
import { diffObjects } from '../diff/pipeline.js';
import { definingSection, parseElf, SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE, SHT_NOBITS, STB_GLOBAL, STT_FUNC, STT_OBJECT, type ElfFile } from '../elf/index.js';
import { run, Workdir } from '../elf/test-support/toolchain.js';
import { sampleUpdate } from '../update/fixtures.js';
import type { UpdateFunction, UpdatePackage, UpdateRelocation } from '../update/format.js';
import { updatePartsFromDiff } from '../update/from-diff.js';
import { parseKallsyms, type KernelSymbols } from './kallsyms.js';
import { learnedKey, MatchError, matchUpdate, moduleLearnedKey, type KernelMemory, type MatchResult } from './run-pre.js';
import { UserError } from '../host/errors.js';

const UNIT = 'kernel/record.c';

const PRE = `
extern void sink(int);
extern void report(const char *);
static int counter;
static __attribute__((noinline)) int helper(int x) { sink(x); return x * 7; }
static __attribute__((used, noinline)) int record(int x) { report("record called"); sink(counter); counter += x; return helper(x) + counter; }
static __attribute__((used, noinline)) int drain(int x) { counter -= x; return helper(x + 1); }
`;
const POST = PRE.replace('return helper(x) + counter;', 'return helper(x) - counter;').replace('helper(x + 1)', 'helper(x + 2)');

/** The rest of the kernel: what the unit calls. */
const REST = `
void sink(int x) { asm volatile("" :: "r"(x)); }
void report(const char *s) { asm volatile("" :: "r"(s)); }
`;

const TEXT_BASE = 0xffffffff81000000n;
const LINKER_SCRIPT = `
SECTIONS {
  . = 0x${TEXT_BASE.toString(16)};
  .text : { *(.text .text.*) }
  . = ALIGN(4096);
  .rodata : { *(.rodata .rodata.*) }
  . = ALIGN(4096);
  .data : { *(.data .data.*) }
  .bss : { *(.bss .bss.*) }
}
`;

const work = new Workdir();
after(() => work.remove());

/** Kernel memory over a buffer holding [base, base + length); anything else cannot be read. */
class BufferMemory implements KernelMemory {
  constructor(
    readonly base: bigint,
    readonly bytes: Buffer,
  ) {}

  read(address: bigint, length: number): Uint8Array {
    const at = address - this.base;
    if (at < 0n || at + BigInt(length) > BigInt(this.bytes.length)) throw new Error(`no memory at 0x${address.toString(16)} (+${length})`);
    return Uint8Array.from(this.bytes.subarray(Number(at), Number(at) + length));
  }
}

/** The changed functions of the unit, as `tsplice create` describes their pre code. */
function makeUpdate(): UpdatePackage {
  const flags = [...KERNEL_LIKE_FLAGS, '-mcmodel=kernel'];
  const pre = DiffObject.load(work.compileC('pre', PRE, flags));
  const post = DiffObject.load(work.compileC('post', POST, flags));
  const parts = updatePartsFromDiff(diffObjects(pre, post), UNIT);
  return { ...sampleUpdate(), functions: parts.functions, data: parts.data, specialEntries: parts.specialEntries };
}

/** Links the pre object (`copies` times, as two units holding the same statics) with the rest. */
function linkKernel(copies: number): ElfFile {
  const rest = work.compileC('rest', REST, [...KERNEL_LIKE_FLAGS, '-mcmodel=kernel']);
  const objects = [rest];
  for (let i = 0; i < copies; i++) {
    const copy = work.file(`pre-copy${i}.o`);
    copyFileSync(work.file('pre.o'), copy);
    objects.push(copy);
  }
  const output = work.file(`vmlinux-${copies}`);
  run('ld', ['-T', work.write('kernel.lds', LINKER_SCRIPT), '-o', output, ...objects]);
  return parseElf(new Uint8Array(readFileSync(output)), output);
}

/** The allocated sections of the linked kernel as one buffer from the start of .text, up to `last` (inclusive). */
function image(kernel: ElfFile, last = '.bss'): BufferMemory {
  const sections = kernel.sections.filter((s) => (s.flags & SHF_ALLOC) !== 0n && s.size > 0 && s.addr >= TEXT_BASE);
  const end = sections.filter((s) => s.addr <= (kernel.sectionByName(last)?.addr ?? 0n)).reduce((e, s) => (s.addr + BigInt(s.size) > e ? s.addr + BigInt(s.size) : e), TEXT_BASE);
  const bytes = Buffer.alloc(Number(end - TEXT_BASE));
  for (const s of sections) if (s.type !== SHT_NOBITS && s.addr + BigInt(s.size) <= end) bytes.set(s.data, Number(s.addr - TEXT_BASE));
  return new BufferMemory(TEXT_BASE, bytes);
}

/** /proc/kallsyms of the linked kernel; `edit` may move a symbol or drop it (undefined). */
function kallsyms(
  kernel: ElfFile,
  edit: (line: { name: string; address: bigint; type: string; module?: string }) => typeof line | undefined = (l) => l,
): KernelSymbols {
  const lines: string[] = [];
  for (const symbol of kernel.symbols) {
    const section = definingSection(kernel, symbol);
    if (!section || (symbol.type !== STT_FUNC && symbol.type !== STT_OBJECT)) continue;
    const letter = (section.flags & SHF_EXECINSTR) !== 0n ? 't' : section.type === SHT_NOBITS ? 'b' : (section.flags & SHF_WRITE) !== 0n ? 'd' : 'r';
    const line = edit({ name: symbol.name, address: symbol.value, type: symbol.bind === STB_GLOBAL ? letter.toUpperCase() : letter });
    if (line) lines.push(`${line.address.toString(16).padStart(16, '0')} ${line.type} ${line.name}${line.module ? `\t[${line.module}]` : ''}`);
  }
  return parseKallsyms(lines.join('\n'));
}

/** The address of every symbol named `name` in the linked kernel. */
function addressesOf(kernel: ElfFile, name: string): bigint[] {
  return kernel.symbols.filter((s) => s.name === name && definingSection(kernel, s) !== undefined).map((s) => s.value);
}

function addressOf(kernel: ElfFile, name: string): bigint {
  const found = addressesOf(kernel, name);
  assert.equal(found.length, 1, `${name} is in the linked kernel ${found.length} times`);
  return found[0] as bigint;
}

function preOf(update: UpdatePackage, name: string): UpdateFunction {
  return update.functions.find((f) => f.name === name && f.pre) ?? assert.fail(`no changed function ${name}`);
}

function relocationsTo(fn: UpdateFunction, name: string): UpdateRelocation[] {
  return (fn.pre?.relocations ?? []).filter((r) => ('name' in r.target && r.target.name === name) || (r.target.kind === 'string' && r.target.text === name));
}

const hex = (a: bigint): string => `0x${a.toString(16)}`;

describe('run-pre matching against a linked image', () => {
  const update = makeUpdate();
  const kernel = linkKernel(1);

  it('has the pre code of record and drain, with the relocations each case relies on', () => {
    assert.deepEqual(update.functions.map((f) => `${f.name}:${f.status}`).sort(), ['drain:changed', 'record:changed']);
    const record = preOf(update, 'record');
    assert.deepEqual(relocationsTo(record, 'record called').map((r) => r.target.kind), ['string']);
    assert.deepEqual(relocationsTo(record, 'sink').map((r) => r.target.kind), ['symbol']);
    assert.ok(relocationsTo(record, 'counter').every((r) => r.target.kind === 'piece') && relocationsTo(record, 'counter').length > 0);
    assert.ok(relocationsTo(preOf(update, 'drain'), 'counter').length > 0);
  });

  it('matches the running bytes and learns where every target lives', () => {
    const result: MatchResult = matchUpdate(update, kallsyms(kernel), image(kernel));
    assert.deepEqual(
      result.functions.map((f) => [f.name, f.unit, f.runningAddress, f.size, f.traced]),
      update.functions.map((f) => [f.name, UNIT, addressOf(kernel, f.name), f.pre?.size, false]),
    );
    const record = result.functions.find((f) => f.name === 'record') ?? assert.fail();
    assert.deepEqual(record.entry, image(kernel).read(record.runningAddress, Math.min(32, record.size)));
    const learned = (key: string) => result.learned.get(key)?.address;
    for (const name of ['sink', 'report', 'helper', 'counter', 'record', 'drain']) assert.equal(learned(name), addressOf(kernel, name), name);
    // Statics are also known per unit, and say where they were learned.
    for (const name of ['helper', 'counter']) {
      assert.equal(learned(learnedKey(UNIT, name)), addressOf(kernel, name), name);
      assert.equal(result.learned.get(learnedKey(UNIT, name))?.local, true);
    }
    const sinkAt = relocationsTo(preOf(update, 'record'), 'sink')[0]?.offset ?? assert.fail();
    assert.equal(result.learned.get('sink')?.from, `record+0x${sinkAt.toString(16)}`);
  });

  it('refuses a reference that /proc/kallsyms places elsewhere, naming function, offset and symbol', () => {
    const sink = addressOf(kernel, 'sink');
    const elsewhere = sink + 0x40n;
    const symbols = kallsyms(kernel, (l) => (l.name === 'sink' ? { ...l, address: elsewhere } : l));
    const record = addressOf(kernel, 'record');
    const offset = Math.min(...relocationsTo(preOf(update, 'record'), 'sink').map((r) => r.offset));
    assert.throws(
      () => matchUpdate(update, symbols, image(kernel)),
      (e: unknown) => {
        assert.ok(e instanceof MatchError, String(e));
        assert.equal(e.mismatch.function, 'record');
        assert.equal(e.mismatch.candidate, record);
        assert.equal(e.mismatch.offset, offset);
        assert.equal(e.mismatch.reason, `the code refers to ${hex(sink)}, and /proc/kallsyms has sink at ${hex(elsewhere)}`);
        assert.match(e.message, new RegExp(`^The running kernel does not match the update: record at ${hex(record)}\\+0x${offset.toString(16)}: `));
        return true;
      },
    );
  });

  it('refuses a function that two places of the running kernel match', () => {
    // Two units with the same statics (as compat_binfmt_elf.c includes binfmt_elf.c).
    const twice = linkKernel(2);
    const records = addressesOf(twice, 'record');
    assert.equal(records.length, 2);
    const first = update.functions.find((f) => f.pre)?.name ?? assert.fail();
    const candidates = addressesOf(twice, first);
    assert.throws(
      () => matchUpdate(update, kallsyms(twice), image(twice)),
      (e: unknown) => {
        assert.ok(!(e instanceof MatchError) && e instanceof Error, String(e));
        assert.equal(e.message, `${first} matches 2 functions of the running kernel (${candidates.map(hex).join(', ')}); tsplice cannot tell which one the patch means.`);
        return true;
      },
    );
  });

  it('refuses a string literal it cannot read, saying so', () => {
    const textOnly = image(kernel, '.text');
    const string = relocationsTo(preOf(update, 'record'), 'record called')[0] ?? assert.fail();
    assert.throws(() => textOnly.read(kernel.sectionByName('.rodata')?.addr ?? assert.fail(), 1), /no memory/);
    assert.throws(
      () => matchUpdate(update, kallsyms(kernel), textOnly),
      (e: unknown) => {
        assert.ok(e instanceof MatchError, String(e));
        assert.equal(e.mismatch.function, 'record');
        assert.equal(e.mismatch.candidate, addressOf(kernel, 'record'));
        assert.equal(e.mismatch.offset, string.offset);
        assert.equal(e.mismatch.reason, 'the string the code refers to is "(unreadable)", not "record called"');
        return true;
      },
    );
  });

  it('refuses a static that two references place at different addresses', () => {
    // A kernel without CONFIG_KALLSYMS_ALL lists no variables: only the code tells where
    // counter is, and drain's reference here says 8 bytes further on than record's.
    const symbols = kallsyms(kernel, (l) => (l.name === 'counter' ? undefined : l));
    assert.deepEqual(symbols.lookup('counter'), []);
    const memory = image(kernel);
    const drain = addressOf(kernel, 'drain');
    const field = relocationsTo(preOf(update, 'drain'), 'counter')[0] ?? assert.fail();
    const at = Number(drain - TEXT_BASE) + field.offset;
    memory.bytes.writeInt32LE(memory.bytes.readInt32LE(at) + 8, at);
    const counter = addressOf(kernel, 'counter');
    const recordAt = relocationsTo(preOf(update, 'record'), 'counter')[0]?.offset ?? assert.fail();
    const fromRecord = `${hex(counter)} according to record+0x${recordAt.toString(16)}`;
    const fromDrain = `${hex(counter + 8n)} according to drain+0x${field.offset.toString(16)}`;
    const [firstSeen, secondSeen] = update.functions[0]?.name === 'record' ? [fromRecord, fromDrain] : [fromDrain, fromRecord];
    assert.throws(
      () => matchUpdate(update, symbols, memory),
      (e: unknown) => {
        assert.ok(!(e instanceof MatchError) && e instanceof Error, String(e));
        assert.equal(e.message, `counter is at ${firstSeen} but at ${secondSeen}; tsplice cannot tell which one the patch means.`);
        return true;
      },
    );
    // The untouched image matches with the same kallsyms: the refusal is the disagreement.
    assert.equal(matchUpdate(update, symbols, image(kernel)).learned.get('counter')?.address, counter);
  });
});

describe('run-pre matching of the functions of a loadable module', () => {
  /** The update with its functions in the module `demo`, as create records a module unit's. */
  const update = makeUpdate();
  for (const f of update.functions) f.module = 'demo';
  // The unit linked twice, the same bytes: the first copy is vmlinux's, the second the module's.
  const twice = linkKernel(2);
  const unitNames = ['record', 'drain', 'helper', 'counter'];
  const inModule = new Set(unitNames.map((n) => addressesOf(twice, n)[1] ?? assert.fail(n)));
  const withModule = kallsyms(twice, (l) => (inModule.has(l.address) && unitNames.includes(l.name) ? { ...l, module: 'demo' } : l));

  it('looks for a function in its module only, where vmlinux has the same bytes under the same name', () => {
    const result = matchUpdate(update, withModule, image(twice));
    for (const f of result.functions) assert.equal(f.runningAddress, addressesOf(twice, f.name)[1], f.name);
  });

  it('learns the statics of the module per unit and the globals its code names per module', () => {
    const result = matchUpdate(update, withModule, image(twice));
    for (const name of ['helper', 'counter']) assert.equal(result.learned.get(learnedKey(UNIT, name))?.address, addressesOf(twice, name)[1], name);
    assert.equal(result.learned.get(moduleLearnedKey('demo', 'sink'))?.address, addressOf(twice, 'sink'));
    // Not by bare name: those are vmlinux's (the first copy's helper, a global sink of vmlinux).
    for (const name of ['helper', 'counter', 'sink']) assert.equal(result.learned.get(name), undefined, name);
  });

  it('refuses a module that is not loaded, naming module and function', () => {
    const vmlinuxOnly = kallsyms(twice);
    const first = update.functions.find((f) => f.pre) ?? assert.fail();
    assert.throws(
      () => matchUpdate(update, vmlinuxOnly, image(twice)),
      (e: unknown) => {
        assert.ok(e instanceof UserError, String(e));
        assert.equal(e.kind, 'module-not-loaded');
        assert.equal(e.diagnostic.function, first.name);
        assert.equal(e.diagnostic.object, 'demo');
        assert.match(e.message, new RegExp(`^The update ${update.id} replaces ${first.name} of the module demo, which is not loaded: `));
        return true;
      },
    );
  });

  it('refuses a loaded module that lacks the function, as not this kernel', () => {
    const without = kallsyms(twice, (l) => (inModule.has(l.address) && unitNames.includes(l.name) ? (l.name === 'record' ? undefined : { ...l, module: 'demo' }) : l));
    assert.throws(
      () => matchUpdate(update, without, image(twice)),
      (e: unknown) => e instanceof UserError && e.kind === 'match-failed' && e.diagnostic.function === 'record' && /no function record of the module demo/.test(e.message),
    );
  });
});
