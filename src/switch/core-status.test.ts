/** The core module's text protocol, without a kernel: command lines and status records. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserError } from '../host/errors.js';
import { busyReason, lateCommand, parseStatus, partCommand, stageCommand, switchCommand } from './core-status.js';

const STATUS = `tsplice-core 1 applied=1 lockdown=no
measure kind=scan id=u1 result=ok tasks=68 cpus=2 pause_ns=812345 call_ns=900000 wait_ns=1200
update u1 state=applied functions=2 attempts=1 applied_at=1764188679 pause_ns=8285880 call_ns=21741440 wait_ns=7900000 tasks=68 error=-
function u1 target_show_value old=0xffffffffc0340060 old_size=16 new=0xffffffffc0345000 new_size=16 new_name=replacement_show_value site=5 fentry=1 owner=tsplice_target new_owner=tsplice_replacement
function u1 do_sys_poll old=0xffffffffab3c0000 old_size=1200 new=0xffffffffc0345100 new_size=1210 new_name=do_sys_poll site=0 fentry=0 owner=- new_owner=tsplice_replacement
refusal pid=812 errno=16 command=apply id=u2 reason=busy function=target_wait task=345 comm=dd source=stack code=old symbol=target_wait+0x94/0xd0 module=tsplice_target attempts=3 retry_ms=200 error=apply u2 aborted: busy: function target_wait, task 345 (dd): target_wait+0x94/0xd0 [tsplice_target] is on its stack; gave up after 3 attempt(s) 200 ms apart
update u2 state=staged functions=0 attempts=3 applied_at=0 pause_ns=0 call_ns=0 wait_ns=0 tasks=70 reason=busy function=target_wait task=345 comm=dd source=stack code=old symbol=target_wait+0x94/0xd0 module=tsplice_target attempts=3 retry_ms=200 error=apply u2 aborted: busy: function target_wait, task 345 (dd): target_wait+0x94/0xd0 [tsplice_target] is on its stack; gave up after 3 attempt(s) 200 ms apart
`;

const BUSY_FIELDS = {
  function: 'target_wait',
  task: '345',
  comm: 'dd',
  source: 'stack',
  code: 'old',
  symbol: 'target_wait+0x94/0xd0',
  module: 'tsplice_target',
  attempts: '3',
  retry_ms: '200',
};

describe('core module status', () => {
  it('parses updates, functions and the last measurement', () => {
    const status = parseStatus(STATUS);
    assert.equal(status.version, 1);
    assert.equal(status.applied, 1);
    assert.equal(status.lockedDown, false);
    assert.deepEqual(status.measurement, { kind: 'scan', id: 'u1', result: 'ok', tasks: 68, cpus: 2, pauseNs: 812345, callNs: 900000, waitNs: 1200 });
    const [u1, u2] = status.updates;
    assert.equal(u1?.state, 'applied');
    assert.equal(u1?.appliedAt?.toISOString(), '2025-11-26T20:24:39.000Z');
    assert.equal(u1?.error, undefined);
    assert.equal(u1?.diagnostic, undefined);
    assert.deepEqual(u1?.functions[0], {
      name: 'target_show_value',
      oldAddress: 0xffffffffc0340060n,
      oldSize: 16,
      newAddress: 0xffffffffc0345000n,
      newSize: 16,
      newName: 'replacement_show_value',
      site: 5,
      fentry: true,
      owner: 'tsplice_target',
      newOwner: 'tsplice_replacement',
    });
    assert.equal(u1?.functions[1]?.owner, undefined);
    assert.equal(u1?.functions[1]?.fentry, false);
    assert.equal(u2?.state, 'staged');
    assert.equal(u2?.appliedAt, undefined);
    assert.match(u2?.error ?? '', /^apply u2 aborted: busy: function target_wait, task 345 \(dd\)/);
    assert.equal(u2?.attempts, 3);
    assert.equal(u2?.tasks, 70);
    assert.deepEqual(u2?.diagnostic, { reason: 'busy', fields: BUSY_FIELDS });
    assert.deepEqual(status.refusal, { pid: 812, errno: 16, command: 'apply', id: 'u2', diagnostic: { reason: 'busy', fields: BUSY_FIELDS }, error: u2?.error });
  });

  it('reads a refusal that left no update, with its id and fields', () => {
    const status = parseStatus(
      'tsplice-core 1 applied=0 lockdown=no\n' +
        'refusal pid=0 errno=84 command=stage id=bad reason=bytes-changed function=target_show_value offset=7 running=0f1f4400008b0595 expected=0f1f4400008b056a error=stage bad refused: target_show_value: running bytes differ from the expected ones at +7\n',
    );
    assert.deepEqual(status.refusal, {
      pid: 0,
      errno: 84,
      command: 'stage',
      id: 'bad',
      diagnostic: { reason: 'bytes-changed', fields: { function: 'target_show_value', offset: '7', running: '0f1f4400008b0595', expected: '0f1f4400008b056a' } },
      error: 'stage bad refused: target_show_value: running bytes differ from the expected ones at +7',
    });
    assert.equal(status.updates.length, 0);
    const measured = parseStatus('tsplice-core 1 applied=0 lockdown=yes\nrefusal pid=9 errno=1 command=measure id=- reason=locked-down error=refused: the kernel is locked down\n');
    assert.equal(measured.refusal?.id, undefined);
    assert.deepEqual(measured.refusal?.diagnostic, { reason: 'locked-down', fields: {} });
  });

  it('unescapes field values: a comm with a space, a backslash or bytes outside ASCII', () => {
    const status = parseStatus(
      'tsplice-core 1 applied=0 lockdown=no\n' +
        'measure kind=scan id=u2 result=busy tasks=68 cpus=2 pause_ns=1 call_ns=2 wait_ns=0 scanned=4 prescan_ns=5 reason=busy function=target_wait task=345 comm=my\\x20task\\x5c\\xc3\\xa9 source=graph code=new symbol=replacement_wait+0x10/0x40 module=tsplice_replacement\n',
    );
    const busy = busyReason(status.measurement?.diagnostic);
    assert.equal(status.measurement?.result, 'busy');
    assert.equal(busy?.comm, 'my task\\\u00e9');
    assert.equal(busy?.attempts, undefined);
    assert.equal(busy?.detail, 'replacement_wait+0x10/0x40 [tsplice_replacement] is a return address the function-graph tracer keeps for it (the new code)');
  });

  it('reads the pre-scan figures when the module prints them', () => {
    const status = parseStatus(
      'tsplice-core 1 applied=0 lockdown=no\n' +
        'measure kind=scan id=u1 result=ok tasks=520 cpus=2 pause_ns=41000 call_ns=90000 wait_ns=1200 scanned=6 prescan_ns=5300000\n' +
        'update u1 state=reverted functions=1 attempts=1 applied_at=1764188679 pause_ns=52000 call_ns=99000 wait_ns=0 tasks=521 scanned=7 prescan_ns=5400000 error=-\n',
    );
    assert.equal(status.measurement?.scanned, 6);
    assert.equal(status.measurement?.prescanNs, 5300000);
    assert.equal(status.updates[0]?.tasks, 521);
    assert.equal(status.updates[0]?.scanned, 7);
    assert.equal(status.updates[0]?.prescanNs, 5400000);
    assert.equal(status.updates[0]?.error, undefined);
  });

  it('reads who is staging an update: a live pid, or 0 once it has exited', () => {
    const status = parseStatus(
      'tsplice-core 1 applied=0 lockdown=no\n' +
        'update live state=staged owner=812 functions=1 attempts=0 applied_at=0 pause_ns=0 call_ns=0 wait_ns=0 tasks=0 error=-\n' +
        'update left state=staged owner=0 functions=1 attempts=0 applied_at=0 pause_ns=0 call_ns=0 wait_ns=0 tasks=0 error=-\n',
    );
    assert.deepEqual(
      status.updates.map((u) => [u.id, u.ownerPid]),
      [
        ['live', 812],
        ['left', 0],
      ],
    );
  });

  it('names the line it cannot read', () => {
    assert.throws(() => parseStatus('nonsense\n'), (e: unknown) => e instanceof UserError && /first line 'nonsense'/.test(e.message));
    assert.throws(
      () => parseStatus('tsplice-core 1 applied=0 lockdown=no\nfunction u9 f old=0x1\n'),
      (e: unknown) => e instanceof UserError && /belongs to no update/.test(e.message),
    );
    assert.throws(
      () => parseStatus('tsplice-core 1 applied=0 lockdown=no\nupdate u1 state=odd functions=0 attempts=0 applied_at=0 pause_ns=0 call_ns=0 wait_ns=0 tasks=0 error=-\n'),
      (e: unknown) => e instanceof UserError && /state=odd/.test(e.message),
    );
  });

  it('reads the function, pid and comm of a busy abort from its fields', () => {
    assert.deepEqual(busyReason({ reason: 'busy', fields: { ...BUSY_FIELDS, comm: 'my task' } }), {
      functionName: 'target_wait',
      pid: 345,
      comm: 'my task',
      source: 'stack',
      symbol: 'target_wait+0x94/0xd0',
      module: 'tsplice_target',
      newCode: false,
      attempts: 3,
      retryMs: 200,
      detail: 'target_wait+0x94/0xd0 [tsplice_target] is on its stack',
    });
    assert.equal(
      busyReason({ reason: 'busy', fields: { function: 'do_nanosleep', task: '7', comm: 'sleep', source: 'rethook-many', limit: '1024' } })?.detail,
      'more than 1024 kretprobe returns are pending for it, too many to check',
    );
    // Only the reason says busy: no sentence is read, and other reasons are not busy.
    assert.equal(busyReason({ reason: 'bytes-changed', fields: { function: 'f' } }), undefined);
    assert.equal(busyReason(undefined), undefined);
  });
});

describe('core module commands', () => {
  it('writes a stage line with hex addresses and the expected bytes', () => {
    const line = stageCommand('u1', {
      name: 'target_show_value',
      oldAddress: 0xffffffffc0340060n,
      oldSize: 16,
      newAddress: 0xffffffffc0345000n,
      newSize: 16,
      expected: Uint8Array.from([0x0f, 0x1f, 0x44, 0, 0, 0x8b, 0x05, 0x95, 0x11, 0]),
    });
    assert.equal(line, 'stage u1 target_show_value 0xffffffffc0340060 16 0xffffffffc0345000 16 0f1f4400008b05951100');
  });

  it('refuses bad ids, names and byte counts before the kernel sees them', () => {
    const fn = { name: 'f', oldAddress: 1n, oldSize: 16, newAddress: 2n, newSize: 16, expected: new Uint8Array(10) };
    assert.throws(() => stageCommand('bad id', fn), UserError);
    assert.throws(() => stageCommand('u1', { ...fn, name: 'f g' }), UserError);
    assert.throws(() => stageCommand('u1', { ...fn, expected: new Uint8Array(4) }), UserError);
    assert.throws(() => stageCommand('u1', { ...fn, oldSize: 0 }), UserError);
  });

  it('writes a part line with the whole pre code and its mask, and a late line', () => {
    const part = { name: 'bm_status_read', module: 'binfmt_misc', newAddress: 0xffffffffc0345000n, newSize: 64, pre: Uint8Array.from([0xe8, 0, 0, 0, 0, 0x48, 0x8b, 0x05, 0, 0, 0, 0]), mask: [{ offset: 0, length: 5 }, { offset: 8, length: 4 }] };
    assert.equal(partCommand('u1', part), 'part u1 bm_status_read binfmt_misc 0xffffffffc0345000 64 e800000000488b0500000000 0+5,8+4');
    assert.equal(partCommand('u1', { ...part, mask: [] }).split(' ').pop(), '-');
    assert.equal(partCommand('u1', { ...part, pinAt: 0xffffffffc0340060n }).split(' ').pop(), 'pin=0xffffffffc0340060');
    assert.throws(() => partCommand('u1', { ...part, module: 'bad module' }), UserError);
    assert.throws(() => partCommand('u1', { ...part, pre: new Uint8Array(48 * 1024 + 1) }), (e: unknown) => e instanceof UserError && e.kind === 'too-large' && e.diagnostic.function === 'bm_status_read');
    assert.equal(
      lateCommand('u1', { module: 'binfmt_misc', target: 'binfmt_misc', symbol: 'enabled', field: 0xffffffffc0345013n, type: 'pc32', addend: -4n }),
      'late u1 binfmt_misc 0xffffffffc0345013 pc32 binfmt_misc enabled -4',
    );
    // One of several copies of a name in the module: NAME#N, and nothing else after a '#'.
    const late = { module: 'xfs', target: 'xfs', symbol: '__key.0#2', field: 0xffffffffc0345013n, type: 'pc32' as const, addend: -4n };
    assert.equal(lateCommand('u1', late).split(' ')[6], '__key.0#2');
    assert.equal(partCommand('u1', { ...part, name: 'hci_uart_close#2' }).split(' ')[2], 'hci_uart_close#2');
    for (const symbol of ['__key.0#0', '__key.0#', 'a#2#3', '#2']) assert.throws(() => lateCommand('u1', { ...late, symbol }), UserError);
  });

  it('reads the parts of an update: bound, waiting, and refused with the kernel\'s reason', () => {
    const status = parseStatus(`tsplice-core 1 applied=1 lockdown=no
update u3 state=applied functions=1 attempts=1 applied_at=1764188679 pause_ns=1 call_ns=1 wait_ns=1 tasks=1 error=-
function u3 bm_status_read old=0xffffffffc0340060 old_size=64 new=0xffffffffc0345000 new_size=70 new_name=bm_status_read site=5 fentry=1 owner=binfmt_misc new_owner=tsplice_u3
part u3 bm_status_read module=binfmt_misc state=bound old=0xffffffffc0340060 loads=2 pre_size=64 new=0xffffffffc0345000 pinned=0 error=-
part u3 nft_ct_get_eval module=nft_ct state=waiting old=0x0 loads=0 pre_size=300 new=0xffffffffc0345100 pinned=1 error=-
part u3 xt_x module=xt_x state=refused old=0x0 loads=0 pre_size=40 new=0xffffffffc0345200 reason=pre-code-differs function=xt_x offset=0x1c error=xt_x: the running copy in xt_x differs from the pre code at +0x1c
`);
    const [bound, waiting, refused] = status.updates[0]?.parts ?? [];
    assert.deepEqual(bound, { name: 'bm_status_read', module: 'binfmt_misc', state: 'bound', oldAddress: 0xffffffffc0340060n, loads: 2, preSize: 64, newAddress: 0xffffffffc0345000n, pinned: false });
    assert.equal(waiting?.state, 'waiting');
    assert.equal(waiting?.oldAddress, undefined);
    assert.equal(waiting?.pinned, true);
    assert.deepEqual(refused?.diagnostic, { reason: 'pre-code-differs', fields: { function: 'xt_x', offset: '0x1c' } });
    assert.match(refused?.error ?? '', /differs from the pre code at \+0x1c$/);
  });

  it('writes apply and undo with optional tries and delay', () => {
    assert.equal(switchCommand('apply', 'u1'), 'apply u1');
    assert.equal(switchCommand('apply', 'u1', { tries: 3, retryMs: 200 }), 'apply u1 3 200');
    assert.equal(switchCommand('undo', 'u1', { retryMs: 10 }), 'undo u1 5 10');
    assert.equal(switchCommand('drop', 'u1', { tries: 20, retryMs: 100 }), 'drop u1 20 100');
    assert.throws(() => switchCommand('apply', 'u1', { tries: 0 }), UserError);
  });
});
