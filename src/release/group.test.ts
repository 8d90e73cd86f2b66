import assert from 'node:assert/strict';
import { it } from 'node:test';
import { UserError } from '../host/errors.js';
import { addedFunctions, combinePatches, diffCalls, fileAddingCalled, patchSections, unitThatMustChange } from './group.js';

const header = `--- a/include/linux/hugetlb.h
+++ b/include/linux/hugetlb.h
@@ -1 +1 @@
-int isolate_hugetlb(struct page *page);
+int folio_isolate_hugetlb(struct page *page);
`;
const gup = `# tsplice corpus: mm/gup.c
--- a/mm/gup.c
+++ b/mm/gup.c
@@ -1 +1 @@
-	isolate_hugetlb(page);
+	folio_isolate_hugetlb(page);
${header}`;
const migrate = `# tsplice corpus: mm/migrate.c
--- a/mm/migrate.c
+++ b/mm/migrate.c
@@ -1 +1 @@
-	isolate_hugetlb(p);
+	folio_isolate_hugetlb(p);
${header}`;

it('splits a patch per file and drops the comment before it', () => {
  assert.deepEqual([...patchSections(gup).keys()], ['mm/gup.c', 'include/linux/hugetlb.h']);
  assert.equal(patchSections(gup).get('include/linux/hugetlb.h'), header);
});

it('combines patches with each shared header diff once', () => {
  const combined = combinePatches([gup, migrate], 'group');
  assert.equal(combined.split('+++ b/include/linux/hugetlb.h').length, 2);
  assert.deepEqual([...patchSections(combined).keys()], ['mm/gup.c', 'include/linux/hugetlb.h', 'mm/migrate.c']);
  assert.throws(() => combinePatches([gup, gup.replace('folio_isolate_hugetlb(page)', 'other(page)')], 'x'), /change mm\/gup.c differently/);
});

it('reads the unit that must change from create\'s refusal', () => {
  const message = "mm/hugetlb.c does not compile with the patched include/linux/hugetlb.h (isolate_hugetlb): mm/hugetlb.c:1:1: error: implicit declaration of function 'isolate_hugetlb'. The patch changes what mm/hugetlb.c uses but not mm/hugetlb.c itself; it has to change that unit too.";
  const refusal = new UserError(message, { kind: 'unit-must-change', unit: 'mm/hugetlb.c', reason: "mm/hugetlb.c:1:1: error: implicit declaration of function 'isolate_hugetlb'" });
  assert.equal(unitThatMustChange(refusal), 'mm/hugetlb.c');
  assert.equal(unitThatMustChange(new UserError('The patch changes no code built into the kernel.', { kind: 'no-code-change' })), undefined);
  assert.equal(unitThatMustChange(new Error(message)), undefined);
});

it('combines two patches holding different hunks of one header into their union', () => {
  const sched = (hunk: string): string => `--- a/include/linux/sched.h\n+++ b/include/linux/sched.h\n${hunk}`;
  const first = '@@ -10,3 +10,4 @@\n a\n+\tunsigned user_dumpable:1;\n b\n c\n';
  const second = '@@ -40,3 +40,4 @@\n x\n+\tu32 kstack_offset;\n y\n z\n';
  const exit = `--- a/kernel/exit.c\n+++ b/kernel/exit.c\n@@ -1 +1 @@\n-a\n+b\n${sched(first)}`;
  const fork = `--- a/kernel/fork.c\n+++ b/kernel/fork.c\n@@ -1 +1 @@\n-c\n+d\n${sched(second)}`;
  const combined = patchSections(combinePatches([exit, fork], 'group')).get('include/linux/sched.h') ?? '';
  assert.match(combined, /user_dumpable/);
  assert.match(combined, /kstack_offset/);
  // The second hunk's new-side start moves by the line the first one adds.
  assert.match(combined, /@@ -40,3 \+41,4 @@/);
});

it('finds the global functions a diff adds, not those it calls, declares, only changes or keeps static', () => {
  const gem = `--- a/drivers/gpu/drm/virtio/virtgpu_gem.c
+++ b/drivers/gpu/drm/virtio/virtgpu_gem.c
@@ -1,3 +1,17 @@
+int virtio_gpu_lock_one_resv_uninterruptible(struct virtio_gpu_object_array *objs)
+{
+	if (objs->nents == 1)
+		return dma_resv_lock(objs->objs[0]->resv, NULL);
+	return 0;
+}
+static void
+note_change(int x)
+{
+}
+void
+hfsplus_brec_read_cat(int x)
+{
+}
+static int only_here(int x) { return x; }
-static int moved(int a)
+static int moved(int a, int b)
 {
`;
  assert.deepEqual([...addedFunctions(gem)].sort(), ['hfsplus_brec_read_cat', 'virtio_gpu_lock_one_resv_uninterruptible']);
  const header = '--- a/x.h\n+++ b/x.h\n@@ -1 +1,2 @@\n+int virtio_gpu_lock_one_resv_uninterruptible(struct virtio_gpu_object_array *objs);\n+EXPORT_SYMBOL(foo);\n';
  assert.deepEqual([...addedFunctions(header)], []);
  const added = new Map([['a.c', new Set(['x'])], ['gem.c', addedFunctions(gem)]]);
  const addedBy = (f: string) => added.get(f) ?? new Set<string>();
  assert.deepEqual(fileAddingCalled(['kfree', 'virtio_gpu_lock_one_resv_uninterruptible'], ['a.c', 'gem.c'], ['plane.c'], addedBy), { file: 'gem.c', name: 'virtio_gpu_lock_one_resv_uninterruptible' });
  assert.equal(fileAddingCalled(['virtio_gpu_lock_one_resv_uninterruptible'], ['a.c', 'gem.c'], ['gem.c'], addedBy), undefined);
});

it('tells a diff that calls a function from one that only defines or declares it', () => {
  const user = '--- a/t.c\n+++ b/t.c\n@@ -1 +1,2 @@\n+\terr = udp_tunnel_dst_lookup(skb, dev);\n+int udp_tunnel6_dst_lookup(int x)\n';
  assert.equal(diffCalls(user, 'udp_tunnel_dst_lookup'), true);
  assert.equal(diffCalls(user, 'udp_tunnel6_dst_lookup'), false);
  assert.equal(diffCalls('--- a/t.c\n+++ b/t.c\n@@ -1 +1 @@\n-\tudp_tunnel_dst_lookup(skb);\n', 'udp_tunnel_dst_lookup'), false);
});
