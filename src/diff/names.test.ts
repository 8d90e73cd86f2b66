import assert from 'node:assert/strict';
import { it } from 'node:test';
import { canonicalName, isNumberedLabel, sourceFunctionName } from './names.js';

it('replaces compiler counters and nothing else', () => {
  assert.equal(canonicalName('foo.isra.0'), 'foo.isra.N');
  assert.equal(canonicalName('foo.constprop.0.isra.12'), 'foo.constprop.N.isra.N');
  assert.equal(canonicalName('count.1234'), 'count.N');
  assert.equal(canonicalName('CSWTCH.7'), 'CSWTCH.N');
  assert.equal(canonicalName('__UNIQUE_ID_ddebug421'), '__UNIQUE_ID_ddebugN');
  assert.equal(canonicalName('__BTF_ID__func__bpf_sk_lookup__403'), '__BTF_ID__func__bpf_sk_lookup__N');
  assert.equal(canonicalName('__BTF_ID__struct__sk_buff__12'), '__BTF_ID__struct__sk_buff__N');
  assert.equal(canonicalName('foo.cold'), 'foo.cold');
  assert.equal(canonicalName('ext4_fill_super'), 'ext4_fill_super');
  assert.equal(canonicalName('sha256'), 'sha256');
  assert.equal(isNumberedLabel('__func__.3'), true);
  assert.equal(isNumberedLabel('do_sys_poll'), false);
});

it('finds the source function of a clone', () => {
  assert.equal(sourceFunctionName('foo.constprop.0.isra.0'), 'foo');
  assert.equal(sourceFunctionName('foo.part.3.cold'), 'foo');
  assert.equal(sourceFunctionName('bar'), 'bar');
});
