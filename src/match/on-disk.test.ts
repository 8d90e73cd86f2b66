/**
 * Proving a fix against a module's file (on-disk.ts). First on small module files our ELF
 * writer makes: the function inside `.text` at an offset, as Debian builds modules, with
 * relocations. Then on code the host gcc makes, linked with `ld -r` as a module is. And the
 * module's file found by modules.dep.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { KERNEL_LIKE_FLAGS } from '../diff/fixtures.js';
import { DiffObject } from '../diff/object.js';
import {
  FormatError,
  parseElf,
  R_X86_64_32S,
  R_X86_64_PC32,
  R_X86_64_PLT32,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHN_UNDEF,
  SHT_PROGBITS,
  STB_GLOBAL,
  STB_LOCAL,
  STT_FUNC,
  STT_NOTYPE,
  STV_DEFAULT,
  writeElf,
  type ElfSymbol,
} from '../elf/index.js';
import { run, Workdir } from '../elf/test-support/toolchain.js';
import { UserError } from '../host/errors.js';
import type { UpdateFunction, UpdateRelocation } from '../update/format.js';
import { codeOf } from '../update/from-diff.js';
import { fileCopyName, matchOnDisk, moduleFilePath, proveCopyOnDisk } from './on-disk.js';

/** call helper; mov enabled(%rip),%eax; ret — with its fields zero, as in an object file. */
const CODE = [0xe8, 0, 0, 0, 0, 0x8b, 0x05, 0, 0, 0, 0, 0xc3];

/** A module file with `code` at offset 16 of .text, named `name`, calling `callee` at +1 and reading `variable` at +7. */
function moduleFile(code: number[], options: { name?: string; callee?: string; variable?: string; readType?: number } = {}): Uint8Array {
  const undefinedSymbol = (name: string) => ({ name, value: 0n, size: 0, bind: STB_GLOBAL, type: STT_NOTYPE, visibility: STV_DEFAULT, section: SHN_UNDEF });
  const callee = undefinedSymbol(options.callee ?? 'helper');
  const variable = undefinedSymbol(options.variable ?? 'enabled');
  const text = {
    name: '.text',
    type: SHT_PROGBITS,
    flags: SHF_ALLOC | SHF_EXECINSTR,
    addralign: 16,
    data: Uint8Array.from([...new Array<number>(16).fill(0xcc), ...code]),
    relocations: [
      { offset: 17, type: R_X86_64_PLT32, symbol: callee, addend: -4n },
      { offset: 23, type: options.readType ?? R_X86_64_PC32, symbol: variable, addend: -4n },
    ],
  };
  const fn = { name: options.name ?? 'bm_status_read', value: 16n, size: code.length, bind: STB_LOCAL, type: STT_FUNC, visibility: STV_DEFAULT, section: text };
  return writeElf({ sections: [text], symbols: [fn, callee, variable] });
}

/** The update's function: the same code, its relocations as create records them. */
function updateFunction(code = CODE, relocations?: UpdateRelocation[]): UpdateFunction {
  return {
    name: 'bm_status_read',
    status: 'changed',
    unit: 'fs/binfmt_misc.c',
    module: 'binfmt_misc',
    section: '.text.bm_status_read',
    pre: {
      size: code.length,
      bytes: Buffer.from(code).toString('base64'),
      relocations: relocations ?? [
        { offset: 1, type: 'R_X86_64_PLT32', addend: '-4', target: { kind: 'symbol', name: 'helper', addend: '0', local: false } },
        { offset: 7, type: 'R_X86_64_PC32', addend: '-4', target: { kind: 'symbol', name: 'enabled', addend: '0', local: true } },
      ],
    },
    post: { size: 1, bytes: 'ww==', relocations: [] },
  };
}

const FILE = '/lib/modules/6.1.0-47-amd64/kernel/fs/binfmt_misc.ko';

describe('matchOnDisk on a module file our ELF writer makes', () => {
  it('accepts the function whose bytes and relocations are the pre code\'s, wherever it sits in .text', () => {
    assert.equal(matchOnDisk(updateFunction(), moduleFile(CODE), FILE), undefined);
  });

  it('names the first byte that differs outside the relocation fields', () => {
    const other = [...CODE];
    other[6] = 0x0d; // mov -> or
    assert.deepEqual(matchOnDisk(updateFunction(), moduleFile(other), FILE), { function: 'bm_status_read', offset: 6, reason: 'bytes differ (disk 0d, pre 05)' });
  });

  it('names a relocation of another type or to another symbol, at its offset', () => {
    assert.deepEqual(matchOnDisk(updateFunction(), moduleFile(CODE, { readType: R_X86_64_32S }), FILE), {
      function: 'bm_status_read',
      offset: 7,
      reason: 'relocations differ (disk R_X86_64_32S enabled-4, pre R_X86_64_PC32 enabled-4)',
    });
    assert.equal(matchOnDisk(updateFunction(), moduleFile(CODE, { callee: 'other_helper' }), FILE)?.offset, 1);
  });

  it('takes a numbered static (`__key.12`) for the same one numbered otherwise, and a carried name for its original', () => {
    const relocations: UpdateRelocation[] = [
      { offset: 1, type: 'R_X86_64_PLT32', addend: '-4', target: { kind: 'symbol', name: 'helper.tsplice.u0', addend: '0', local: false } },
      { offset: 7, type: 'R_X86_64_PC32', addend: '-4', target: { kind: 'symbol', name: '__key.3', addend: '0', local: true } },
    ];
    assert.equal(matchOnDisk(updateFunction(CODE, relocations), moduleFile(CODE, { variable: '__key.12' }), FILE), undefined);
  });

  it('tells numbered clones of a function apart, and another field of the same variable', () => {
    const call = (name: string): UpdateRelocation => ({ offset: 1, type: 'R_X86_64_PLT32', addend: '-4', target: { kind: 'symbol', name, addend: '0', local: true } });
    const read = (addend: string): UpdateRelocation => ({ offset: 7, type: 'R_X86_64_PC32', addend, target: { kind: 'symbol', name: 'enabled', addend: '0', local: true } });
    const file = moduleFile(CODE, { callee: 'helper.constprop.1' });
    assert.deepEqual(matchOnDisk(updateFunction(CODE, [call('helper.constprop.0'), read('-4')]), file, FILE), {
      function: 'bm_status_read',
      offset: 1,
      reason: 'relocations differ (disk R_X86_64_PLT32 helper.constprop.1-4, pre R_X86_64_PLT32 helper.constprop.0-4)',
    });
    assert.deepEqual(matchOnDisk(updateFunction(CODE, [call('helper.constprop.1'), read('4')]), file, FILE), {
      function: 'bm_status_read',
      offset: 7,
      reason: 'relocations differ (disk R_X86_64_PC32 enabled-4, pre R_X86_64_PC32 enabled+4)',
    });
  });

  it('names a size that differs, and a function the file does not have', () => {
    assert.deepEqual(matchOnDisk(updateFunction(), moduleFile([...CODE, 0xcc]), FILE), { function: 'bm_status_read', offset: 12, reason: 'size differs (disk 13, pre 12)' });
    assert.deepEqual(matchOnDisk(updateFunction(), moduleFile(CODE, { name: 'bm_status_write' }), FILE), { function: 'bm_status_read', offset: 0, reason: `not in ${FILE}` });
  });
});

// The same, on code the host gcc makes: the pre code from a unit compiled as create's pre
// object (one section per function, described by create's own codeOf), the module file from
// units compiled as Debian compiles a module's (one `.text`) and linked with `ld -r`.

const PRE_FLAGS = [...KERNEL_LIKE_FLAGS, '-mcmodel=kernel'];
const MODULE_FLAGS = [...PRE_FLAGS, '-fno-function-sections', '-fno-data-sections'];

/** A unit of a module: `pick` follows another function, so it sits inside `.text`. */
const UNIT = `
extern void sink(int);
extern void other(int);
extern int table[8];
void before(int x) { sink(x); sink(x + 1); }
int pick(int x) { sink(x); return x + 1000 + table[3]; }
`;

const work = new Workdir();
after(() => work.remove());
let count = 0;

/** `name` of a unit compiled as create's pre object, described as an update records it. */
function preFunction(source: string, name = 'pick'): UpdateFunction {
  const object = DiffObject.load(work.compileC(`pre${count++}`, source, PRE_FLAGS));
  const symbol = object.elf.symbols.find((s) => s.type === STT_FUNC && s.name === name) ?? assert.fail(`no ${name}`);
  const piece = object.pieceOf(symbol) ?? assert.fail(`no piece of ${name}`);
  const code = codeOf(object, piece);
  return { name, status: 'changed', unit: 'fs/sample.c', module: 'sample', section: piece.section.name, pre: code, post: code };
}

/** Units compiled as Debian compiles a module's, linked into one relocatable module file. */
function linkedModule(...sources: string[]): { bytes: Uint8Array; path: string } {
  const objects = sources.map((source) => work.compileC(`unit${count++}`, source, MODULE_FLAGS));
  const path = work.file(`module${count++}.ko`);
  run('ld', ['-r', '-o', path, ...objects]);
  return { bytes: new Uint8Array(readFileSync(path)), path };
}

/** The function's symbols in a module file. */
function symbolsNamed(bytes: Uint8Array, name: string): ElfSymbol[] {
  return parseElf(bytes).symbols.filter((s) => s.type === STT_FUNC && s.name === name);
}

/** The pre code's relocation offset whose target is the symbol `name`. */
function relocationTo(fn: UpdateFunction, name: string): number {
  const r = fn.pre?.relocations.find((x) => x.target.kind === 'symbol' && x.target.name === name);
  return r?.offset ?? assert.fail(`no relocation to ${name}`);
}

describe('matchOnDisk on gcc code linked with ld -r', () => {
  it('finds no difference in the same function inside .text', () => {
    const ko = linkedModule(UNIT);
    const [pick] = symbolsNamed(ko.bytes, 'pick');
    assert.ok(pick && pick.value > 0n, 'pick is not at the start of .text');
    const fn = preFunction(UNIT);
    assert.ok(relocationTo(fn, 'sink') >= 0 && relocationTo(fn, 'table') >= 0);
    assert.equal(matchOnDisk(fn, ko.bytes, ko.path), undefined);
  });

  it('ignores the bytes of relocation fields', () => {
    const ko = linkedModule(UNIT);
    const [pick] = symbolsNamed(ko.bytes, 'pick');
    const text = parseElf(ko.bytes).sections[pick?.shndx ?? 0] ?? assert.fail();
    const fn = preFunction(UNIT);
    const poked = Uint8Array.from(ko.bytes);
    const at = text.offset + Number(pick?.value ?? 0n) + relocationTo(fn, 'sink');
    poked.fill(0xff, at, at + 4);
    assert.equal(matchOnDisk(fn, poked, ko.path), undefined);
  });

  it('names the first differing byte of a changed constant', () => {
    const ko = linkedModule(UNIT);
    const fn = preFunction(UNIT.replace('1000', '2000'));
    const pre = Buffer.from(fn.pre?.bytes ?? '', 'base64');
    const [pick] = symbolsNamed(ko.bytes, 'pick');
    const text = parseElf(ko.bytes).sections[pick?.shndx ?? 0] ?? assert.fail();
    const disk = text.data.subarray(Number(pick?.value ?? 0n), Number(pick?.value ?? 0n) + pre.length);
    const first = pre.findIndex((b, i) => b !== disk[i]);
    assert.ok(first > 0 && first < pre.length);
    const mismatch = matchOnDisk(fn, ko.bytes, ko.path);
    assert.equal(mismatch?.function, 'pick');
    assert.equal(mismatch?.offset, first);
    assert.match(mismatch?.reason ?? '', /^bytes differ \(disk [0-9a-f]{2}, pre [0-9a-f]{2}\)$/);
  });

  it('names the relocation of a call to a different function', () => {
    const ko = linkedModule(UNIT);
    const fn = preFunction(UNIT.replace('{ sink(x); return', '{ other(x); return'));
    const mismatch = matchOnDisk(fn, ko.bytes, ko.path);
    assert.equal(mismatch?.offset, relocationTo(fn, 'other'));
    assert.match(mismatch?.reason ?? '', /^relocations differ \(disk R_X86_64_\w+ sink-4, pre R_X86_64_\w+ other-4\)$/);
  });

  it('names the relocation of another element of the same global (the addend differs)', () => {
    const ko = linkedModule(UNIT);
    const fn = preFunction(UNIT.replace('table[3]', 'table[5]'));
    const mismatch = matchOnDisk(fn, ko.bytes, ko.path);
    assert.equal(mismatch?.offset, relocationTo(fn, 'table'));
    assert.match(mismatch?.reason ?? '', /^relocations differ \(disk R_X86_64_\w+ table\+\d+, pre R_X86_64_\w+ table\+\d+\)$/);
  });

  it('takes a call or jump to a function of the same unit that the file resolved in place, if it reaches that function', () => {
    const unit = `
extern void sink(int);
static __attribute__((noinline, noclone)) void note(int x) { sink(x); }
static __attribute__((noinline, noclone)) void mark(int x) { sink(x + 2); }
int relay(int x) { note(x); mark(x + 1); return x * 3; }
`;
    const ko = linkedModule(unit);
    const fn = preFunction(unit, 'relay');
    const [relay] = symbolsNamed(ko.bytes, 'relay');
    const elf = parseElf(ko.bytes);
    const text = elf.sections[relay?.shndx ?? 0] ?? assert.fail();
    const inRelay = elf.relaFor(text).filter((r) => BigInt(r.offset) >= (relay?.value ?? 0n) && BigInt(r.offset) < (relay?.value ?? 0n) + BigInt(relay?.size ?? 0));
    assert.equal(inRelay.length, 0, 'the file relocates the calls from relay');
    assert.ok((fn.pre?.relocations.length ?? 0) >= 2);
    assert.equal(matchOnDisk(fn, ko.bytes, ko.path), undefined);
    const swapped = preFunction(unit.replace('{ note(x); mark(x + 1);', '{ mark(x); note(x + 1);'), 'relay');
    const first = swapped.pre?.relocations[0] ?? assert.fail();
    const mismatch = matchOnDisk(swapped, ko.bytes, ko.path);
    assert.equal(mismatch?.offset, first.offset);
    assert.match(mismatch?.reason ?? '', /^relocations differ \(disk none, pre R_X86_64_\w+ mark\+0\)$/);
  });

  it('refuses a tail call the file\'s assembler made short, as a size difference', () => {
    // In one `.text`, `jmp note` to a function close by is relaxed to 2 bytes; the pre object,
    // with `note` in its own section, keeps 5. The code differs, so it is not proven.
    const unit = `
extern void sink(int);
static __attribute__((noinline, noclone)) void note(int x) { sink(x); }
void relay(int x) { sink(x); note(x + 1); }
`;
    assert.match(matchOnDisk(preFunction(unit, 'relay'), linkedModule(unit).bytes, 'm.ko')?.reason ?? '', /^size differs \(disk \d+, pre \d+\)$/);
  });

  it('names a size difference at the shorter size', () => {
    const ko = linkedModule(UNIT);
    const fn = preFunction(UNIT.replace('{ sink(x); return', '{ sink(x); sink(x * 3); return'));
    const [pick] = symbolsNamed(ko.bytes, 'pick');
    const disk = pick?.size ?? assert.fail();
    const pre = fn.pre?.size ?? assert.fail();
    assert.notEqual(disk, pre);
    assert.deepEqual(matchOnDisk(fn, ko.bytes, ko.path), { function: 'pick', offset: Math.min(disk, pre), reason: `size differs (disk ${disk}, pre ${pre})` });
  });

  it('names a function the file does not have', () => {
    const ko = linkedModule(UNIT);
    const fn = { ...preFunction(UNIT), name: 'absent' };
    assert.deepEqual(matchOnDisk(fn, ko.bytes, ko.path), { function: 'absent', offset: 0, reason: `not in ${ko.path}` });
  });

  it('takes either of two statics of one name, and reports the first when neither matches', () => {
    const helper = (n: number) => `
extern void sink(int);
static __attribute__((noinline, noclone)) int helper(int x) { sink(x); return x + ${n}; }
int entry${n}(int x) { return helper(x) * 2; }
`;
    const ko = linkedModule(helper(5), helper(1000));
    assert.equal(symbolsNamed(ko.bytes, 'helper').length, 2);
    assert.equal(matchOnDisk(preFunction(helper(1000), 'helper'), ko.bytes, ko.path), undefined);
    assert.equal(matchOnDisk(preFunction(helper(5), 'helper'), ko.bytes, ko.path), undefined);
    const neither = matchOnDisk(preFunction(helper(7), 'helper'), ko.bytes, ko.path);
    const againstFirst = matchOnDisk(preFunction(helper(7), 'helper'), linkedModule(helper(5)).bytes, ko.path);
    assert.match(neither?.reason ?? '', /^bytes differ/);
    assert.deepEqual(neither, againstFirst);
  });

  it('names the copy that matches by its place among the kept symbols of its name, as the kernel binds it', () => {
    const helper = (n: number) => `
extern void sink(int);
static int calls;
static __attribute__((noinline, noclone)) void tick(int x) { sink(x + ${n}); }
static __attribute__((noinline, noclone)) int helper(int x) { sink(x); tick(x); calls++; return x + ${n}; }
static int __attribute__((section(".init.text"), used)) setup${n}(void) { return 0; }
int entry${n}(int x) { return helper(x) * 2; }
`;
    // An init-text function of the same name comes first in the table: the loader does not keep it.
    const initFirst = `static int __attribute__((section(".init.text"), used, noinline)) helper(int x) { return x; }\nint (*keep)(int) = helper;\n`;
    const ko = linkedModule(initFirst, helper(5), helper(1000));
    const elf = parseElf(ko.bytes);
    assert.equal(symbolsNamed(ko.bytes, 'helper').length, 3);
    // Each unit's statics too: `calls` by the file's relocation of the proven copy, `tick` by
    // where the call the assembler resolved in place lands.
    assert.deepEqual(proveCopyOnDisk(preFunction(helper(1000), 'helper'), elf, ko.path), { copy: 'helper#2', statics: new Map([['tick', 'tick#2'], ['calls', 'calls#2']]) });
    assert.deepEqual(proveCopyOnDisk(preFunction(helper(5), 'helper'), elf, ko.path), { copy: 'helper#1', statics: new Map([['tick', 'tick#1'], ['calls', 'calls#1']]) });
    assert.deepEqual(proveCopyOnDisk(preFunction(UNIT), parseElf(linkedModule(UNIT).bytes), ko.path), { copy: 'pick', statics: new Map() });
    const [initHelper] = symbolsNamed(ko.bytes, 'helper');
    assert.equal(fileCopyName(elf, initHelper ?? assert.fail()), 'helper');
  });

  it('refuses two copies that both match: it cannot tell which the fix is for', () => {
    const helper = `
extern void sink(int);
static __attribute__((noinline, noclone)) int helper(int x) { sink(x); return x + 5; }
`;
    const ko = linkedModule(`${helper}int a(int x) { return helper(x); }\n`, `${helper}int b(int x) { return helper(x); }\n`);
    assert.throws(
      () => proveCopyOnDisk(preFunction(`${helper}int a(int x) { return helper(x); }\n`, 'helper'), parseElf(ko.bytes), ko.path),
      (error: unknown) => error instanceof UserError && error.kind === 'ambiguous' && error.diagnostic.function === 'helper' && /2 functions of that name that all match/.test(error.message),
    );
  });

  it('lets the ELF reader refuse a file that is not ELF', () => {
    assert.throws(() => matchOnDisk(preFunction(UNIT), new TextEncoder().encode('not an ELF file'), 'bad.ko'), FormatError);
  });
});

describe('moduleFilePath: a module file by modules.dep', () => {
  const RELEASE = '6.1.0-47-amd64';
  const root = mkdtempSync(join(tmpdir(), 'tsplice-on-disk-'));
  const dir = join(root, 'lib/modules', RELEASE);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'modules.dep'),
    [
      'kernel/fs/binfmt_misc.ko:',
      'kernel/net/netfilter/nf_tables.ko: kernel/net/netfilter/nfnetlink.ko',
      'kernel/net/netfilter/nfnetlink.ko:',
      'kernel/drivers/hid/hid-generic.ko.xz:',
      '',
    ].join('\n'),
  );
  after(() => rmSync(root, { recursive: true, force: true }));

  it('finds a module by name, with - and _ alike', () => {
    assert.equal(moduleFilePath('nf_tables', RELEASE, root), join(dir, 'kernel/net/netfilter/nf_tables.ko'));
    assert.equal(moduleFilePath('binfmt-misc', RELEASE, root), join(dir, 'kernel/fs/binfmt_misc.ko'));
    assert.equal(moduleFilePath('binfmt_misc', RELEASE, root), join(dir, 'kernel/fs/binfmt_misc.ko'));
  });

  it('returns undefined for a module modules.dep does not list', () => {
    assert.equal(moduleFilePath('nft_ct', RELEASE, root), undefined);
  });

  it('refuses a compressed module file by name', () => {
    assert.throws(
      () => moduleFilePath('hid_generic', RELEASE, root),
      (error: unknown) => {
        assert.ok(error instanceof UserError);
        assert.equal(error.kind, 'unsupported-file');
        assert.equal(error.diagnostic.object, join(dir, 'kernel/drivers/hid/hid-generic.ko.xz'));
        assert.match(error.message, /hid-generic\.ko\.xz is compressed/);
        return true;
      },
    );
  });
});
