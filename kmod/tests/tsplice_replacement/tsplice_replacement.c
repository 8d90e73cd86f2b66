// SPDX-License-Identifier: GPL-2.0-only
/*
 * tsplice_replacement: the "new code" for the core module's lab test only. Its functions
 * have the signatures of tsplice_target's and are reached only through tsplice's jmps.
 */
#include <linux/module.h>

static int replacement_value = 2222;

int replacement_show_value(void);
void replacement_wait(void);

/* Replaces target_show_value(): a different value, read from a variable like the original. */
noinline int replacement_show_value(void)
{
	return READ_ONCE(replacement_value);
}

/* Replaces target_wait(): does not wait at all. */
noinline void replacement_wait(void)
{
	pr_info("tsplice_replacement: replacement_wait returns at once\n");
}

/* Keep both functions: nothing in this module calls them. */
static void *replacement_keep[] __used = { replacement_show_value, replacement_wait };

static int __init replacement_init(void)
{
	return 0;
}

static void __exit replacement_exit(void)
{
}

module_init(replacement_init);
module_exit(replacement_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("tsplice lab test: replacement functions");
