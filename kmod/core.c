// SPDX-License-Identifier: GPL-2.0-only
/*
 * tsplice_core: the in-kernel half of tsplice, rebootless updates in the tradition of Ksplice.
 *
 * An update replaces whole functions. For each one the tool stages the running address and
 * size of the old function, the address and size of the new one (loaded beforehand in an
 * update module), and the bytes it expects at the old function's entry. `apply` then stops
 * the machine, checks that no task (threads of every process and each CPU's idle task) has a
 * word on the live part of its kernel stack that points into any old function, re-checks the
 * expected bytes, and writes a 5-byte `jmp rel32` to the new function in each old one; `undo`
 * does the same against the new functions and restores the original bytes. When a task is in
 * the way the attempt is retried a few times, then abandoned with a named reason and the
 * kernel left as it was.
 *
 * The pause is the product, so whatever can be done before the stop is: every task's stack is
 * checked beforehand, and inside the stop only the tasks that may have run since (their
 * context-switch counts moved) have their stacks read again (taskcheck.c says why that is
 * sound); the pages of the patch sites are mapped writable beforehand, so that the writes
 * inside are plain stores.
 *
 * The interface is two root-only files under /proc/tsplice (see docs/core-module.md):
 *   control  one command per write(2); a read(2) on the same open file returns the result
 *            (or the reason for the refusal) of the last command written through it;
 *   status   every update and the last measurement, one record per line.
 *
 * Only what must run in the kernel is here: resolving names, parsing and validation stay as
 * small as the checks that keep the kernel safe, and everything else (finding the functions,
 * building the update module) belongs to the TypeScript tool.
 *
 * This file: load and unload, the kernel internals found by name at load, and the list of
 * updates with the mutex that guards it. tsplice.h says what the other files hold.
 */
#include "tsplice.h"

/* Found at load (tsplice_resolve); read-only afterwards. */
struct tsplice_ks tsplice_ks;

const char *const tsplice_state_names[] = {
	[TS_STAGED] = "staged",
	[TS_APPLIED] = "applied",
	[TS_REVERTED] = "reverted",
};

/*
 * tsplice_mutex serializes every command and every read of the state. It guards the update
 * list and everything in it (each update, its functions, its figures and error), the counts
 * below, the last measurement (apply.c) and each open control file's result (control.c).
 * It is taken by each control write for the whole command (stop_machine runs and the sleeps
 * between retries included: it is a sleeping lock, taken killable), by a control read, and
 * by the status file's show, and by the module notifier (late.c) for a module that comes or
 * goes. Nothing else walks the list. Lock order: tsplice_mutex, then the CPU hotplug read
 * lock, then text_mutex (tsplice_run); the notifier takes tsplice_mutex, then text_mutex.
 */
DEFINE_MUTEX(tsplice_mutex);
LIST_HEAD(tsplice_updates);
unsigned int tsplice_applied;			/* updates applied now */
static unsigned int tsplice_holding;		/* updates in the list (module references); pins us */
static struct proc_dir_entry *tsplice_dir;

/* ---------------------------------------------------------------------------------------- */
/* Names                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/*
 * kallsyms_lookup_name() itself is not exported since 5.7; a kprobe registered on it by name
 * resolves its address (kprobes look names up inside the kernel). The probe is removed at
 * once: it only serves to read kp.addr.
 */
static int tsplice_find_kallsyms_lookup_name(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	int ret = register_kprobe(&kp);

	if (ret < 0)
		return ret;
	tsplice_ks.kallsyms_lookup_name = (void *)kp.addr;
	unregister_kprobe(&kp);
	return tsplice_ks.kallsyms_lookup_name ? 0 : -ENOENT;
}

/* One kernel symbol by name, at load; a missing required one is named in dmesg. */
static unsigned long tsplice_lookup(const char *name, bool required)
{
	unsigned long addr = tsplice_ks.kallsyms_lookup_name(name);

	if (!addr && required)
		pr_err("cannot load: the kernel has no symbol %s\n", name);
	return addr;
}

/*
 * Resolves every internal at load, so that no command can fail half-way for a missing one.
 * Called from module init only.
 */
static int tsplice_resolve(void)
{
	int ret = tsplice_find_kallsyms_lookup_name();

	if (ret) {
		pr_err("cannot load: kallsyms_lookup_name not found through a kprobe (%d)\n", ret);
		return ret;
	}
	tsplice_ks.text_poke = (void *)tsplice_lookup("text_poke", true);
	tsplice_ks.text_mutex = (void *)tsplice_lookup("text_mutex", true);
	tsplice_ks.stop_machine_cpuslocked = (void *)tsplice_lookup("stop_machine_cpuslocked", true);
	tsplice_ks.module_text_address = (void *)tsplice_lookup("__module_text_address", true);
	tsplice_ks.kernel_text_address = (void *)tsplice_lookup("kernel_text_address", true);
	tsplice_ks.jump_label_text_reserved = (void *)tsplice_lookup("jump_label_text_reserved", true);
	tsplice_ks.static_call_text_reserved = (void *)tsplice_lookup("static_call_text_reserved", false);
	tsplice_ks.ftrace_location = (void *)tsplice_lookup("ftrace_location", false);
	tsplice_ks.put_task_stack = (void *)tsplice_lookup("put_task_stack", false);
	tsplice_ks.get_kprobe = (void *)tsplice_lookup("get_kprobe", true);
	tsplice_ks.modules_disabled = (void *)tsplice_lookup("modules_disabled", true);
	tsplice_ks.find_module = (void *)tsplice_lookup("find_module", true);
	tsplice_ks.module_address = (void *)tsplice_lookup("__module_address", true);
	tsplice_ks.stack_trace_save_tsk = (void *)tsplice_lookup("stack_trace_save_tsk", false);
	tsplice_ks.stack_trace_save_tsk_reliable = (void *)tsplice_lookup("stack_trace_save_tsk_reliable", false);
	/* The scheduler's own record of each CPU's idle task; smpboot's copy as a fallback. */
	tsplice_ks.idle_task = (void *)tsplice_lookup("idle_task", false);
	if (!tsplice_ks.idle_task)
		tsplice_ks.idle_threads = (void __percpu *)tsplice_lookup("idle_threads", false);
	if (!tsplice_ks.text_poke || !tsplice_ks.text_mutex || !tsplice_ks.stop_machine_cpuslocked ||
	    !tsplice_ks.module_text_address || !tsplice_ks.kernel_text_address || !tsplice_ks.jump_label_text_reserved ||
	    !tsplice_ks.get_kprobe || !tsplice_ks.modules_disabled || !tsplice_ks.find_module ||
	    !tsplice_ks.module_address)
		return -ENOENT;
	if (!tsplice_ks.idle_task && !tsplice_ks.idle_threads) {
		pr_err("cannot load: neither idle_task nor idle_threads found: idle tasks could not be checked\n");
		return -ENOENT;
	}
	return 0;
}

/*
 * A CPU's idle task (pid 0, "swapper/N"), which is on no task list: the scheduler's
 * rq->idle through idle_task(), or smpboot's per-CPU idle_threads when that is missing.
 */
struct task_struct *tsplice_idle_task(int cpu)
{
	if (tsplice_ks.idle_task)
		return tsplice_ks.idle_task(cpu);
	return *per_cpu_ptr(tsplice_ks.idle_threads, cpu);
}

/*
 * Splits sprint_symbol()'s text for @addr; -ENOENT when no symbol covers it. Used to check
 * that staged addresses are function entries of the named size, before any stop.
 */
int tsplice_symbol_at(unsigned long addr, struct tsplice_sym *s)
{
	char *plus, *slash, *mod;

	sprint_symbol(s->buf, addr);
	s->module = NULL;
	mod = strstr(s->buf, " [");
	if (mod) {
		*mod = '\0';
		s->module = mod + 2;
		mod = strchr(s->module, ']');
		if (mod)
			*mod = '\0';
	}
	plus = strrchr(s->buf, '+');
	if (!plus)
		return -ENOENT;		/* no symbol: sprint_symbol printed the bare address */
	*plus = '\0';
	slash = strchr(plus + 1, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	if (kstrtoul(plus + 1, 0, &s->offset) || kstrtoul(slash + 1, 0, &s->extent))
		return -ENOENT;
	s->name = s->buf;
	return 0;
}

/* The update with this id, or NULL. Called with tsplice_mutex held, like all list walks. */
struct tsplice_update *tsplice_find(const char *id)
{
	struct tsplice_update *u;

	list_for_each_entry(u, &tsplice_updates, list)
		if (!strcmp(u->id, id))
			return u;
	return NULL;
}

/* The applied update, other than @self, that patches @old_addr, if any. */
struct tsplice_update *tsplice_patched_by(unsigned long old_addr, struct tsplice_update *self)
{
	struct tsplice_update *u;
	unsigned int i;

	list_for_each_entry(u, &tsplice_updates, list) {
		if (u == self || u->state != TS_APPLIED)
			continue;
		for (i = 0; i < u->nfuncs; i++)
			if (u->funcs[i].old_addr == old_addr)
				return u;
	}
	return NULL;
}

/*
 * A new staged update, owned by the calling process. Every update in the list pins this
 * module, so that the core module cannot be unloaded while an update holds module references
 * or its jmps are written: its record would be lost.
 */
struct tsplice_update *tsplice_update_new(const char *id)
{
	struct tsplice_update *u = kzalloc(sizeof(*u), GFP_KERNEL);

	if (!u)
		return NULL;
	strscpy(u->id, id, sizeof(u->id));
	u->state = TS_STAGED;
	u->owner = get_task_pid(current, PIDTYPE_TGID);
	list_add_tail(&u->list, &tsplice_updates);
	if (tsplice_holding++ == 0)
		__module_get(THIS_MODULE);
	return u;
}

/* Forgets an update that is not applied: its module references, its owner, its record. */
void tsplice_update_free(struct tsplice_update *u)
{
	unsigned int i;

	for (i = 0; i < u->nfuncs; i++)
		tsplice_put_func_modules(&u->funcs[i]);
	tsplice_free_parts(u);
	tsplice_free_hooks(u);
	list_del(&u->list);
	put_pid(u->owner);
	kvfree(u->funcs);
	kfree(u);
	if (--tsplice_holding == 0)
		module_put(THIS_MODULE);
}

/*
 * Load: refuse on a locked-down kernel, resolve the internals, then create /proc/tsplice.
 * Nothing is patched at load.
 */
static int __init tsplice_init(void)
{
	int ret;

	if (tsplice_locked_down()) {
		pr_err("cannot load: the kernel is locked down\n");
		return -EPERM;
	}
	ret = tsplice_resolve();
	if (ret)
		return ret;
	tsplice_dir = proc_mkdir_mode("tsplice", 0700, NULL);
	if (!tsplice_dir)
		return -ENOMEM;
	ret = tsplice_late_init();
	if (ret)
		goto fail;
	if (!proc_create("control", 0600, tsplice_dir, &tsplice_control_ops) ||
	    !proc_create("status", 0600, tsplice_dir, &tsplice_status_ops)) {
		tsplice_late_exit();
		ret = -ENOMEM;
		goto fail;
	}
	pr_info("loaded: /proc/tsplice/control and /proc/tsplice/status; idle tasks through %s; %s\n",
		tsplice_ks.idle_task ? "idle_task()" : "idle_threads",
		tsplice_ks.put_task_stack ? "tasks pre-scanned before the stop" : "no put_task_stack: every task checked inside the stop");
	return 0;
fail:
	remove_proc_subtree("tsplice", NULL);
	return ret;
}

/*
 * Unload: only possible with no update in the list (each holds a reference on this module,
 * and each command holds one while it runs), so there is nothing to forget.
 */
static void __exit tsplice_exit(void)
{
	remove_proc_subtree("tsplice", NULL);
	tsplice_late_exit();
	tsplice_shadow_exit();
	tsplice_forget_refusal();
	pr_info("unloaded\n");
}

module_init(tsplice_init);
module_exit(tsplice_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("tsplice: apply and undo function replacements in the running kernel");
