import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { UpdateFunction } from '../update/format.js';
import { acceptsRunningForm, identityMask, type RewriteSite } from './sites.js';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

it('accepts a cs-prefixed retpoline call the kernel kept, and only as a call', () => {
  const site: RewriteSite = { kind: 'retpoline', offset: 0xbd, length: 6 };
  const pre = bytes(0x2e, 0xe8, 0, 0, 0, 0);
  // fs/quota/dquot.c's dquot_scan_active on the lab kernel: the thunk call stays, rel32 filled in.
  assert.equal(acceptsRunningForm(site, pre, bytes(0x2e, 0xe8, 0x2d, 0xc0, 0xa0, 0x00)), true);
  assert.equal(acceptsRunningForm(site, pre, bytes(0x2e, 0xe9, 0x2d, 0xc0, 0xa0, 0x00)), false);
  // Rewritten to an indirect call through the register (retpolines off), padded.
  assert.equal(acceptsRunningForm(site, pre, bytes(0x41, 0xff, 0xd3, 0x90, 0x90, 0x90)), true);
  assert.equal(acceptsRunningForm(site, pre, bytes(0x2e, 0x90, 0x90, 0x90, 0x90, 0x90)), false);
});

it('accepts the fentry nop or an ftrace call and nothing else', () => {
  const site: RewriteSite = { kind: 'fentry', offset: 4, length: 5 };
  const pre = bytes(0xe8, 0, 0, 0, 0);
  assert.equal(acceptsRunningForm(site, pre, bytes(0x0f, 0x1f, 0x44, 0x00, 0x00)), true);
  assert.equal(acceptsRunningForm(site, pre, bytes(0xe8, 1, 2, 3, 4)), true);
  assert.equal(acceptsRunningForm(site, pre, bytes(0xe9, 1, 2, 3, 4)), false);
});

it('accepts the return thunk as ret; int3 and refuses other bytes', () => {
  const site: RewriteSite = { kind: 'return-thunk', offset: 10, length: 5 };
  const pre = bytes(0xe9, 0, 0, 0, 0);
  assert.equal(acceptsRunningForm(site, pre, bytes(0xc3, 0xcc, 0xcc, 0xcc, 0xcc)), true);
  assert.equal(acceptsRunningForm(site, pre, bytes(0xc3, 0x90, 0x90, 0x90, 0x90)), false);
});

it('masks a module function\'s relocation fields and rewrite sites, overlapping ones merged', () => {
  // call __fentry__ at 0 (relocated at 1, an __mcount_loc site), a 64-bit field at 9, jmp at 17 (PC32 at 18).
  const fn: UpdateFunction = {
    name: 'f',
    status: 'changed',
    unit: 'a.c',
    module: 'm',
    section: '.text.f',
    pre: {
      size: 22,
      bytes: Buffer.alloc(22).toString('base64'),
      relocations: [
        { offset: 1, type: 'R_X86_64_PLT32', addend: '-4', target: { kind: 'symbol', name: '__fentry__', addend: '0', local: false } },
        { offset: 9, type: 'R_X86_64_64', addend: '0', target: { kind: 'symbol', name: 'table', addend: '0', local: true } },
        { offset: 18, type: 'R_X86_64_PC32', addend: '-4', target: { kind: 'symbol', name: 'g', addend: '0', local: true } },
      ],
    },
    post: { size: 1, bytes: 'ww==', relocations: [] },
  };
  const fentry = { side: 'pre' as const, section: '__mcount_loc', unit: 'a.c', owner: 'f', offsetInOwner: '0', bytes: '', relocations: [] };
  assert.deepEqual(identityMask(fn, [fentry]), [
    { offset: 0, length: 5 },
    { offset: 9, length: 8 },
    { offset: 18, length: 4 },
  ]);
});
