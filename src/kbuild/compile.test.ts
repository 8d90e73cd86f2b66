import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { UserError } from '../host/errors.js';
import { buildPreObject, buildVariantObject, variantCommand } from './compile.js';
import { filesInPatch } from '../patch/patch.js';

it('points the recorded command at the work folder, word by word', () => {
  const recorded =
    'gcc-12 -Wp,-MMD,fs/proc/.version.o.d -nostdinc -I./include -DKBUILD_BASENAME=\'"version"\' -c -o fs/proc/version.o fs/proc/version.c   ; ./tools/objtool/objtool --orc --rethunk   fs/proc/version.o';
  const command = variantCommand(recorded, 'fs/proc/version.c', '/w/src', '/w/out');
  assert.equal(
    command,
    'gcc-12 -iquote fs/proc -fmacro-prefix-map=/w/src/= -Wp,-MMD,/w/out/fs/proc/.version.o.d -nostdinc -I./include -DKBUILD_BASENAME=\'"version"\' -c -o /w/out/fs/proc/version.o /w/src/fs/proc/version.c   ; ./tools/objtool/objtool --orc --rethunk   /w/out/fs/proc/version.o',
  );
});

it('puts the patched headers\' folders in front of the tree\'s, in the tree\'s order', () => {
  const recorded =
    'gcc-12 -Wp,-MMD,fs/foo/.a.o.d -nostdinc -I./arch/x86/include -I./include -I./include/uapi -include ./include/linux/kconfig.h -I ./fs/foo -c -o fs/foo/a.o fs/foo/a.c';
  const command = variantCommand(recorded, 'fs/foo/a.c', '/w/src', '/w/out', ['include/uapi/linux/x.h', 'include/linux/kconfig.h', 'fs/foo/local.h']);
  assert.equal(
    command,
    'gcc-12 -iquote fs/foo -fmacro-prefix-map=/w/src/= -Wp,-MMD,/w/out/fs/foo/.a.o.d -nostdinc -I./arch/x86/include -I/w/src/include -I./include -I/w/src/include/uapi -I./include/uapi -include /w/src/include/linux/kconfig.h -I /w/src/fs/foo -I ./fs/foo -c -o /w/out/fs/foo/a.o /w/src/fs/foo/a.c',
  );
  // Without patched headers the command is the recorded one, pointed at the work folder only.
  assert.doesNotMatch(variantCommand(recorded, 'fs/foo/a.c', '/w/src', '/w/out'), /-I\/w\/src/);
});

it('lists the files a unified diff changes', () => {
  const text = 'intro text\n--- a/fs/x.c\n+++ b/fs/x.c\n@@ -1 +1 @@\n-a\n+b\n--- a/include/y.h\t2020\n+++ b/include/y.h\t2020\n@@ -1 +1 @@\n-a\n+b\n';
  assert.deepEqual(filesInPatch(text, 'p'), ['fs/x.c', 'include/y.h']);
  assert.throws(() => filesInPatch('nothing here', 'p.patch'), /p\.patch is not a unified diff/);
});

it('refuses a unit that does not compile with gcc\'s first error, and objtool does not run', async () => {
  // A tree of two files: the command kbuild would have recorded (gcc, then an objtool that
  // leaves a mark), and a patched copy whose include does not exist.
  const dir = mkdtempSync(join(tmpdir(), 'tsplice-compile-'));
  const treeDir = join(dir, 'tree');
  const sourceRoot = join(dir, 'src');
  mkdirSync(join(treeDir, 'kernel'), { recursive: true });
  mkdirSync(join(sourceRoot, 'kernel'), { recursive: true });
  const objtool = join(dir, 'objtool');
  writeFileSync(objtool, `#!/bin/sh\ntouch ${join(dir, 'objtool-ran')}\n`, { mode: 0o755 });
  writeFileSync(join(treeDir, 'kernel', '.sys.o.cmd'), `cmd_kernel/sys.o := gcc -Wp,-MMD,kernel/.sys.o.d -c -o kernel/sys.o kernel/sys.c   ; ${objtool} kernel/sys.o\n`);
  writeFileSync(join(sourceRoot, 'kernel', 'sys.c'), '/* 1 */\n/* 2 */\n/* 3 */\n/* 4 */\n/* 5 */\n/* 6 */\n/* 7 */\n/* 8 */\n#include <linux/tsplice.h>\nint x;\n');
  const tree = { release: 'test', sourceVersion: 'test', dir: treeDir, makeVariables: [] };
  await assert.rejects(buildVariantObject(tree, 'kernel/sys.c', sourceRoot, join(dir, 'out')), (error: unknown) => {
    assert.ok(error instanceof UserError);
    assert.equal(error.message, 'kernel/sys.c does not compile with the patch: kernel/sys.c:9:10: fatal error: linux/tsplice.h: No such file or directory.');
    assert.deepEqual(error.diagnostic, { kind: 'does-not-compile', unit: 'kernel/sys.c', reason: 'kernel/sys.c:9:10: fatal error: linux/tsplice.h: No such file or directory' });
    // The whole command and gcc's output, for --verbose only.
    assert.match(error.details ?? '', /^\$ sh -e -c 'gcc .*-c -o \S+\/out\/kernel\/sys\.o \S+\/src\/kernel\/sys\.c/);
    assert.match(error.details ?? '', /compilation terminated/);
    return true;
  });
  assert.equal(existsSync(join(dir, 'objtool-ran')), false, 'objtool ran after gcc failed');
});

it('refuses a unit another folder\'s Makefile builds by a ../ path, before kbuild compiles it with the wrong flags', async () => {
  // amdgpu's Makefile builds ../display/dc/core/dc.o; `make drivers/…/display/dc/core/dc.o`
  // would compile it alone, with the display folder's own flags (or fail, missing its includes).
  const treeDir = mkdtempSync(join(tmpdir(), 'tsplice-compile-'));
  const file = (path: string, text: string): void => {
    mkdirSync(join(treeDir, path, '..'), { recursive: true });
    writeFileSync(join(treeDir, path), text);
  };
  file('Kbuild', 'obj-y += drivers/\n');
  file('Makefile', 'core-y :=\n');
  file('arch/x86/Makefile', '');
  file('drivers/Makefile', 'obj-$(CONFIG_DRM_AMDGPU) += amd/amdgpu/\n');
  file('drivers/amd/amdgpu/Makefile', 'amdgpu-y := amdgpu_drv.o ../display/dc/core/dc.o\nobj-$(CONFIG_DRM_AMDGPU) += amdgpu.o\n');
  file('drivers/amd/display/dc/core/dc.c', 'int dc;\n');
  file('include/config/auto.conf', 'CONFIG_DRM_AMDGPU=m\nCONFIG_64BIT=y\n');
  const tree = { release: 'test', sourceVersion: 'test', dir: treeDir, makeVariables: [] };
  await assert.rejects(buildPreObject(tree, 'drivers/amd/display/dc/core/dc.c'), (error: unknown) => {
    assert.ok(error instanceof UserError);
    assert.equal(
      error.message,
      'drivers/amd/display/dc/core/dc.c is compiled by drivers/amd/amdgpu/Makefile (as ../display/dc/core/dc.o), and kbuild builds such an object only with that whole folder, never alone with the flags it needs; tsplice does not update it.',
    );
    assert.equal(error.kind, 'built-by-another-folder');
    return true;
  });
  assert.equal(existsSync(join(treeDir, 'drivers/amd/display/dc/core/dc.o')), false);
});
