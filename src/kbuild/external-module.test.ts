import assert from 'node:assert/strict';
import { it } from 'node:test';
import { firstError } from './external-module.js';

it('names the linker\'s complaint when the link of an update module fails, not make\'s last words', () => {
  const dir = '/tmp/tsplice-module-X';
  const output = [
    "make: Entering directory '/usr/src/linux-headers-6.1.0-47-amd64'",
    `  CC [M]  ${dir}/tsplice_stub.o`,
    `ld: ${dir}/tsplice_payload.o: in function \`cleanup_module':`,
    `(.text.tsplice.u0.cleanup_module+0x0): multiple definition of \`cleanup_module'; ${dir}/tsplice_stub.o:${dir}/tsplice_stub.c:11: first defined here`,
    `make[1]: *** [scripts/Makefile.build:468: ${dir}/u.o] Error 1`,
    "make: Leaving directory '/usr/src/linux-headers-6.1.0-47-amd64'",
  ].join('\n');
  assert.equal(firstError(output, dir), "(.text.tsplice.u0.cleanup_module+0x0): multiple definition of `cleanup_module'; tsplice_stub.o:tsplice_stub.c:11: first defined here");
  assert.equal(firstError(`${dir}/a.c:3:1: error: expected ';'\nmake: *** [x] Error 2`, dir), "a.c:3:1: error: expected ';'");
  assert.equal(firstError('make: *** No rule to make target x.  Stop.\nmake: Leaving directory', dir), 'make: *** No rule to make target x.  Stop');
});
