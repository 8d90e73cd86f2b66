/**
 * The header reach on small texts: which units a header change's names reach, directly or
 * through the other headers' items. No kernel tree needed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { headerChange } from './header-change.js';
import { findReach, type ReachInput } from './header-reach.js';

/** The units `files` (name -> text) reach when `header` changes from `pre` to `post`. */
function reached(header: string, pre: string, post: string, files: Record<string, string>, units: string[], extra: Partial<ReachInput> = {}): Record<string, string[]> {
  const texts: Record<string, string> = { ...files, [header]: `${pre}\n${post}` };
  const result = findReach({
    change: headerChange(header, pre, post),
    files: Object.keys(texts).filter((f) => f.endsWith('.h')),
    units,
    read: (file) => texts[file] ?? '',
    ...extra,
  });
  return Object.fromEntries(result.units);
}

describe('the units a header change reaches', () => {
  const string = 'void *memchr_inv(const void *s, int c, size_t n);\n';
  const withInline = `${string}static inline bool mem_is_zero(const void *s, size_t n)\n{\n\treturn !memchr_inv(s, 0, n);\n}\n`;

  it('a whitespace-only macro change reaches no unit', () => {
    const pre = '#define X86_FEATURE_ZEN\t\t\t(7*32+28) /* "" CPU based on Zen microarchitecture */\n';
    assert.deepEqual(reached('cpufeatures.h', pre, pre.replace('(7*32+28)', '(7 * 32 + 28)'), { 'a.c': 'x = X86_FEATURE_ZEN;' }, ['a.c']), {});
  });

  it('a new inline reaches only the units that name it', () => {
    const units = { 'uses.c': 'if (mem_is_zero(p, 4)) return;', 'other.c': 'memchr_inv(p, 0, 4); /* mem_is_zero */' };
    assert.deepEqual(reached('string.h', string, withInline, units, Object.keys(units)), { 'uses.c': ['mem_is_zero'] });
  });

  it('a changed inline reaches the units calling an inline of another header that calls it', () => {
    const post = withInline.replace('!memchr_inv(s, 0, n)', 'n == 0 || !memchr_inv(s, 0, n)');
    const files = {
      'bitmap.h': '#include <string.h>\nstatic inline bool bitmap_empty(const unsigned long *b, int n)\n{\n\treturn mem_is_zero(b, n / 8);\n}\n',
      'calls-bitmap.c': 'return bitmap_empty(mask, 64);',
      'calls-neither.c': 'return bitmap_full(mask, 64);',
    };
    assert.deepEqual(reached('string.h', withInline, post, files, ['calls-bitmap.c', 'calls-neither.c']), { 'calls-bitmap.c': ['mem_is_zero'] });
  });

  it('a struct tag and a function of the same name are different names', () => {
    const pre = 'enum hrtimer_restart { HRTIMER_NORESTART, HRTIMER_RESTART };\nvoid hrtimer_restart(struct hrtimer *t);\n';
    const post = pre.replace('void hrtimer_restart(struct hrtimer *t);', 'void hrtimer_restart(struct hrtimer *t, int mode);');
    const files = { 'hrtimer.h': 'struct hrtimer { enum hrtimer_restart (*function)(struct hrtimer *); };\n' };
    const units = { 'uses-struct.c': 'struct hrtimer t;', 'calls.c': 'hrtimer_restart(t);' };
    assert.deepEqual(reached('restart.h', pre, post, { ...files, ...units }, Object.keys(units)), { 'calls.c': ['hrtimer_restart'] });
    // A changed tag counts wherever its identifier is written.
    const grown = pre.replace('HRTIMER_RESTART }', 'HRTIMER_RESTART, HRTIMER_LATER }');
    assert.deepEqual(Object.keys(reached('restart.h', pre, grown, { ...files, ...units }, Object.keys(units))), ['calls.c', 'uses-struct.c']);
  });

  it('names a top-level invocation pastes are followed by their tails', () => {
    const accessors = '#define __create_dev_flag_accessors(name, flag) \\\nstatic inline void dev_set_##name(struct device *dev) { set_bit(flag, dev->flags); }\n';
    const post = `${accessors}__create_dev_flag_accessors(ready_to_probe, DEV_FLAG_READY_TO_PROBE);\n`;
    const units = { 'core.c': 'dev_set_ready_to_probe(dev);', 'dd.c': 'dev_ready(dev);' };
    assert.deepEqual(reached('device.h', accessors, post, units, Object.keys(units)), { 'core.c': ['*ready_to_probe*'] });
  });

  it('a changed name a macro of another header pastes reaches the units that pass it the rest', () => {
    const pre = '#define X86_FEATURE_ZEN (7*32+28)\n';
    const post = `${pre}#define X86_FEATURE_ZEN1 (11*32+31)\n`;
    const files = {
      'reverse_cpuid.h': '#define feature_bit(name) __feature_bit(X86_FEATURE_##name)\n',
      'zen1.c': 'if (guest_cpuid_has(v, feature_bit(ZEN1))) return;',
      'zen.c': 'if (guest_cpuid_has(v, feature_bit(ZEN))) return;',
    };
    assert.deepEqual(reached('cpufeatures.h', pre, post, files, ['zen1.c', 'zen.c']), { 'zen1.c': ['X86_FEATURE_ZEN1'] });
  });

  it('changed trace events reach the unit that instantiates them; a unit defining an invoked macro expands it', () => {
    const event = (args: string): string => `#include <linux/tracepoint.h>\nTRACE_EVENT(hrtimer_start, TP_PROTO(${args}), TP_ARGS(t));\n#include <trace/define_trace.h>\n`;
    const units = { 'timer.c': '#define CREATE_TRACE_POINTS\n#include <trace/events/timer.h>\n', 'hrtimer.c': 'trace_hrtimer_start(t);', 'other.c': 'x();' };
    assert.deepEqual(reached('timer.h', event('struct hrtimer *t'), event('struct hrtimer *t, bool armed'), units, Object.keys(units)), {
      'hrtimer.c': ['*hrtimer_start*'],
      'timer.c': ['its trace events (the unit defines CREATE_TRACE_POINTS)'],
    });
    const xmacro = { 'list.c': '#define SUBSYS(x) extern int x##_id;\n#include "subsys.h"\n' };
    assert.deepEqual(reached('subsys.h', 'SUBSYS(cpu)\n', 'SUBSYS(cpu)\nSUBSYS(io)\n', xmacro, ['list.c']), { 'list.c': ['SUBSYS invocations (the unit defines SUBSYS)'] });
  });

  it('a change no name carries reaches every unit; so does a closure past its limit', () => {
    const units = ['a.c', 'b.c'];
    assert.deepEqual(reached('x.h', 'asm(".pushsection .x");\n', 'asm(".pushsection .y");\n', {}, units), {
      'a.c': ['x.h: changed at line 1: asm ( ".pushsection .y" ) ;'],
      'b.c': ['x.h: changed at line 1: asm ( ".pushsection .y" ) ;'],
    });
    const files = { 'y.h': '#define B A\n#define C B\n', 'a.c': 'A;' };
    assert.deepEqual(reached('x.h', '#define A 1\n', '#define A 2\n', files, units, { closureLimit: 2 }), {
      'a.c': ['A'],
      'b.c': ['what x.h changes is used by more than 2 names of the headers its including units see'],
    });
  });
});
