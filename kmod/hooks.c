// SPDX-License-Identifier: GPL-2.0-only
/*
 * tsplice_core, hooks: the functions of an update that a patch author wrote to carry live data
 * across the switch (<linux/tsplice.h>, docs/hooks.md). The tool names each one with `hook`
 * after loading the update module; apply.c and switch.c run them:
 *
 *   pre_*     process context, before the first stop_machine run of the apply or undo
 *   check_*   inside the stop, on the CPU that leads it, after the task check and the byte
 *             re-check passed, before anything is written; a non-zero return aborts (no retry)
 *   apply, reverse  inside the stop, after the jumps are written, before the machine resumes
 *   post_*    process context, after success
 *   fail_*    process context, when the operation is aborted after the pre hooks ran
 *
 * Hooks of one kind run in the order they were given (the patch's order, unit by unit). A hook
 * must be a function of the update's own module; the reference taken on that module at `hook`
 * keeps it until `drop`. All of it runs under tsplice_mutex, like every command.
 */
#include "tsplice.h"

const char *const tsplice_hook_kind_names[] = {
	[TS_HOOK_PRE_APPLY] = "pre_apply",
	[TS_HOOK_CHECK_APPLY] = "check_apply",
	[TS_HOOK_APPLY] = "apply",
	[TS_HOOK_POST_APPLY] = "post_apply",
	[TS_HOOK_FAIL_APPLY] = "fail_apply",
	[TS_HOOK_PRE_REVERSE] = "pre_reverse",
	[TS_HOOK_CHECK_REVERSE] = "check_reverse",
	[TS_HOOK_REVERSE] = "reverse",
	[TS_HOOK_POST_REVERSE] = "post_reverse",
	[TS_HOOK_FAIL_REVERSE] = "fail_reverse",
};

/* The kind named @word, or -1. */
static int tsplice_hook_kind(const char *word)
{
	int k;

	for (k = 0; k < TS_HOOK_KINDS; k++)
		if (!strcmp(word, tsplice_hook_kind_names[k]))
			return k;
	return -1;
}

/*
 * The name the tool gives the module of update @id (src/update/module.ts, moduleNameFor):
 * "tsplice_" and the id with every character other than A-Z a-z 0-9 _ made '_', cut to 55.
 */
static void tsplice_update_module_name(const char *id, char *out)
{
	size_t n = strscpy(out, "tsplice_", MODULE_NAME_LEN);
	const char *c;

	for (c = id; *c && n < MODULE_NAME_LEN - 1; c++, n++)
		out[n] = isalnum(*c) || *c == '_' ? *c : '_';
	out[n] = '\0';
}

/*
 * `hook ID KIND NAME ADDR SIZE`: adds the hook NAME of kind KIND to the staged update ID
 * (creating it: a fix that only changes data has hooks and no function). ADDR must be the
 * entry of the function NAME, SIZE bytes long, in ID's own update module.
 */
int tsplice_hook_command(int argc, char **argv, struct tsplice_report *msg)
{
	char owner[MODULE_NAME_LEN], module[MODULE_NAME_LEN];
	struct tsplice_update *u;
	struct tsplice_hook *grown, *h;
	unsigned long addr, size;
	int kind, ret;

	if (argc != 6 || !tsplice_valid_id(argv[1]) || (kind = tsplice_hook_kind(argv[2])) < 0 ||
	    strlen(argv[3]) >= KSYM_NAME_LEN || kstrtoul(argv[4], 0, &addr) ||
	    kstrtoul(argv[5], 0, &size) || !size) {
		tsplice_refuse(msg, "usage", "hook: usage: hook ID KIND NAME ADDR SIZE (KIND one of pre_apply, check_apply, apply, post_apply, fail_apply and the _reverse ones)");
		return -EINVAL;
	}
	u = tsplice_find(argv[1]);
	if (u && tsplice_owned_by_other(u)) {
		tsplice_refuse(msg, "owned", "hook %s %s: update %s is being staged by pid %d",
			       argv[1], argv[3], argv[1], pid_vnr(u->owner));
		tsplice_field(msg, "owner", "%d", pid_vnr(u->owner));
		return -EBUSY;
	}
	if (u && u->state != TS_STAGED) {
		tsplice_refuse(msg, "not-staged", "hook %s %s: update %s is %s", argv[1], argv[3],
			       argv[1], tsplice_state_names[u->state]);
		tsplice_field(msg, "state", "%s", tsplice_state_names[u->state]);
		return -EBUSY;
	}
	if (u && u->nhooks >= TSPLICE_MAX_HOOKS) {
		tsplice_refuse(msg, "too-many", "hook %s %s: at most %d hooks per update", argv[1],
			       argv[3], TSPLICE_MAX_HOOKS);
		tsplice_field(msg, "max", "%d", TSPLICE_MAX_HOOKS);
		return -E2BIG;
	}
	ret = tsplice_check_code(argv[3], true, addr, size, argv[3], NULL, owner, msg);
	if (ret)
		return ret;
	tsplice_update_module_name(argv[1], module);
	if (strcmp(owner, module)) {
		tsplice_refuse(msg, "not-in-update", "hook %s %s: the function is in %s, not in the update's module %s",
			       argv[1], argv[3], owner[0] ? owner : "vmlinux", module);
		tsplice_field(msg, "function", "%s", argv[3]);
		tsplice_field(msg, "module", "%s", owner[0] ? owner : "vmlinux");
		return -EINVAL;
	}
	if (!u) {
		u = tsplice_update_new(argv[1]);
		if (!u)
			goto nomem;
	}
	grown = krealloc_array(u->hooks, u->nhooks + 1, sizeof(*grown), GFP_KERNEL | __GFP_ZERO);
	if (!grown)
		goto nomem;
	u->hooks = grown;
	h = &u->hooks[u->nhooks];
	memset(h, 0, sizeof(*h));
	ret = tsplice_get_module(addr, owner, &h->mod);
	if (ret) {
		tsplice_refuse(msg, "module-moved", "hook %s %s: its module %s went away", argv[1],
			       argv[3], owner);
		tsplice_field(msg, "function", "%s", argv[3]);
		return ret;
	}
	h->kind = kind;
	h->addr = addr;
	strscpy(h->name, argv[3], sizeof(h->name));
	u->nhooks++;
	tsplice_report_clear(&u->error);
	tsplice_say(msg, "ok: hook %s of %s: %s [%s]", tsplice_hook_kind_names[kind], u->id, h->name,
		    owner);
	return 0;
nomem:
	tsplice_refuse(msg, "no-memory", "hook %s %s: out of memory", argv[1], argv[3]);
	return -ENOMEM;
}

/*
 * `empty ID`: a staged update with no function and no hook, for a fix whose author declared
 * that it needs nothing at run time (an __init change: tsplice_init_change_handled). Applying
 * it writes nothing and runs nothing; it is held so that the kernel lists the fix as applied.
 */
int tsplice_empty_command(int argc, char **argv, struct tsplice_report *msg)
{
	struct tsplice_update *u;

	if (argc != 2 || !tsplice_valid_id(argv[1])) {
		tsplice_refuse(msg, "usage", "empty: usage: empty ID");
		return -EINVAL;
	}
	if (tsplice_find(argv[1])) {
		tsplice_refuse(msg, "already-staged", "empty %s: the update exists already", argv[1]);
		return -EEXIST;
	}
	u = tsplice_update_new(argv[1]);
	if (!u) {
		tsplice_refuse(msg, "no-memory", "empty %s: out of memory", argv[1]);
		return -ENOMEM;
	}
	u->empty = true;
	tsplice_say(msg, "ok: staged %s with nothing to switch", u->id);
	return 0;
}

/* Whether @u has hooks of @kind. */
bool tsplice_has_hooks(const struct tsplice_update *u, enum tsplice_hook_kind kind)
{
	unsigned int i;

	for (i = 0; i < u->nhooks; i++)
		if (u->hooks[i].kind == kind)
			return true;
	return false;
}

/*
 * Runs @u's void hooks of @kind, in order. In process context for pre, post and fail; inside
 * the stop for apply and reverse (tsplice_stop_fn), where nothing here may sleep.
 */
void tsplice_run_hooks(struct tsplice_update *u, enum tsplice_hook_kind kind)
{
	unsigned int i;

	for (i = 0; i < u->nhooks; i++) {
		struct tsplice_hook *h = &u->hooks[i];

		if (h->kind != kind)
			continue;
		((void (*)(void))h->addr)();
		h->runs++;
	}
}

/*
 * Inside the stop: runs @u's check hooks of @kind in order until one returns non-zero; returns
 * that hook's index with its value in @value, or -1 when every one passed.
 */
int tsplice_run_check_hooks(struct tsplice_update *u, enum tsplice_hook_kind kind, int *value)
{
	unsigned int i;

	for (i = 0; i < u->nhooks; i++) {
		struct tsplice_hook *h = &u->hooks[i];

		if (h->kind != kind)
			continue;
		*value = ((int (*)(void))h->addr)();
		h->runs++;
		if (*value)
			return i;
	}
	return -1;
}

/* Releases the module references of @u's hooks and forgets them (drop, or a failed stage). */
void tsplice_free_hooks(struct tsplice_update *u)
{
	unsigned int i;

	for (i = 0; i < u->nhooks; i++)
		if (u->hooks[i].mod)
			module_put(u->hooks[i].mod);
	kfree(u->hooks);
	u->hooks = NULL;
	u->nhooks = 0;
}

/* The module of @u's hooks, if it has any: the update module, for drop's check. */
struct module *tsplice_hooks_module(const struct tsplice_update *u)
{
	return u->nhooks ? u->hooks[0].mod : NULL;
}
