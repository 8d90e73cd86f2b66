/**
 * The corpus's pure parts: reading `diff -rq`, which folders kbuild reaches, which headers a
 * compiler error points at, which of a header diff's hunks a file needs, and the words for
 * outcomes. No kernel tree or guest needed: the folder tests build a tiny fake tree, the hunk
 * tests use small diffs, GNU patch and a stand-in for the compiler. The derivation itself runs
 * on two tiny fake trees with kbuild's records (.cmd files) and the host's gcc.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  classifyChanges,
  deriveCorpus,
  headerNamed,
  identifiersInErrors,
  includingUnit,
  isBuildProduct,
  namedIn,
  objectDependencies,
  parseDiffRq,
  patchNameFor,
  selectCandidates,
  treeChanges,
  whyCandidate,
  type Candidate,
  type CorpusEntry,
  type DerivationStore,
  type DerivedFile,
  type DeriveOptions,
} from './derive.js';
import { applyToCopies } from './hunk-apply.js';
import { missingNames, selectHunks, type HunkCompile } from './hunk-select.js';
import { removedNames, sharedRemovals } from './stopped-names.js';
import { narrowToDefines, renderHunks, splitHunks, unionHunks } from './hunks.js';

describe('parseDiffRq', () => {
  it('splits changed and one-sided files and drops build products', () => {
    const out = [
      'Files /t/a/linux/fs/proc/version.c and /t/b/linux/fs/proc/version.c differ',
      'Files /t/a/linux/fs/proc/version.o and /t/b/linux/fs/proc/version.o differ',
      'Files /t/a/linux/include/generated/autoconf.h and /t/b/linux/include/generated/autoconf.h differ',
      'Only in /t/b/linux/include/rdma: iter.h',
      'Only in /t/a/linux/fs/proc: .generic.o.d',
      'Only in /t/a/linux/tools: old.c',
    ].join('\n');
    assert.deepEqual(parseDiffRq(out, '/t/a/linux', '/t/b/linux'), {
      changed: ['fs/proc/version.c'],
      onlyOld: ['tools/old.c'],
      onlyNew: ['include/rdma/iter.h'],
    });
    assert.equal(isBuildProduct('kernel/.panic.o.cmd'), true);
    assert.equal(isBuildProduct('arch/x86/include/generated/asm/foo.h'), true);
    assert.equal(isBuildProduct('include/linux/device.h'), false);
  });
});

describe('header selection', () => {
  it('takes the names the compiler complained about', () => {
    const output = [
      "drivers/base/core.c:197:9: error: implicit declaration of function ‘fwnode_set_flag’; did you mean ‘of_node_set_flag’? [-Werror=implicit-function-declaration]",
      "fs/x.c:3:10: fatal error: rdma/iter.h: No such file or directory",
      "fs/x.c:9:5: error: ‘struct foo’ has no member named ‘bar’",
      'fs/x.c:12:1: warning: unused variable ‘quiet’',
    ].join('\n');
    const names = identifiersInErrors(output);
    for (const n of ['fwnode_set_flag', 'rdma/iter.h', 'foo', 'bar']) assert.ok(names.includes(n), n);
    assert.ok(!names.includes('quiet'));
    assert.ok(!names.includes('struct'));
  });
  it('finds a name pasted together by a macro through its tail', () => {
    const text = '+__create_dev_flag_accessors(ready_to_probe, DEV_FLAG_READY_TO_PROBE);';
    assert.equal(namedIn('dev_set_ready_to_probe', text), true);
    assert.equal(namedIn('dev_set_other_thing', text), false);
    assert.equal(namedIn('DEV_FLAG_READY_TO_PROBE', text), true);
  });
  it('names patches after the file', () => {
    assert.equal(patchNameFor('kernel/time/timer.c'), 'kernel-time-timer.patch');
  });
});

describe('header hunks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsplice-hunks-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  // A 60-line header; the new one adds a field (hunk 1), a helper using a new macro (hunk 2),
  // the macro (hunk 3) and an unrelated declaration whose comment names the macro (hunk 4),
  // far enough apart to be 4 hunks.
  const oldLines = Array.from({ length: 60 }, (_v, i) => `int old_${i + 1};`);
  const newLines = [...oldLines];
  newLines.splice(50, 0, 'int unrelated_change; /* not HELPER_SHIFT */');
  newLines.splice(36, 1, '#define HELPER_SHIFT 3');
  newLines.splice(20, 0, 'static inline int new_helper(void) { return HELPER_SHIFT; }', '/* two lines */');
  newLines.splice(5, 0, 'int added_member;');
  const path = 'include/linux/thing.h';
  mkdirSync(join(dir, 'old', dirname(path)), { recursive: true });
  mkdirSync(join(dir, 'new', dirname(path)), { recursive: true });
  writeFileSync(join(dir, 'old', path), `${oldLines.join('\n')}\n`);
  writeFileSync(join(dir, 'new', path), `${newLines.join('\n')}\n`);
  const diff = spawnSync('diff', ['-u', '--label', `a/${path}`, '--label', `b/${path}`, join(dir, 'old', path), join(dir, 'new', path)], { encoding: 'utf8' }).stdout;

  it('splits a file diff into its hunks', () => {
    const split = splitHunks(diff);
    assert.deepEqual(split.head, [`--- a/${path}`, `+++ b/${path}`]);
    assert.equal(split.hunks.length, 4);
    assert.deepEqual(
      split.hunks.map((h) => [h.oldStart, h.oldCount, h.newStart, h.newCount]),
      [
        [3, 6, 3, 7],
        [18, 6, 19, 8],
        [34, 7, 37, 7],
        [48, 6, 51, 7],
      ],
    );
    assert.ok(split.hunks[1]?.lines.includes('+static inline int new_helper(void) { return HELPER_SHIFT; }'));
    assert.throws(() => splitHunks(diff.replace('@@ -3,6 +3,7 @@', '@@ -3,6 +3,9 @@')), /Malformed hunk/);
  });

  it('writes some hunks back as a diff that applies exactly, new-side lines recomputed', () => {
    const part = renderHunks(splitHunks(diff), [3, 1]);
    assert.match(part, /^--- a\/include\/linux\/thing\.h\n\+\+\+ b\/include\/linux\/thing\.h\n@@ -18,6 \+18,8 @@\n/);
    // Hunk 1 (one line added) is left out: hunk 4 starts one line earlier on the new side.
    assert.match(part, /@@ -48,6 \+50,7 @@/);
    assert.doesNotMatch(part, /added_member|HELPER_SHIFT 3/);
    assert.equal(renderHunks(splitHunks(diff), []), '');
    const applied = applyToCopies(join(dir, 'old'), part);
    assert.equal(applied.clean, true, applied.problems.join('; '));
    const expected = [...oldLines];
    expected.splice(50, 0, 'int unrelated_change; /* not HELPER_SHIFT */');
    expected.splice(20, 0, 'static inline int new_helper(void) { return HELPER_SHIFT; }', '/* two lines */');
    assert.equal(applied.texts.get(path), `${expected.join('\n')}\n`);
    assert.equal(applyToCopies(join(dir, 'old'), diff, true).clean, true);
    // A hunk whose context is not where it says is a problem, not an offset silently taken.
    const moved = applyToCopies(join(dir, 'old'), part.replace('@@ -18,6', '@@ -16,6'), true);
    assert.equal(moved.clean, false);
    assert.match(moved.problems.join(' '), /offset/);
  });

  it('keeps a missing newline at the end of the file', () => {
    const text = '--- a/x.h\n+++ b/x.h\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n';
    const split = splitHunks(text);
    assert.equal(split.hunks[0]?.lines.length, 5);
    assert.equal(renderHunks(split, [0]), text);
  });

  it('joins two subsets of one diff (two files of one update needing different hunks)', () => {
    const split = splitHunks(diff);
    assert.equal(unionHunks(renderHunks(split, [0, 3]), renderHunks(split, [1, 3])), renderHunks(split, [0, 1, 3]));
    assert.equal(unionHunks(renderHunks(split, [2]), renderHunks(split, [0, 1, 3])), diff);
    assert.throws(() => unionHunks(renderHunks(split, [0]), renderHunks(split, [0]).replace('added_member', 'other')), /different hunks/);
  });

  it('reads what the compiler missed: members and functions, a structure tag only alone', () => {
    const names = missingNames(
      [
        "kernel/exit.c:558:16: error: ‘struct task_struct’ has no member named ‘user_dumpable’",
        "drivers/base/core.c:197:9: error: implicit declaration of function ‘fwnode_set_flag’; did you mean ‘of_node_set_flag’? [-Werror=implicit-function-declaration]",
        "fs/x.c:3:1: error: invalid use of undefined type ‘struct fb_deferred_io’",
        'fs/x.c:12:1: warning: unused variable ‘quiet’',
      ].join('\n'),
    ).map((n) => n.name);
    assert.deepEqual(names, ['user_dumpable', 'fwnode_set_flag', 'fb_deferred_io']);
  });

  // A stand-in compiler: the unit uses added_member and new_helper; new_helper needs the macro.
  const compiler = (calls: string[][]): HunkCompile => async (diffs) => {
    const text = diffs.get(path) ?? '';
    calls.push([...text.matchAll(/^@@ -(\d+)/gm)].map((m) => m[1] ?? ''));
    const errors: string[] = [];
    if (!text.includes('+int added_member;')) errors.push("u.c:1:1: error: ‘struct s’ has no member named ‘added_member’");
    if (!text.includes('+static inline int new_helper')) errors.push("u.c:2:1: error: implicit declaration of function ‘new_helper’ [-Werror=implicit-function-declaration]");
    else if (!text.includes('+#define HELPER_SHIFT')) errors.push(`${path}:21:1: error: ‘HELPER_SHIFT’ undeclared (first use in this function)`);
    return { ok: errors.length === 0, output: errors.join('\n') };
  };

  it('starts from the hunks naming what was missed, adds those the next errors name, drops the ones not needed', async () => {
    const calls: string[][] = [];
    const alone = (await compiler([])(new Map())).output;
    const selection = await selectHunks([{ path, diff }], [alone], compiler(calls));
    assert.equal(selection.ok, true);
    assert.equal(selection.method, 'named');
    // Seeds 1 and 2; HELPER_SHIFT adds 3 and 4 (its comment names it); each is then taken away
    // in turn: only 4 goes. Hunk 3's #define is a constant: it is not narrowed.
    assert.deepEqual(calls, [['3', '18'], ['3', '18', '34', '48'], ['18', '34', '48'], ['3', '34', '48'], ['3', '18', '48'], ['3', '18', '34']]);
    const choice = selection.choices[0];
    assert.deepEqual(choice?.kept.map((k) => k.index), [1, 2, 3]);
    assert.equal(choice?.total, 4);
    assert.match(choice?.kept[2]?.reason ?? '', /^names HELPER_SHIFT: .*undeclared/);
    assert.doesNotMatch(choice?.kept[2]?.reason ?? '', /narrowed/);
    assert.match(choice?.kept[0]?.at ?? '', /^@@ -3,6 \+3,7 @@/);
    assert.doesNotMatch(choice?.diff ?? '', /unrelated_change/);
  });

  it('falls back to taking hunks away one at a time when the names lead nowhere', async () => {
    const calls: string[][] = [];
    // The errors name nothing any hunk has: no seed, no progress, then removal.
    const selection = await selectHunks([{ path, diff }], ['u.c:1:1: error: expected ‘;’ before ‘}’ token'], async (diffs) => {
      const result = await compiler(calls)(diffs);
      return { ok: result.ok, output: result.ok ? '' : 'u.c:1:1: error: something else entirely' };
    });
    assert.equal(selection.ok, true);
    assert.equal(selection.method, 'removal');
    assert.deepEqual(selection.choices[0]?.kept.map((k) => k.index), [1, 2, 3]);
    assert.match(selection.choices[0]?.kept[0]?.reason ?? '', /^without it: /);
    // One compile with nothing, one with the whole diff, then one per hunk.
    assert.equal(selection.compiles, 1 + 1 + 4);
  });

  it('says so when even the whole diff does not compile', async () => {
    const selection = await selectHunks([{ path, diff }], [], async () => ({ ok: false, output: 'u.c:1:1: error: no' }));
    assert.equal(selection.ok, false);
    assert.equal(selection.choices[0]?.kept.length, 4);
  });
});

describe('narrowing a hunk to the #defines a file needs', () => {
  const tcpHeader = [
    '--- a/include/linux/tcp.h',
    '+++ b/include/linux/tcp.h',
    '@@ -471,10 +471,11 @@ enum tsq_flags {',
    ' \tTCPF_MTU_REDUCED_DEFERRED\t= (1UL << TCP_MTU_REDUCED_DEFERRED),',
    ' };',
    ' ',
    '-static inline struct tcp_sock *tcp_sk(const struct sock *sk)',
    '-{',
    '-\treturn (struct tcp_sock *)sk;',
    '-}',
    '+#define tcp_sk(ptr) container_of_const(ptr, struct tcp_sock, inet_conn.icsk_inet.sk)',
    '+',
    '+/* Variant of tcp_sk() upgrading a const sock to a read/write tcp socket. */',
    '+#define tcp_sk_rw(ptr) container_of(ptr, struct tcp_sock, \\',
    '+\t\t\t\t\tinet_conn.icsk_inet.sk)',
    ' ',
    ' struct tcp_timewait_sock {',
    ' \tstruct inet_timewait_sock tw_sk;',
    '@@ -900,2 +901,3 @@ static inline void later(void)',
    ' a',
    '+b',
    ' c',
    '',
  ].join('\n');

  it('keeps the lines it removes and adds only the #define of the missing name', () => {
    const hunk = splitHunks(tcpHeader).hunks[0];
    assert.ok(hunk);
    const narrowed = narrowToDefines(hunk, new Set(['tcp_sk_rw']));
    assert.ok(narrowed);
    assert.deepEqual(
      narrowed.lines.filter((l) => !l.startsWith(' ')),
      ['+#define tcp_sk_rw(ptr) container_of(ptr, struct tcp_sock, \\', '+\t\t\t\t\tinet_conn.icsk_inet.sk)'],
    );
    // The inline it would have replaced stays; three lines of context on each side.
    assert.deepEqual(narrowed.lines.slice(0, 3), [' {', ' \treturn (struct tcp_sock *)sk;', ' }']);
    assert.equal(narrowed.lines.length, 3 + 2 + 3);
    assert.match(narrowed.at, /^@@ -475,6 \+475,8 @@ enum tsq_flags \{/);
    assert.equal(narrowToDefines(hunk, new Set(['tcp_sk_other'])), undefined);
    // A constant gives a meaning to bits of data (genetlink.h's GENL_MCAST_CAP_NET_ADMIN): not narrowed.
    const constant = { ...hunk, lines: hunk.lines.map((l) => (l.startsWith('+#define tcp_sk_rw') ? '+#define TCP_SK_RW_FLAG 0x1 \\' : l)) };
    assert.equal(narrowToDefines(constant, new Set(['TCP_SK_RW_FLAG'])), undefined);
    // A #define the hunk changes (removed and added) would be defined twice: not narrowed.
    const redefined = { ...hunk, lines: hunk.lines.map((l) => (l.startsWith('-static inline') ? '-#define tcp_sk_rw(ptr) ((struct tcp_sock *)(ptr))' : l)) };
    assert.equal(narrowToDefines(redefined, new Set(['tcp_sk_rw'])), undefined);
  });

  it('narrows a kept hunk when the unit compiles with the narrowed header', async () => {
    const gcc: HunkCompile = async (diffs) => {
      const text = diffs.get('include/linux/tcp.h') ?? '';
      return text.includes('#define tcp_sk_rw') ? { ok: true, output: '' } : { ok: false, output: "net/ipv4/tcp_output.c:4213:36: error: implicit declaration of function ‘tcp_sk_rw’" };
    };
    const selection = await selectHunks([{ path: 'include/linux/tcp.h', diff: tcpHeader }], ["net/ipv4/tcp_output.c:4213:36: error: implicit declaration of function ‘tcp_sk_rw’"], gcc);
    assert.equal(selection.ok, true);
    const choice = selection.choices[0];
    assert.deepEqual(choice?.kept.map((k) => k.index), [1]);
    assert.match(choice?.kept[0]?.reason ?? '', /narrowed to the #define of tcp_sk_rw/);
    assert.doesNotMatch(choice?.diff ?? '', /container_of_const/);
    assert.match(choice?.diff ?? '', /^ \treturn \(struct tcp_sock \*\)sk;$/m);
    // A unit that needs the whole hunk (it uses the const-preserving tcp_sk) keeps it whole.
    const strict: HunkCompile = async (diffs) => ((diffs.get('include/linux/tcp.h') ?? '').includes('+#define tcp_sk(ptr)') ? { ok: true, output: '' } : { ok: false, output: "x.c:1:1: error: implicit declaration of function ‘tcp_sk_rw’" });
    const whole = await selectHunks([{ path: 'include/linux/tcp.h', diff: tcpHeader }], ["x.c:1:1: error: implicit declaration of function ‘tcp_sk_rw’"], strict);
    assert.match(whole.choices[0]?.diff ?? '', /container_of_const/);
  });
});

describe('header hunks that are the other half of the file\'s change of data', () => {
  // net/packet/internal.h: one hunk removes `running` from struct packet_sock, another adds
  // the flag bit that replaces it; af_packet.c needs only the second to compile.
  const internal = [
    '--- a/net/packet/internal.h',
    '+++ b/net/packet/internal.h',
    '@@ -117,7 +117,6 @@',
    ' \tspinlock_t\t\tbind_lock;',
    ' \tstruct mutex\t\tpg_vec_lock;',
    ' \tunsigned long\t\tflags;',
    '-\tunsigned int\t\trunning;\t/* bind_lock must be held */',
    ' \tint\t\t\tpressure;',
    ' \tint\t\t\tifindex;\t/* bound device\t\t*/',
    ' \t__be16\t\t\tnum;',
    '@@ -146,6 +145,7 @@ static inline struct packet_sock *pkt_sk',
    ' enum packet_sock_flags {',
    ' \tPACKET_SOCK_ORIGDEV,',
    ' \tPACKET_SOCK_AUXDATA,',
    '+\tPACKET_SOCK_RUNNING,',
    ' };',
    ' ',
    ' static inline void packet_sock_flag_set(struct packet_sock *po,',
    '',
  ].join('\n');
  const own = ['--- a/net/packet/af_packet.c', '+++ b/net/packet/af_packet.c', '@@ -340,1 +340,1 @@', '-\tif (po->running)', '+\tif (packet_sock_flag(po, PACKET_SOCK_RUNNING))', ''].join('\n');
  const error = "net/packet/af_packet.c:343:35: error: ‘PACKET_SOCK_RUNNING’ undeclared (first use in this function)";
  const gcc: HunkCompile = async (diffs) => ((diffs.get('net/packet/internal.h') ?? '').includes('+\tPACKET_SOCK_RUNNING') ? { ok: true, output: '' } : { ok: false, output: error });

  it('reads the names a diff stops using, comments and C words aside', () => {
    assert.deepEqual([...removedNames(own.split('\n'))], ['running']);
    assert.deepEqual(sharedRemovals(splitHunks(internal).hunks[0]?.lines ?? [], new Set(['running', 'held'])), ['running']);
  });

  it('keeps the hunk removing the member the file stops using, with the one it needs to compile', async () => {
    const alone = await selectHunks([{ path: 'net/packet/internal.h', diff: internal }], [error], gcc);
    assert.deepEqual(alone.choices[0]?.kept.map((k) => k.index), [2]);
    const selection = await selectHunks([{ path: 'net/packet/internal.h', diff: internal }], [error], gcc, { ownDiff: own });
    assert.deepEqual(selection.choices[0]?.kept.map((k) => k.index), [1, 2]);
    assert.match(selection.choices[0]?.kept[0]?.reason ?? '', /^removes running, which the file's own diff stops using/);
    assert.match(selection.choices[0]?.diff ?? '', /^-\tunsigned int\t\trunning;/m);
  });
});

describe('includingUnit', () => {
  const tree = mkdtempSync(join(tmpdir(), 'tsplice-corpus-test-'));
  after(() => rmSync(tree, { recursive: true, force: true }));
  mkdirSync(join(tree, 'kernel/sched'), { recursive: true });
  writeFileSync(join(tree, 'kernel/sched/build_policy.c'), '#include "rt.c"\n');
  writeFileSync(join(tree, 'kernel/sched/rt.c'), '');

  it('finds the .c file of the same folder that #includes it', () => {
    assert.equal(includingUnit(tree, 'kernel/sched/rt.c'), 'kernel/sched/build_policy.c');
    assert.equal(includingUnit(tree, 'kernel/sched/build_policy.c'), undefined);
  });
});

/**
 * Two tiny trees as the lab prepares them: Makefiles, auto.conf, and for each unit of the old
 * one the command and dependencies kbuild recorded (.cmd) beside an up-to-date object, so the
 * derivation reads kbuild's records and compiles with the host's gcc, never running make.
 * net/core.c is built in; net/both.c is listed built in but compiled for nf_tables; nft_ct.c is
 * part of nf_tables; common.c of drv_a and drv_b; sched/act_csum.c a module of its own; xt_cpu.c
 * needs a helper that its folder's changed nf_internals.h adds, which it reaches through an
 * unchanged sibling header ("nf_sibling.h" includes "nf_internals.h").
 */
function fixtureTrees(): { top: string; options: Omit<DeriveOptions, 'log'> } {
  const top = mkdtempSync(join(tmpdir(), 'tsplice-derive-test-'));
  const write = (side: 'old' | 'new', path: string, text: string): void => {
    mkdirSync(dirname(join(top, side, path)), { recursive: true });
    writeFileSync(join(top, side, path), text);
  };
  const both = (path: string, text: string): void => {
    write('old', path, text);
    write('new', path, text);
  };
  both('Kbuild', 'obj-y += net/\n');
  both('Makefile', 'core-y :=\n');
  both('arch/x86/Makefile', '');
  both('include/config/auto.conf', 'CONFIG_NF=m\nCONFIG_64BIT=y\n');
  both('net/Makefile', 'obj-y += core.o both.o\nobj-$(CONFIG_NF) += nf_tables.o xt_cpu.o drv_a.o drv_b.o sched/\nnf_tables-y := nft_ct.o\ndrv_a-y := common.o\ndrv_b-y := common.o\n');
  both('net/sched/Makefile', 'obj-$(CONFIG_NF) += act_csum.o\n');
  both('net/nf_sibling.h', '#include "nf_internals.h"\n');
  write('old', 'net/nf_internals.h', 'int nf_old(void);\n');
  write('new', 'net/nf_internals.h', 'int nf_old(void);\nstatic inline int nf_new_helper(void) { return 3; }\n');
  const units: [string, string | undefined][] = [
    ['net/core.c', undefined],
    ['net/both.c', 'nf_tables'],
    ['net/nft_ct.c', 'nf_tables'],
    ['net/common.c', 'drv_a:drv_b'],
    ['net/sched/act_csum.c', 'act_csum'],
    ['net/xt_cpu.c', 'xt_cpu'],
  ];
  for (const [unit, module] of units) {
    const name = unit.replace(/\W/g, '_');
    const uses = unit === 'net/xt_cpu.c' ? ['#include "nf_sibling.h"\n', 'nf_new_helper()'] : ['', '2'];
    write('old', unit, `${uses[0]}int ${name}(void) { return 1; }\n`);
    write('new', unit, `${uses[0]}int ${name}(void) { return ${uses[1]}; }\n`);
    const object = unit.replace(/\.c$/, '.o');
    const flags = module ? `-DMODULE -DKBUILD_MODNAME='"${module}"'` : `-DKBUILD_MODNAME='"${name}"'`;
    const command = `gcc -ffunction-sections -Werror=implicit-function-declaration ${flags} -c -o ${object} ${unit}`;
    // gcc names a header reached by a quoted ../ include as it was named: kept so here.
    const deps = [unit, ...(unit === 'net/xt_cpu.c' ? ['net/nf_sibling.h', 'net/sched/../nf_internals.h'] : [])];
    const cmd = `cmd_${object} := ${command}\n\nsource_${object} := ${unit}\n\ndeps_${object} := \\\n${deps.map((d) => `  ${d} \\\n`).join('')}\n${object}: $(deps_${object})\n`;
    write('old', join(dirname(unit), `.${object.split('/').pop() ?? ''}.cmd`), cmd);
    write('old', object, '');
    // Newer than its dependencies, as kbuild leaves it: the pre object is not built again.
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(top, 'old', object), later, later);
  }
  const tree = (side: string): DeriveOptions['oldTree'] => ({ release: 'test', sourceVersion: side, dir: join(top, side), makeVariables: [] });
  return { top, options: { oldTree: tree('old'), newTree: tree('new') } };
}

describe('deriving module units', () => {
  const made: string[] = [];
  after(() => {
    for (const top of made) rmSync(top, { recursive: true, force: true });
  });
  /** A derivation on fresh fixture trees; `onLog` sees each progress line as it is printed. */
  const derive = async (choice: Partial<DeriveOptions>, onLog: (line: string, top: string) => void = () => {}): Promise<{ derived: Awaited<ReturnType<typeof deriveCorpus>>; lines: string[] }> => {
    const { top, options } = fixtureTrees();
    made.push(top);
    const lines: string[] = [];
    const derived = await deriveCorpus({ ...options, ...choice, log: (line) => (lines.push(line), onLog(line, top)) });
    return { derived, lines };
  };
  const entry = (derived: Awaited<ReturnType<typeof deriveCorpus>>, file: string) => derived.manifest.files.find((f) => f.file === file);

  it('records a module unit with its module, as create finds it from kbuild', async () => {
    const { derived, lines } = await derive({ status: 'module' });
    assert.deepEqual(derived.manifest.files.map((f) => f.file), ['net/common.c', 'net/nft_ct.c', 'net/sched/act_csum.c', 'net/xt_cpu.c']);
    const ct = entry(derived, 'net/nft_ct.c');
    assert.equal(ct?.status, 'module');
    assert.equal(ct?.module, 'nf_tables');
    assert.equal(ct?.moduleRefusal, undefined);
    assert.equal(ct?.compile, 'alone');
    assert.equal(entry(derived, 'net/sched/act_csum.c')?.module, 'act_csum');
    assert.match(derived.patches.get('net-nft_ct.patch') ?? '', /^\+int net_nft_ct_c\(void\) \{ return 2; \}$/m);
    // Progress, n of total, on the log.
    assert.ok(lines.includes('[2/4] net/nft_ct.c (module unit)...'), lines.join('\n'));
    assert.equal(derived.manifest.deriveErrors, undefined);
  });

  it('records a unit of several modules with create\'s refusal, not dropping it', async () => {
    const { derived } = await derive({ status: 'module', only: ['net/common.c'] });
    const common = entry(derived, 'net/common.c');
    assert.equal(common?.status, 'module');
    assert.equal(common?.module, undefined);
    assert.deepEqual(common?.moduleRefusal, { kind: 'several-modules', reason: 'linked into several modules (drv_a, drv_b)' });
    assert.ok(derived.patches.has('net-common.patch'));
  });

  it('chooses built-in units by default, module units or all with --status', async () => {
    const { derived } = await derive({});
    assert.deepEqual(derived.manifest.files.map((f) => [f.file, f.status]), [['net/both.c', 'built-in'], ['net/core.c', 'built-in']]);
    assert.equal(entry(derived, 'net/core.c')?.module, undefined);
    assert.deepEqual(entry(derived, 'net/both.c')?.moduleRefusal, { kind: 'built-in-and-module', reason: 'linked both into vmlinux and into the module nf_tables' });
    assert.equal(entry(derived, 'net/both.c')?.module, 'nf_tables');
    const all: Candidate[] = [
      { file: 'kernel/a.c', unit: 'kernel/a.c', status: 'built-in' },
      { file: 'net/netfilter/b.c', unit: 'net/netfilter/b.c', status: 'module' },
      { file: 'drivers/c.c', unit: 'drivers/c.c', status: 'not built' },
    ];
    assert.deepEqual(selectCandidates(all, {}).map((c) => c.file), ['kernel/a.c']);
    assert.deepEqual(selectCandidates(all, { status: 'module' }).map((c) => c.file), ['net/netfilter/b.c']);
    assert.deepEqual(selectCandidates(all, { status: 'all' }).map((c) => c.file), ['kernel/a.c', 'net/netfilter/b.c']);
  });

  it('chooses the files under a folder with --under', async () => {
    const { derived } = await derive({ status: 'all', under: 'net/sched/' });
    assert.deepEqual(derived.manifest.files.map((f) => f.file), ['net/sched/act_csum.c']);
    const all: Candidate[] = [
      { file: 'net/netfilter/nft_ct.c', unit: 'net/netfilter/nft_ct.c', status: 'module' },
      { file: 'net/netfilter2/x.c', unit: 'net/netfilter2/x.c', status: 'module' },
      { file: 'net/netfilter/ipvs/ip_vs_core.c', unit: 'net/netfilter/ipvs/ip_vs_core.c', status: 'module' },
    ];
    assert.deepEqual(selectCandidates(all, { status: 'module', under: 'net/netfilter' }).map((c) => c.file), ['net/netfilter/nft_ct.c', 'net/netfilter/ipvs/ip_vs_core.c']);
    assert.deepEqual(selectCandidates(all, { status: 'module', under: 'net/netfilter', only: ['net/netfilter/nft_ct.c'] }).length, 1);
    assert.deepEqual(selectCandidates(all, { status: 'module', limit: 2 }).length, 2);
  });

  it('groups the hunk of a changed header of the unit\'s own folder, reached through a sibling', async () => {
    const { derived } = await derive({ status: 'module', only: ['net/xt_cpu.c'] });
    const cpu = entry(derived, 'net/xt_cpu.c');
    assert.equal(cpu?.compile, 'with-headers', cpu?.compileError);
    assert.deepEqual(cpu?.headers.map((h) => [h.path, h.hunks?.length, h.hunksTotal]), [['net/nf_internals.h', 1, 1]]);
    assert.match(cpu?.headers[0]?.reason ?? '', /implicit declaration of function ‘nf_new_helper’/);
    assert.match(derived.patches.get('net-xt_cpu.patch') ?? '', /^\+\+\+ b\/net\/nf_internals\.h$/m);
  });

  it('records a file whose patch does not apply with patch\'s words, and goes on', async () => {
    // The old tree changes under the derivation (as a copy written into it once did): the header
    // hunk is already there when the patch is checked.
    const kept = new Map<string, DerivedFile>();
    const store: DerivationStore = { kept: () => undefined, keep: (c, derived) => void kept.set(c.file, derived) };
    const { derived, lines } = await derive({ status: 'module', store }, (line, top) => {
      if (line.startsWith('  hunks (')) writeFileSync(join(top, 'old', 'net/nf_internals.h'), readFileSync(join(top, 'new', 'net/nf_internals.h')));
    });
    // The same inputs would fail the same way: the failure is kept, with its kind.
    const keptFailure = kept.get('net/xt_cpu.c');
    assert.ok(keptFailure !== undefined && 'deriveError' in keptFailure && keptFailure.kind === 'patch-does-not-apply', JSON.stringify(keptFailure));
    assert.deepEqual(derived.manifest.files.map((f) => f.file), ['net/common.c', 'net/nft_ct.c', 'net/sched/act_csum.c']);
    const failed = derived.manifest.deriveErrors ?? [];
    assert.deepEqual(failed.map((f) => [f.file, f.status, f.module]), [['net/xt_cpu.c', 'module', 'xt_cpu']]);
    assert.match(failed[0]?.deriveError ?? '', /^net\/xt_cpu\.c: its derived patch does not apply to the old files .*Reversed \(or previously applied\) patch detected/);
    assert.doesNotMatch(failed[0]?.deriveError ?? '', /\n/);
    assert.ok(!derived.patches.has('net-xt_cpu.patch'));
    assert.ok(lines.some((l) => l.startsWith('  derive error: net/xt_cpu.c: ')));
  });

  it('derives several files at once into the same manifest and patches, in the same order', async () => {
    const one = (await derive({ status: 'all' })).derived;
    const three = (await derive({ status: 'all', jobs: 3 })).derived;
    assert.deepEqual(three.manifest.files.map((f) => f.file), one.manifest.files.map((f) => f.file));
    assert.deepEqual(
      three.manifest.files.map((f) => [f.file, f.sha256, f.compile, f.module, f.headers.map((h) => h.path)]),
      one.manifest.files.map((f) => [f.file, f.sha256, f.compile, f.module, f.headers.map((h) => h.path)]),
    );
    assert.equal(three.manifest.files.length, 6);
    assert.deepEqual([...three.patches.keys()].sort(), [...one.patches.keys()].sort());
  });

  it('resumes from a store: a file kept by an earlier run is taken as it is, the rest derived', async () => {
    const kept = new Map<string, DerivedFile>();
    const store: DerivationStore = { kept: (c) => kept.get(c.file), keep: (c, derived) => void kept.set(c.file, derived) };
    const first = (await derive({ status: 'module', store })).derived;
    assert.deepEqual([...kept.keys()].sort(), ['net/common.c', 'net/nft_ct.c', 'net/sched/act_csum.c', 'net/xt_cpu.c']);
    // As if the first run had been killed after two files.
    kept.delete('net/sched/act_csum.c');
    kept.delete('net/xt_cpu.c');
    // A mark in a kept patch shows that the run took it rather than deriving the file again.
    const nftCt = kept.get('net/nft_ct.c') as { entry: CorpusEntry; text: string };
    kept.set('net/nft_ct.c', { ...nftCt, text: `${nftCt.text}# kept\n` });
    const { derived, lines } = await derive({ status: 'module', store });
    assert.ok(lines.includes('2 of 4 files were derived before (kept in the cache).'), lines.join('\n'));
    assert.ok(!lines.some((l) => l.startsWith('[1/4]') || l.startsWith('[2/4]')), lines.join('\n'));
    assert.ok(lines.includes('[3/4] net/sched/act_csum.c (module unit)...'), lines.join('\n'));
    assert.match(derived.patches.get('net-nft_ct.patch') ?? '', /# kept\n$/);
    assert.deepEqual(derived.manifest.files.map((f) => [f.file, f.sha256]), first.manifest.files.map((f) => [f.file, f.sha256]));
    assert.deepEqual([...kept.keys()].sort(), ['net/common.c', 'net/nft_ct.c', 'net/sched/act_csum.c', 'net/xt_cpu.c']);
  });

  it('says why a file is or is not a candidate', () => {
    const { top, options } = fixtureTrees();
    made.push(top);
    const changes = treeChanges(options.oldTree.dir, options.newTree.dir);
    const classified = classifyChanges(options.oldTree.dir, options.newTree.dir, changes);
    assert.match(whyCandidate('net/nft_ct.c', changes, classified, {}), /^net\/nft_ct\.c is a candidate of status module \(unit net\/nft_ct\.c\), left out by --status built-in\.$/);
    assert.match(whyCandidate('net/nft_ct.c', changes, classified, { status: 'all', under: 'net/sched' }), /not under net\/sched/);
    assert.equal(whyCandidate('net/core.c', changes, classified, {}), 'net/core.c is a candidate of status built-in (unit net/core.c).');
    assert.match(whyCandidate('net/nf_internals.h', changes, classified, {}), /is a changed header/);
    assert.match(whyCandidate('net/nf_sibling.h', changes, classified, {}), /does not differ/);
  });
});

describe('finding a changed header by its include', () => {
  it('normalizes the ../ paths of kbuild\'s dependency lists', () => {
    const tree = mkdtempSync(join(tmpdir(), 'tsplice-derive-deps-'));
    after(() => rmSync(tree, { recursive: true, force: true }));
    mkdirSync(join(tree, 'sound/soc/sof/intel'), { recursive: true });
    writeFileSync(join(tree, 'sound/soc/sof/intel/.hda-ipc.o.cmd'), 'cmd_x := gcc\n\ndeps_sound/soc/sof/intel/hda-ipc.o := \\\n  sound/soc/sof/intel/hda-ipc.c \\\n  sound/soc/sof/intel/../ops.h \\\n  $(wildcard include/config/X) \\\n\n');
    assert.deepEqual(objectDependencies(tree, 'sound/soc/sof/intel/hda-ipc.o'), ['sound/soc/sof/intel/hda-ipc.c', 'sound/soc/sof/ops.h']);
  });

  it('matches "x.h" and "../x.h" beside the including file, <linux/x.h> by its tail', () => {
    assert.equal(headerNamed('net/netfilter/nf_internals.h', 'nf_internals.h', 'net/netfilter'), true);
    assert.equal(headerNamed('net/ipv4/nf_internals.h', 'nf_internals.h', 'net/netfilter'), false);
    assert.equal(headerNamed('sound/soc/sof/ops.h', '../ops.h', 'sound/soc/sof/intel'), true);
    assert.equal(headerNamed('include/rdma/iter.h', 'rdma/iter.h', 'fs'), true);
    assert.equal(headerNamed('include/linux/ops.h', '../ops.h', 'sound/soc/sof/intel'), false);
  });
});
