/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * <linux/tsplice.h>: what a patch author writes when a fix changes how data is stored, so that
 * the fix applies to a running kernel. `tsplice create` puts this header on the include path of
 * the post compile (after the kernel's own folders); the core module, tsplice_core, implements
 * it. docs/hooks.md is the guide: the contexts, the order, the shadow data, worked examples.
 *
 * Hooks. Each names a function of the patch, at file scope:
 *
 *   tsplice_pre_apply(fn)     void fn(void), process context, may sleep; before the first try
 *   tsplice_check_apply(fn)   int fn(void), inside stop_machine (interrupts off, no sleeping),
 *                             after the task check passed; non-zero aborts the apply, no retry
 *   tsplice_apply(fn)         void fn(void), inside stop_machine, once, after the jumps are
 *                             written and before the machine resumes
 *   tsplice_post_apply(fn)    void fn(void), process context, after the apply succeeded
 *   tsplice_fail_apply(fn)    void fn(void), process context, when the apply is aborted after
 *                             the pre hooks ran
 *
 * and the same five for undo: tsplice_pre_reverse, tsplice_check_reverse, tsplice_reverse,
 * tsplice_post_reverse, tsplice_fail_reverse. Hooks of one kind run in the order of the patch.
 *
 * Each hook is an entry (the function and its line) in a section of its own kind; create reads
 * the sections, records the hooks in the update and leaves the entries out of the new code.
 */
#ifndef _LINUX_TSPLICE_H
#define _LINUX_TSPLICE_H

#include <linux/compiler.h>
#include <linux/gfp.h>
#include <linux/types.h>

/*
 * A hook's entry: the function, and the line it was declared on, which orders the hooks of one
 * kind as the patch wrote them (the compiler emits file-scope objects in no promised order).
 */
struct tsplice_hook_entry {
	void (*fn)(void);
	unsigned long line;
};

struct tsplice_check_hook_entry {
	int (*fn)(void);
	unsigned long line;
};

#define __tsplice_hook(kind, entry, fn)						\
	static const struct entry __tsplice_##kind##_##fn __used		\
	__section(".tsplice.hook." #kind) = { (fn), __LINE__ }

#define tsplice_pre_apply(fn)		__tsplice_hook(pre_apply, tsplice_hook_entry, fn)
#define tsplice_check_apply(fn)		__tsplice_hook(check_apply, tsplice_check_hook_entry, fn)
#define tsplice_apply(fn)		__tsplice_hook(apply, tsplice_hook_entry, fn)
#define tsplice_post_apply(fn)		__tsplice_hook(post_apply, tsplice_hook_entry, fn)
#define tsplice_fail_apply(fn)		__tsplice_hook(fail_apply, tsplice_hook_entry, fn)
#define tsplice_pre_reverse(fn)		__tsplice_hook(pre_reverse, tsplice_hook_entry, fn)
#define tsplice_check_reverse(fn)	__tsplice_hook(check_reverse, tsplice_check_hook_entry, fn)
#define tsplice_reverse(fn)		__tsplice_hook(reverse, tsplice_hook_entry, fn)
#define tsplice_post_reverse(fn)	__tsplice_hook(post_reverse, tsplice_hook_entry, fn)
#define tsplice_fail_reverse(fn)	__tsplice_hook(fail_reverse, tsplice_hook_entry, fn)

/*
 * Declarations that take a refusal of create away, stated on purpose. The symbol goes as its
 * name (a string), not as a reference: taking the address of a static would change the code
 * the compiler makes for its readers, and so the comparison with the running code.
 *
 *   tsplice_data_change_handled(sym)  the new initial value of the existing data sym is the
 *                                     author's business: an apply hook writes it, a reverse
 *                                     hook restores it
 *   tsplice_init_change_handled(sym)  sym is __init code or data that ran at boot: its change
 *                                     needs nothing at run time, or a hook does it
 */
#define __tsplice_declare(kind, sym)						\
	static const char __tsplice_##kind##_##sym[] __used			\
	__section(".tsplice.declare." #kind) __aligned(1) = #sym

#define tsplice_data_change_handled(sym)	__tsplice_declare(data_change_handled, sym)
#define tsplice_init_change_handled(sym)	__tsplice_declare(init_change_handled, sym)

/*
 * Shadow data: memory attached to an existing object by its address and an id, as livepatch's
 * klp_shadow_* attach it. The core module holds it, so it outlives one update and updates
 * stacked on one another share it by id. Zero-filled when allocated. Safe in any context that
 * the caller's gfp allows (GFP_ATOMIC in interrupts and inside the stop); get and free never
 * sleep. Freeing is the author's business: a reverse hook, or the code that frees the object.
 */
void *tsplice_shadow_get(void *obj, unsigned long id);
void *tsplice_shadow_get_or_alloc(void *obj, unsigned long id, size_t size, gfp_t gfp);
void tsplice_shadow_free(void *obj, unsigned long id);
void tsplice_shadow_free_all(unsigned long id);

#endif /* _LINUX_TSPLICE_H */
