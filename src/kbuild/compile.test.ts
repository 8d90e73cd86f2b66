import assert from 'node:assert/strict';
import { it } from 'node:test';
import { variantCommand } from './compile.js';
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
