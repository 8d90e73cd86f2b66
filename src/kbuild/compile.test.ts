import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { UserError } from '../host/errors.js';
import { authorIncludeDir } from '../host/project.js';
import { buildVariantObject, kbuildTarget, preObjectUpToDate, recordedCommand, variantCommand, withoutDotDot } from './compile.js';
import { KbuildReader } from './build-status.js';
import { filesInPatch } from '../patch/patch.js';

it('points the recorded command at the work folder, word by word', () => {
  const recorded =
    'gcc-12 -Wp,-MMD,fs/proc/.version.o.d -nostdinc -I./include -DKBUILD_BASENAME=\'"version"\' -c -o fs/proc/version.o fs/proc/version.c   ; ./tools/objtool/objtool --orc --rethunk   fs/proc/version.o';
  const command = variantCommand(recorded, 'fs/proc/version.c', '/w/src', '/w/out');
  assert.equal(
    command,
    `gcc-12 -iquote fs/proc -fmacro-prefix-map=/w/src/= -idirafter ${authorIncludeDir()} -Wp,-MMD,/w/out/fs/proc/.version.o.d -nostdinc -I./include -DKBUILD_BASENAME='"version"' -c -o /w/out/fs/proc/version.o /w/src/fs/proc/version.c   ; ./tools/objtool/objtool --orc --rethunk   /w/out/fs/proc/version.o`,
  );
});

it('puts the patched headers\' folders in front of the tree\'s, in the tree\'s order', () => {
  const recorded =
    'gcc-12 -Wp,-MMD,fs/foo/.a.o.d -nostdinc -I./arch/x86/include -I./include -I./include/uapi -include ./include/linux/kconfig.h -I ./fs/foo -c -o fs/foo/a.o fs/foo/a.c';
  const command = variantCommand(recorded, 'fs/foo/a.c', '/w/src', '/w/out', ['include/uapi/linux/x.h', 'include/linux/kconfig.h', 'fs/foo/local.h']);
  assert.equal(
    command,
    `gcc-12 -iquote fs/foo -fmacro-prefix-map=/w/src/= -idirafter ${authorIncludeDir()} -Wp,-MMD,/w/out/fs/foo/.a.o.d -nostdinc -I./arch/x86/include -I/w/src/include -I./include -I/w/src/include/uapi -I./include/uapi -include /w/src/include/linux/kconfig.h -I /w/src/fs/foo -I ./fs/foo -c -o /w/out/fs/foo/a.o /w/src/fs/foo/a.c`,
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
  writeFileSync(join(sourceRoot, 'kernel', 'sys.c'), '/* 1 */\n/* 2 */\n/* 3 */\n/* 4 */\n/* 5 */\n/* 6 */\n/* 7 */\n/* 8 */\n#include <linux/no-such-header.h>\nint x;\n');
  const tree = { release: 'test', sourceVersion: 'test', dir: treeDir, makeVariables: [] };
  await assert.rejects(buildVariantObject(tree, 'kernel/sys.c', sourceRoot, join(dir, 'out')), (error: unknown) => {
    assert.ok(error instanceof UserError);
    assert.equal(error.message, 'kernel/sys.c does not compile with the patch: kernel/sys.c:9:10: fatal error: linux/no-such-header.h: No such file or directory.');
    assert.deepEqual(error.diagnostic, { kind: 'does-not-compile', unit: 'kernel/sys.c', reason: 'kernel/sys.c:9:10: fatal error: linux/no-such-header.h: No such file or directory' });
    // The whole command and gcc's output, for --verbose only.
    assert.match(error.details ?? '', /^\$ sh -e -c 'gcc .*-c -o \S+\/out\/kernel\/sys\.o \S+\/src\/kernel\/sys\.c/);
    assert.match(error.details ?? '', /compilation terminated/);
    return true;
  });
  assert.equal(existsSync(join(dir, 'objtool-ran')), false, 'objtool ran after gcc failed');
});

it('builds a unit another folder\'s Makefile names by a ../ path through that folder, and reads its command plain', () => {
  // amdgpu's Makefile builds ../display/dc/core/dc.o; `make drivers/…/display/dc/core/dc.o`
  // would compile it alone, with the display folder's own flags. Through amdgpu's spelling,
  // kbuild builds it with amdgpu's KBUILD_MODNAME, -DMODULE and include paths.
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
  const reader = new KbuildReader(treeDir);
  const spelled = 'drivers/amd/amdgpu/../display/dc/core/dc.o';
  assert.equal(kbuildTarget(reader, 'drivers/amd/display/dc/core/dc.c'), spelled);
  assert.equal(kbuildTarget(reader, 'drivers/amd/amdgpu/amdgpu_drv.c'), 'drivers/amd/amdgpu/amdgpu_drv.o');
  // What kbuild records for it: the spelling, in the command's paths too.
  const command = `gcc -Wp,-MMD,drivers/amd/amdgpu/../display/dc/core/.dc.o.d -I./drivers/amd/amdgpu/../display/dc -ffunction-sections -DMODULE -DKBUILD_MODNAME='"amdgpu"' -c -o ${spelled} drivers/amd/amdgpu/../display/dc/core/dc.c`;
  file('drivers/amd/display/dc/core/.dc.o.cmd', `cmd_${spelled} := ${command}\n\nsource_${spelled} := drivers/amd/amdgpu/../display/dc/core/dc.c\n\ndeps_${spelled} := \\\n  drivers/amd/amdgpu/../display/dc/core/dc.c \\\n\n`);
  file('drivers/amd/display/dc/core/dc.o', '');
  assert.equal(
    recordedCommand(tree, 'drivers/amd/display/dc/core/dc.o'),
    `gcc -Wp,-MMD,drivers/amd/display/dc/core/.dc.o.d -I./drivers/amd/display/dc -ffunction-sections -DMODULE -DKBUILD_MODNAME='"amdgpu"' -c -o drivers/amd/display/dc/core/dc.o drivers/amd/display/dc/core/dc.c`,
  );
  assert.equal(preObjectUpToDate(tree, 'drivers/amd/display/dc/core/dc.o', spelled), true);
  // Built before by its own path, with the display folder's flags: not up to date for amdgpu.
  assert.equal(preObjectUpToDate(tree, 'drivers/amd/display/dc/core/dc.o'), false);
  assert.equal(withoutDotDot('-I a/b/../../c x/./y/../z ../keep ./p/q/../r'), '-I c x/./z ../keep ./p/r');
});
