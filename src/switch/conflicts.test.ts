/**
 * Reading the kernel's lists of probed and redirected functions (debugfs kprobes/list, tracefs
 * enabled_functions), in the forms 6.1 prints them (kernel/kprobes.c report_probe,
 * kernel/trace/ftrace.c t_show).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { parseKprobeList, parseRedirectedFunctions } from './conflicts.js';

it('reads kprobes and kretprobes with their offsets, module and flags', () => {
  const text = [
    'ffffffffa344deb5  k  do_nanosleep+0x5    [OPTIMIZED]',
    'ffffffffa3c01230  r  schedule+0x0    [FTRACE]',
    'ffffffffc0a01010  k  target_show_value+0x0  tsplice_target [DISABLED][FTRACE]',
    '',
  ].join('\n');
  assert.deepEqual(
    parseKprobeList(text).map((p) => [p.function, p.offset]),
    [
      ['do_nanosleep', 5],
      ['schedule', 0],
      ['target_show_value', 0],
    ],
  );
});

it('finds the functions an ftrace user redirects (I) or a direct trampoline holds (D), not plain tracing', () => {
  const text = [
    'version_proc_show (1)          \ttramp: 0xffffffffc0001000 (function_trace_call+0x0/0x130) ->function_trace_call+0x0/0x130',
    'do_nanosleep (1) R I   \ttramp: 0xffffffffc0002000 (klp_ftrace_handler+0x0/0x1a0) ->klp_ftrace_handler+0x0/0x1a0',
    'target_wait [tsplice_target] (1) R   D \tdirect-->my_tramp+0x0/0x10',
    'schedule (2) R      ',
  ].join('\n');
  const redirected = parseRedirectedFunctions(text);
  assert.deepEqual([...redirected.keys()], ['do_nanosleep', 'target_wait']);
  assert.match(redirected.get('do_nanosleep') ?? '', /IPMODIFY/);
  assert.match(redirected.get('target_wait') ?? '', /direct/);
});
