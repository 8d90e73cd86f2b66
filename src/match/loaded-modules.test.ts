/** Reading /proc/modules: names and who depends on whom. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserError } from '../host/errors.js';
import { parseProcModules } from './loaded-modules.js';

// As a 6.1 guest prints it after `modprobe nft_ct` (addresses hidden from non-root).
const PROC_MODULES = `nft_ct 24576 0 - Live 0x0000000000000000
nf_tables 290816 1 nft_ct, Live 0x0000000000000000
nf_conntrack 176128 1 nft_ct, Live 0x0000000000000000
nf_defrag_ipv6 24576 1 nf_conntrack, Live 0x0000000000000000
nf_defrag_ipv4 16384 1 nf_conntrack, Live 0x0000000000000000
libcrc32c 16384 2 nf_tables,nf_conntrack, Live 0x0000000000000000
binfmt_misc 24576 1 - Live 0x0000000000000000
`;

describe('/proc/modules', () => {
  const modules = parseProcModules(PROC_MODULES);

  it('knows which modules are loaded', () => {
    assert.ok(modules.has('nft_ct') && modules.has('libcrc32c'));
    assert.ok(!modules.has('nft_exthdr'));
  });

  it('follows dependencies directly and through modules in between, never the other way', () => {
    assert.ok(modules.dependsOn('nft_ct', 'nf_tables'));
    assert.ok(modules.dependsOn('nft_ct', 'nf_defrag_ipv4'));
    assert.ok(modules.dependsOn('nft_ct', 'libcrc32c'));
    assert.ok(!modules.dependsOn('nf_tables', 'nft_ct'));
    assert.ok(!modules.dependsOn('binfmt_misc', 'nf_tables'));
    assert.ok(!modules.dependsOn('nft_ct', 'binfmt_misc'));
  });

  it('refuses a line that is not a module line, naming the line', () => {
    assert.throws(
      () => parseProcModules('nft_ct 24576\n'),
      (e: unknown) => e instanceof UserError && e.kind === 'bad-kernel-record' && e.message === "/proc/modules: line 1 is not a module line: 'nft_ct 24576'.",
    );
  });
});
