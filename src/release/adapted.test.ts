/** Counting the new code of an adapted patch, and finding what the adapted corpus holds for a fix. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { adaptationOf, newLinesBeyond } from './adapted.js';

const UPSTREAM = `--- a/kernel/exit.c
+++ b/kernel/exit.c
@@ -1,3 +1,4 @@
 	local_irq_disable();
+	current->user_dumpable = (get_dumpable(mm) == SUID_DUMP_USER);
 	current->mm = NULL;
+	preempt_disable();
`;

const ADAPTED = `# tsplice adapted: kernel/exit.c
# new lines: 3
--- a/kernel/exit.c
+++ b/kernel/exit.c
@@ -1,3 +1,12 @@
+#include <linux/tsplice.h>
+
+/* Whether the task's mm was user-dumpable when it went away. */
+/*
+ * A longer comment
+ * over lines.
+ */
 	local_irq_disable();
+	if (get_dumpable(mm) == SUID_DUMP_USER)
+		tsplice_shadow_get_or_alloc(current, 1, 1, GFP_ATOMIC);
 	current->mm = NULL;
+	preempt_disable();
`;

describe('the adapted corpus', () => {
  it('counts the code lines an adapted patch adds beyond the upstream diff', () => {
    assert.equal(newLinesBeyond(UPSTREAM, ADAPTED), 3);
    assert.equal(newLinesBeyond(UPSTREAM, UPSTREAM), 0);
    // A line the upstream diff adds once and the adapted one twice counts once.
    assert.equal(newLinesBeyond(UPSTREAM, `${ADAPTED}+\tpreempt_disable();\n`), 4);
  });

  it('finds an adapted patch, or a note saying why a fix cannot apply live', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsplice-adapted-'));
    writeFileSync(join(dir, 'kernel-exit.patch'), ADAPTED);
    writeFileSync(join(dir, 'fs-dcache.not-live.md'), '# fs/dcache.c — the hash table is sized at boot\n\nNothing else.\n');
    assert.deepEqual(adaptationOf('kernel-exit.patch', dir), { kind: 'patch', path: join(dir, 'kernel-exit.patch') });
    assert.deepEqual(adaptationOf('fs-dcache.patch', dir), { kind: 'not-live', path: join(dir, 'fs-dcache.not-live.md'), why: 'the hash table is sized at boot' });
    assert.equal(adaptationOf('kernel-fork.patch', dir), undefined);
  });
});
