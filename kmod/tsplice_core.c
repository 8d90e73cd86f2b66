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
 * context-switch counts moved) have their stacks read again (see "The task check" below for
 * why that is sound); the pages of the patch sites are mapped writable beforehand, so that
 * the writes inside are plain stores.
 *
 * The interface is two root-only files under /proc/tsplice (see docs/core-module.md):
 *   control  one command per write(2); a read(2) on the same open file returns the result
 *            (or the reason for the refusal) of the last command written through it;
 *   status   every update and the last measurement, one record per line.
 *
 * Only what must run in the kernel is here: resolving names, parsing and validation stay as
 * small as the checks that keep the kernel safe, and everything else (finding the functions,
 * building the update module) belongs to the TypeScript tool.
 */
#define pr_fmt(fmt) "tsplice_core: " fmt

#include <linux/capability.h>
#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/ctype.h>
#include <linux/delay.h>
#include <linux/ftrace.h>
#include <linux/hash.h>
#include <linux/log2.h>
#include <linux/kallsyms.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/mm.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/proc_fs.h>
#include <linux/rcupdate.h>
#include <linux/rethook.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/sched/task_stack.h>
#include <linux/security.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/stop_machine.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <asm/switch_to.h>
#include <asm/segment.h>
#include <asm/sync_core.h>
#include <asm/unaligned.h>

#define TSPLICE_JMP_SIZE	5		/* e9 rel32 */
#define TSPLICE_FENTRY_SIZE	5		/* the __fentry__ call, a 5-byte nop when not traced */
#define TSPLICE_MAX_EXPECTED	32		/* bytes of the old function the tool may vouch for */
#define TSPLICE_MAX_FUNCS	1024
#define TSPLICE_ID_LEN		64
#define TSPLICE_MSG_LEN		768
#define TSPLICE_CMD_MAX		2048
#define TSPLICE_DEFAULT_TRIES	5
#define TSPLICE_DEFAULT_RETRY_MS 1000
#define TSPLICE_MAX_RETHOOKS	1024		/* pending kretprobe returns read per task */

/*
 * Every command is refused while the kernel is locked down. 6.1 has no lockdown reason for
 * live patching; the control file takes raw kernel addresses from user space the way unsafe
 * module parameters do, and that reason is at the integrity level, so `lockdown=integrity`
 * and `confidentiality` both refuse it.
 */
#define TSPLICE_LOCKDOWN_REASON	LOCKDOWN_MODULE_PARAMETERS

static const u8 tsplice_nop5[TSPLICE_FENTRY_SIZE] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };

/*
 * Two switches that turn the pause-saving work back into the plain method, so that both can
 * be measured in one boot (bench/apply.ts): `prescan` checks every task before the stop and
 * reads inside it only the stacks of tasks that may have run since (N: every stack inside);
 * `text_poke=N` writes through the writable alias prepared before the stop (Y: one
 * text_poke() per site inside it). Neither changes what is checked, only when and how.
 */
static bool tsplice_prescan_enabled = true;
module_param_named(prescan, tsplice_prescan_enabled, bool, 0644);
MODULE_PARM_DESC(prescan, "check task stacks before stop_machine and re-check inside only tasks that ran since (default Y)");
static bool tsplice_use_text_poke;
module_param_named(text_poke, tsplice_use_text_poke, bool, 0644);
MODULE_PARM_DESC(text_poke, "write each site with text_poke() inside stop_machine instead of through a writable alias mapped before it (default N)");

/* Kernel internals that modules may not link against, found by name once at load. */
static struct {
	unsigned long (*kallsyms_lookup_name)(const char *name);
	void *(*text_poke)(void *addr, const void *opcode, size_t len);
	struct mutex *text_mutex;
	int (*stop_machine_cpuslocked)(cpu_stop_fn_t fn, void *data, const struct cpumask *cpus);
	struct module *(*module_text_address)(unsigned long addr);
	int (*kernel_text_address)(unsigned long addr);
	struct task_struct *(*idle_task)(int cpu);
	struct task_struct * __percpu *idle_threads;
	unsigned long (*ftrace_location)(unsigned long ip);
	void (*put_task_stack)(struct task_struct *t);	/* not exported; no pre-scan without it */
	int (*jump_label_text_reserved)(void *start, void *end);
	int (*static_call_text_reserved)(void *start, void *end);
	struct kprobe *(*get_kprobe)(void *addr);
	int *modules_disabled;			/* kernel.modules_disabled */
	unsigned int (*stack_trace_save_tsk)(struct task_struct *t, unsigned long *store,
					     unsigned int size, unsigned int skipnr);
} ks;

enum tsplice_state { TS_STAGED, TS_APPLIED, TS_REVERTED };

static const char *const tsplice_state_names[] = {
	[TS_STAGED] = "staged",
	[TS_APPLIED] = "applied",
	[TS_REVERTED] = "reverted",
};

/* One function of an update: where it is patched, with what, and what it held before. */
struct tsplice_func {
	char name[KSYM_NAME_LEN];
	char new_name[KSYM_NAME_LEN];
	char old_owner[MODULE_NAME_LEN];	/* "" for vmlinux */
	char new_owner[MODULE_NAME_LEN];
	unsigned long old_addr, old_size;
	unsigned long new_addr, new_size;
	bool fentry;				/* starts with the __fentry__ site */
	unsigned int site;			/* offset of the jmp: 5 after the fentry nop, else 0 */
	unsigned int expected_len;
	u8 expected[TSPLICE_MAX_EXPECTED];	/* from the entry; ftrace owns bytes 0-4 if fentry */
	u8 orig[TSPLICE_JMP_SIZE];		/* bytes at the site before apply */
	u8 jmp[TSPLICE_JMP_SIZE];		/* e9 rel32 to new_addr */
	struct module *old_mod, *new_mod;	/* references held from stage to drop */
};

struct tsplice_update {
	struct list_head list;
	char id[TSPLICE_ID_LEN];
	enum tsplice_state state;
	struct pid *owner;			/* the process that staged it (thread group) */
	bool ever_applied;			/* its new code may have run: drop checks the tasks */
	struct tsplice_func *funcs;
	unsigned int nfuncs;
	time64_t applied_at;			/* wall clock seconds of the last apply, 0 if none */
	unsigned int attempts;			/* stop_machine runs of the last apply or undo */
	u64 pause_ns, call_ns, wait_ns;		/* of the last successful or last tried switch */
	unsigned int tasks;			/* tasks checked in that switch */
	unsigned int scanned;			/* ... of which stacks read inside the stop */
	u64 prescan_ns;				/* the check before the stop, 0 if none */
	char error[TSPLICE_MSG_LEN];		/* why the last command on it failed, "" if none */
};

/* What one stop_machine run does. */
enum tsplice_op { TS_OP_MEASURE, TS_OP_SCAN, TS_OP_APPLY, TS_OP_UNDO, TS_OP_RELEASE };

/*
 * Code no task may be inside: [start, end), excluding, where @exempt is set, a word equal to
 * start or to site (the patch site of an old function, start + 5 after its __fentry__ call).
 * Old functions are exempt; new code is not, and there a word equal to start counts only as
 * an interrupted task's saved instruction pointer (tsplice_stack_hit). See tsplice_range_of.
 */
struct tsplice_range {
	unsigned long start, end, site;
	unsigned int func;
	bool new_code;
	bool exempt;
};

/*
 * A task whose stack the pre-scan found clear, and the number of context switches away from
 * a CPU (nvcsw + nivcsw) it had made before its stack was read. The pre-scan holds a
 * reference on the task, so the pointer names the same task until the run ends.
 */
struct tsplice_seen {
	struct task_struct *task;
	unsigned long switches;
};

/* What kallsyms says is at an address: sprint_symbol's "name+0xoff/0xsize [module]". */
struct tsplice_sym {
	char buf[KSYM_SYMBOL_LEN];
	const char *name;
	const char *module;			/* NULL for vmlinux */
	unsigned long offset, extent;
};

/* Shared by the CPUs of one stop_machine run, and its results. */
struct tsplice_switch {
	enum tsplice_op op;
	struct tsplice_update *u;
	struct tsplice_range *ranges;
	unsigned int nranges;
	unsigned long lo, span;			/* [lo, lo + span) covers every range */
	unsigned long *cpu_sp;			/* stack pointer of each CPU's stopper, at entry */
	struct task_struct **cpu_task;		/* ... the stopper itself */
	u64 *cpu_entry_ns;			/* ... and when it entered the callback */
	struct tsplice_seen *seen;		/* open-addressed by task pointer, NULL if no pre-scan */
	unsigned int seen_bits, prescan_cap, nseen;
	struct task_struct *caller;		/* the task that wrote the command */
	struct tsplice_sym sym;			/* what kallsyms says of one stack word */
	unsigned long trace[64];		/* the unwinder's view of one task, inside the stop */
	u8 **alias;				/* per function: its site through a writable mapping */
	void *alias_area;			/* that mapping (vmap), made before the stop */
	atomic_t entered;
	int done;
	unsigned int cpus;
	/* results */
	int result;
	u64 pause_ns, call_ns;
	u64 wait_ns;				/* first CPU's entry to the leader's: arrival skew */
	unsigned int tasks, odd_sp;
	unsigned int scanned;			/* stacks read inside the stop */
	u64 prescan_ns;
	pid_t busy_pid;
	char busy_comm[TASK_COMM_LEN];
	unsigned long busy_word;
	int busy_range;
	int busy_source;			/* enum tsplice_hit_source */
	int bad_func;
	bool bad_kprobe;			/* ... because a kprobe was registered at its site */
	u8 bad_bytes[TSPLICE_MAX_EXPECTED];
};

struct tsplice_measure {
	bool valid;
	char kind[8];
	char id[TSPLICE_ID_LEN];
	int result;
	unsigned int tasks, cpus, scanned;
	u64 pause_ns, call_ns, wait_ns, prescan_ns;
};

/* Per open control file: the result of the last command written through it. */
struct tsplice_fd {
	char msg[TSPLICE_MSG_LEN];
};

static DEFINE_MUTEX(tsplice_mutex);		/* serializes commands and status */
static LIST_HEAD(tsplice_updates);
static unsigned int tsplice_applied;		/* updates applied now */
static unsigned int tsplice_holding;		/* updates in the list (module references); pins us */
static struct tsplice_measure tsplice_last_measure;
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
	ks.kallsyms_lookup_name = (void *)kp.addr;
	unregister_kprobe(&kp);
	return ks.kallsyms_lookup_name ? 0 : -ENOENT;
}

/* One kernel symbol by name, at load; a missing required one is named in dmesg. */
static unsigned long tsplice_lookup(const char *name, bool required)
{
	unsigned long addr = ks.kallsyms_lookup_name(name);

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
	ks.text_poke = (void *)tsplice_lookup("text_poke", true);
	ks.text_mutex = (void *)tsplice_lookup("text_mutex", true);
	ks.stop_machine_cpuslocked = (void *)tsplice_lookup("stop_machine_cpuslocked", true);
	ks.module_text_address = (void *)tsplice_lookup("__module_text_address", true);
	ks.kernel_text_address = (void *)tsplice_lookup("kernel_text_address", true);
	ks.jump_label_text_reserved = (void *)tsplice_lookup("jump_label_text_reserved", true);
	ks.static_call_text_reserved = (void *)tsplice_lookup("static_call_text_reserved", false);
	ks.ftrace_location = (void *)tsplice_lookup("ftrace_location", false);
	ks.put_task_stack = (void *)tsplice_lookup("put_task_stack", false);
	ks.get_kprobe = (void *)tsplice_lookup("get_kprobe", true);
	ks.modules_disabled = (void *)tsplice_lookup("modules_disabled", true);
	ks.stack_trace_save_tsk = (void *)tsplice_lookup("stack_trace_save_tsk", false);
	/* The scheduler's own record of each CPU's idle task; smpboot's copy as a fallback. */
	ks.idle_task = (void *)tsplice_lookup("idle_task", false);
	if (!ks.idle_task)
		ks.idle_threads = (void __percpu *)tsplice_lookup("idle_threads", false);
	if (!ks.text_poke || !ks.text_mutex || !ks.stop_machine_cpuslocked ||
	    !ks.module_text_address || !ks.kernel_text_address || !ks.jump_label_text_reserved ||
	    !ks.get_kprobe || !ks.modules_disabled)
		return -ENOENT;
	if (!ks.idle_task && !ks.idle_threads) {
		pr_err("cannot load: neither idle_task nor idle_threads found: idle tasks could not be checked\n");
		return -ENOENT;
	}
	return 0;
}

/*
 * A CPU's idle task (pid 0, "swapper/N"), which is on no task list: the scheduler's
 * rq->idle through idle_task(), or smpboot's per-CPU idle_threads when that is missing.
 */
static struct task_struct *tsplice_idle_task(int cpu)
{
	if (ks.idle_task)
		return ks.idle_task(cpu);
	return *per_cpu_ptr(ks.idle_threads, cpu);
}

/*
 * Splits sprint_symbol()'s text for @addr; -ENOENT when no symbol covers it. Used to check
 * that staged addresses are function entries of the named size, before any stop.
 */
static int tsplice_symbol_at(unsigned long addr, struct tsplice_sym *s)
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

/* ---------------------------------------------------------------------------------------- */
/* Validation: everything that can be decided before the machine is stopped                */
/* ---------------------------------------------------------------------------------------- */

/*
 * Checks that [addr, addr+size) is one function's code, from its entry, in vmlinux or in one
 * loaded module (not this one), and names its owner. Used when staging and again before each
 * apply: a module unloaded and another loaded at the same place must not be patched blindly.
 * @fname: the function being replaced, for messages; @is_new: checking its new code.
 * @want: the symbol name expected at @addr, or NULL to learn it into @name_out.
 */
static int tsplice_check_code(const char *fname, bool is_new, unsigned long addr, unsigned long size,
			      const char *want, char *name_out, char *owner_out, char *msg)
{
	const char *what = is_new ? " (new code)" : "";
	struct tsplice_sym *s;
	struct module *first, *last;
	char first_name[MODULE_NAME_LEN] = "", last_name[MODULE_NAME_LEN] = "";
	bool self = false, init = false;
	int ret = -EINVAL;

	s = kmalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return -ENOMEM;
	if (size == 0 || addr + size < addr) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s%s: size %lu is not valid", fname, what, size);
		goto out;
	}
	if (tsplice_symbol_at(addr, s)) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s%s: no symbol at 0x%lx", fname, what, addr);
		goto out;
	}
	if (want && strcmp(s->name, want)) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s%s: 0x%lx is %s+0x%lx, not %s", fname, what, addr,
			 s->name, s->offset, want);
		goto out;
	}
	if (s->offset != 0) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s%s: 0x%lx is %s+0x%lx, not the entry of a function",
			 fname, what, addr, s->name, s->offset);
		goto out;
	}
	if (size > s->extent) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s%s: size %lu exceeds the %lu bytes to the next symbol",
			 fname, what, size, s->extent);
		goto out;
	}
	if (!ks.kernel_text_address(addr) || !ks.kernel_text_address(addr + size - 1)) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s%s: 0x%lx+%lu is not kernel or module text", fname,
			 what, addr, size);
		goto out;
	}
	preempt_disable();
	first = ks.module_text_address(addr);
	last = ks.module_text_address(addr + size - 1);
	if (first)
		strscpy(first_name, first->name, sizeof(first_name));
	if (last)
		strscpy(last_name, last->name, sizeof(last_name));
	self = first == THIS_MODULE;
	/* A module's init text is freed once its init returns: never old or new code. */
	init = first && within_module_init(addr, first);
	preempt_enable();
	if (init) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s%s: 0x%lx is in the init text of %s, which is freed after its init",
			 fname, what, addr, first_name);
		goto out;
	}
	if (first != last) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s%s: 0x%lx+%lu spans %s and %s", fname, what, addr,
			 size, first ? first_name : "vmlinux", last ? last_name : "vmlinux");
		goto out;
	}
	if (self) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s%s: is in tsplice_core itself", fname, what);
		goto out;
	}
	if (s->module && !first) {
		/* bpf programs and ftrace trampolines: text, but owned by no module. */
		snprintf(msg, TSPLICE_MSG_LEN, "%s%s: belongs to [%s], which is not a module", fname,
			 what, s->module);
		goto out;
	}
	if (name_out)
		strscpy(name_out, s->name, KSYM_NAME_LEN);
	strscpy(owner_out, first_name, MODULE_NAME_LEN);
	ret = 0;
out:
	kfree(s);
	return ret;
}

/*
 * The offset from the entry of a kprobe registered where the jmp goes, or -1. A kprobe's
 * int3 (or an optimized probe's jmp, 5 bytes from its address) there would be written over,
 * and disarming or re-arming the probe later writes its saved byte back into the jmp. The
 * probed bytes are [site, site + 5) and the four before them (an optimized probe there
 * reaches into the site); with a __fentry__ site, a probe at the entry itself is ftrace-based
 * (it patches nothing, and the function goes on into the jmp) and is allowed. Called under
 * rcu_read_lock or with interrupts off, as get_kprobe needs.
 */
static int tsplice_kprobe_at_site(const struct tsplice_func *f)
{
	unsigned long a, from = f->old_addr + (f->fentry ? 1 : 0);

	for (a = from; a < f->old_addr + f->site + TSPLICE_JMP_SIZE; a++)
		if (ks.get_kprobe((void *)a))
			return (int)(a - f->old_addr);
	return -1;
}

/*
 * Compares the running bytes of the old function with the expected ones; the five bytes of
 * the __fentry__ site belong to ftrace (a nop, or a call while the function is traced) and
 * are not compared. Refuses a site under a kprobe (tsplice_kprobe_at_site) by name. Used
 * when staging and before stopping the machine; the same tests run again inside the stopped
 * machine, where they cannot race.
 */
static int tsplice_check_bytes(const struct tsplice_func *f, char *msg)
{
	u8 running[TSPLICE_MAX_EXPECTED];
	unsigned int i, skip = f->fentry ? TSPLICE_FENTRY_SIZE : 0;
	int probe;

	rcu_read_lock();
	probe = tsplice_kprobe_at_site(f);
	rcu_read_unlock();
	if (probe >= 0) {
		snprintf(msg, TSPLICE_MSG_LEN,
			 "%s: a kprobe is registered at %s+0x%x, where the jmp goes; remove the probe first",
			 f->name, f->name, probe);
		return -EBUSY;
	}

	if (copy_from_kernel_nofault(running, (void *)f->old_addr, f->expected_len)) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s: cannot read its bytes at 0x%lx", f->name, f->old_addr);
		return -EFAULT;
	}
	for (i = skip; i < f->expected_len; i++) {
		if (running[i] != f->expected[i]) {
			snprintf(msg, TSPLICE_MSG_LEN,
				 "%s: running bytes differ from the expected ones at +%u: running %*phN, expected %*phN",
				 f->name, i, f->expected_len, running, f->expected_len, f->expected);
			return -EILSEQ;
		}
	}
	return 0;
}

/* The update with this id, or NULL. Called with tsplice_mutex held, like all list walks. */
static struct tsplice_update *tsplice_find(const char *id)
{
	struct tsplice_update *u;

	list_for_each_entry(u, &tsplice_updates, list)
		if (!strcmp(u->id, id))
			return u;
	return NULL;
}

/* The applied update, other than @self, that patches @old_addr, if any. */
static struct tsplice_update *tsplice_patched_by(unsigned long old_addr, struct tsplice_update *self)
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

/* Ids are printed in status records and dmesg lines: keep them one plain word. */
static bool tsplice_valid_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n >= TSPLICE_ID_LEN)
		return false;
	for (; *id; id++)
		if (!isalnum(*id) && !strchr("_.:-", *id))
			return false;
	return true;
}

/*
 * Whether @u is being staged by another process that is still alive. The tool serialises its
 * own runs with a lock file; this is the arbiter when two race anyway (a lock taken over as
 * stale, a raw write to the control file): only the stager may add to, apply or drop a staged
 * update while it lives, and a dead stager's update is anyone's to drop.
 */
static bool tsplice_owned_by_other(const struct tsplice_update *u)
{
	return u->state == TS_STAGED && u->owner && u->owner != task_tgid(current) &&
	       pid_has_task(u->owner, PIDTYPE_TGID);
}

/* A reference on the module owning @addr, which must still be the one named @owner. */
static int tsplice_get_module(unsigned long addr, const char *owner, struct module **out)
{
	struct module *mod;
	int ret = 0;

	*out = NULL;
	preempt_disable();
	mod = ks.module_text_address(addr);
	if (!owner[0])
		ret = mod ? -ESTALE : 0;
	else if (!mod || strcmp(mod->name, owner))
		ret = -ESTALE;
	else if (!try_module_get(mod))
		ret = -EBUSY;
	else
		*out = mod;
	preempt_enable();
	return ret;
}

/* Drops the module references of one function (NULL ones are skipped). */
static void tsplice_put_func_modules(struct tsplice_func *f)
{
	if (f->old_mod)
		module_put(f->old_mod);
	if (f->new_mod)
		module_put(f->new_mod);
	f->old_mod = NULL;
	f->new_mod = NULL;
}

/*
 * Pins, from stage to drop, the modules a function's switch depends on: the one holding the
 * new code (a jmp may lead there, and after undo a task, timer or callback may still run it)
 * and the one holding the old function (the switch writes there). Unloading either then fails
 * with EBUSY, so a staged address always names the code that was checked, and a racing
 * tool's rmmod cannot take a module from under a staged or applied update.
 */
static int tsplice_get_func_modules(struct tsplice_func *f, char *msg)
{
	int ret = tsplice_get_module(f->old_addr, f->old_owner, &f->old_mod);

	if (ret) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s: its module %s is %s", f->name,
			 f->old_owner[0] ? f->old_owner : "vmlinux",
			 ret == -EBUSY ? "going away" : "no longer loaded there");
		return ret;
	}
	ret = tsplice_get_module(f->new_addr, f->new_owner, &f->new_mod);
	if (ret) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s: the module %s of its new code is %s", f->name,
			 f->new_owner[0] ? f->new_owner : "vmlinux",
			 ret == -EBUSY ? "going away" : "no longer loaded there");
		tsplice_put_func_modules(f);
	}
	return ret;
}

/*
 * A new staged update, owned by the calling process. Every update in the list pins this
 * module, so that the core module cannot be unloaded while an update holds module references
 * or its jmps are written: its record would be lost.
 */
static struct tsplice_update *tsplice_update_new(const char *id)
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
static void tsplice_update_free(struct tsplice_update *u)
{
	unsigned int i;

	for (i = 0; i < u->nfuncs; i++)
		tsplice_put_func_modules(&u->funcs[i]);
	list_del(&u->list);
	put_pid(u->owner);
	kvfree(u->funcs);
	kfree(u);
	if (--tsplice_holding == 0)
		module_put(THIS_MODULE);
}

/*
 * `stage ID NAME OLD OLD_SIZE NEW NEW_SIZE EXPECTED_HEX`: adds one function to update ID,
 * creating the update. Everything about the function is checked here, long before any
 * machine stop: the symbol at OLD is NAME at offset 0 and OLD_SIZE fits before the next
 * symbol; NEW is the entry of a function in module (or vmlinux) text; the patch site is
 * after the __fentry__ nop when ftrace knows one at the entry, at the entry otherwise; the
 * function is long enough for the jmp; the jmp reaches; no jump label or static call site
 * overlaps it; and the running bytes equal EXPECTED_HEX (the bytes from the entry, at least
 * through the patch site).
 */
static int tsplice_stage(char **argv, char *msg)
{
	const char *id = argv[1], *name = argv[2];
	unsigned long old_addr, old_size, new_addr, new_size;
	struct tsplice_update *u, *other;
	struct tsplice_func *f = NULL, *grown;
	size_t hexlen = strlen(argv[7]);
	bool created = false;
	long rel;
	unsigned int i;
	int ret;

	if (!tsplice_valid_id(id)) {
		snprintf(msg, TSPLICE_MSG_LEN, "stage: '%s' is not a valid update id ([A-Za-z0-9_.:-], 1-63)", id);
		return -EINVAL;
	}
	if (strlen(name) >= KSYM_NAME_LEN || kstrtoul(argv[3], 0, &old_addr) ||
	    kstrtoul(argv[4], 0, &old_size) || kstrtoul(argv[5], 0, &new_addr) ||
	    kstrtoul(argv[6], 0, &new_size)) {
		snprintf(msg, TSPLICE_MSG_LEN, "stage %s %s: addresses and sizes must be numbers", id, name);
		return -EINVAL;
	}
	u = tsplice_find(id);
	if (u && tsplice_owned_by_other(u)) {
		snprintf(msg, TSPLICE_MSG_LEN, "stage %s %s: update %s is being staged by pid %d", id, name,
			 id, pid_vnr(u->owner));
		return -EBUSY;
	}
	if (u && u->state != TS_STAGED) {
		snprintf(msg, TSPLICE_MSG_LEN, "stage %s %s: update %s is %s; stage into a new id", id,
			 name, id, tsplice_state_names[u->state]);
		return -EBUSY;
	}
	if (u && u->nfuncs >= TSPLICE_MAX_FUNCS) {
		snprintf(msg, TSPLICE_MSG_LEN, "stage %s %s: at most %d functions per update", id, name,
			 TSPLICE_MAX_FUNCS);
		return -E2BIG;
	}
	if (u) {
		for (i = 0; i < u->nfuncs; i++) {
			if (u->funcs[i].old_addr == old_addr) {
				snprintf(msg, TSPLICE_MSG_LEN, "stage %s %s: already staged in %s", id, name, id);
				return -EEXIST;
			}
		}
	}
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	strscpy(f->name, name, sizeof(f->name));
	f->old_addr = old_addr;
	f->old_size = old_size;
	f->new_addr = new_addr;
	f->new_size = new_size;

	ret = tsplice_check_code(name, false, old_addr, old_size, name, NULL, f->old_owner, msg);
	if (ret)
		goto fail;
	ret = tsplice_check_code(name, true, new_addr, new_size, NULL, f->new_name, f->new_owner, msg);
	if (ret)
		goto fail;
	if (old_addr < new_addr + new_size && new_addr < old_addr + old_size) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s: the new code overlaps the old function", name);
		ret = -EINVAL;
		goto fail;
	}

	/* The patch site: after the fentry nop that ftrace owns, or the entry (notrace). */
	if (ks.ftrace_location) {
		unsigned long loc = ks.ftrace_location(old_addr);

		if (loc && loc != old_addr) {
			snprintf(msg, TSPLICE_MSG_LEN,
				 "%s: its __fentry__ site is at +%lu, not at the entry; not supported",
				 name, loc - old_addr);
			ret = -EINVAL;
			goto fail;
		}
		f->fentry = loc == old_addr;
	} else {
		u8 first[TSPLICE_FENTRY_SIZE];

		f->fentry = !copy_from_kernel_nofault(first, (void *)old_addr, sizeof(first)) &&
			    !memcmp(first, tsplice_nop5, sizeof(first));
	}
	f->site = f->fentry ? TSPLICE_FENTRY_SIZE : 0;
	if (!f->fentry) {
		static const u8 endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };
		u8 first[4];

		/*
		 * With IBT an indirect call must land on the endbr64; a jmp written over it
		 * would break that, and this kernel has no IBT to try it on: refuse by name.
		 */
		if (!copy_from_kernel_nofault(first, (void *)old_addr, sizeof(first)) &&
		    !memcmp(first, endbr64, sizeof(first))) {
			snprintf(msg, TSPLICE_MSG_LEN, "%s: starts with endbr64 (IBT); not supported", name);
			ret = -EINVAL;
			goto fail;
		}
	}
	if (old_size < f->site + TSPLICE_JMP_SIZE) {
		snprintf(msg, TSPLICE_MSG_LEN,
			 "%s is too short to patch: %lu bytes, needs %u (%s%d-byte jmp)", name, old_size,
			 f->site + TSPLICE_JMP_SIZE, f->fentry ? "5-byte __fentry__ nop + " : "",
			 TSPLICE_JMP_SIZE);
		ret = -EINVAL;
		goto fail;
	}
	rel = (long)new_addr - (long)(old_addr + f->site + TSPLICE_JMP_SIZE);
	if (rel != (long)(s32)rel) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s: the new code at 0x%lx is out of reach of a jmp rel32",
			 name, new_addr);
		ret = -ERANGE;
		goto fail;
	}
	f->jmp[0] = 0xe9;
	put_unaligned_le32((u32)(s32)rel, &f->jmp[1]);
	if (ks.jump_label_text_reserved((void *)(old_addr + f->site),
					(void *)(old_addr + f->site + TSPLICE_JMP_SIZE - 1)) ||
	    (ks.static_call_text_reserved &&
	     ks.static_call_text_reserved((void *)(old_addr + f->site),
					  (void *)(old_addr + f->site + TSPLICE_JMP_SIZE - 1)))) {
		snprintf(msg, TSPLICE_MSG_LEN,
			 "%s: a jump label or static call site overlaps the patch site at +%u", name, f->site);
		ret = -EBUSY;
		goto fail;
	}

	/* The expected bytes, from the entry, at least through the patch site. */
	if (hexlen % 2 || hexlen / 2 < f->site + TSPLICE_JMP_SIZE ||
	    hexlen / 2 > min_t(unsigned long, TSPLICE_MAX_EXPECTED, old_size) ||
	    hex2bin(f->expected, argv[7], hexlen / 2)) {
		snprintf(msg, TSPLICE_MSG_LEN,
			 "%s: expected bytes must be hex, %u to %lu bytes from the entry", name,
			 f->site + TSPLICE_JMP_SIZE, min_t(unsigned long, TSPLICE_MAX_EXPECTED, old_size));
		ret = -EINVAL;
		goto fail;
	}
	f->expected_len = hexlen / 2;
	other = tsplice_patched_by(old_addr, NULL);
	if (other) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s: already replaced by applied update %s", name, other->id);
		ret = -EBUSY;
		goto fail;
	}
	ret = tsplice_check_bytes(f, msg);
	if (ret)
		goto fail;
	memcpy(f->orig, f->expected + f->site, TSPLICE_JMP_SIZE);
	/* From here to drop, neither module can go: a staged address always names live code. */
	ret = tsplice_get_func_modules(f, msg);
	if (ret)
		goto fail;

	if (!u) {
		u = tsplice_update_new(id);
		if (!u) {
			ret = -ENOMEM;
			goto fail_put;
		}
		created = true;
	}
	grown = kvmalloc_array(u->nfuncs + 1, sizeof(*grown), GFP_KERNEL);
	if (!grown) {
		if (created) {
			tsplice_update_free(u);
			u = NULL;
		}
		ret = -ENOMEM;
		goto fail_put;
	}
	if (u->nfuncs)
		memcpy(grown, u->funcs, u->nfuncs * sizeof(*grown));
	memcpy(&grown[u->nfuncs], f, sizeof(*f));
	kvfree(u->funcs);
	u->funcs = grown;
	u->nfuncs++;
	u->error[0] = '\0';
	snprintf(msg, TSPLICE_MSG_LEN, "ok: staged %s in %s: jmp at +%u to %s%s%s%s", name, id, f->site,
		 f->new_name, f->new_owner[0] ? " [" : "", f->new_owner, f->new_owner[0] ? "]" : "");
	kfree(f);
	return 0;
fail_put:
	tsplice_put_func_modules(f);
fail:
	if (u)
		strscpy(u->error, msg, sizeof(u->error));
	pr_err("stage %s refused: %s\n", id, msg);
	kfree(f);
	return ret;
}

/* ---------------------------------------------------------------------------------------- */
/* A switch's state                                                                         */
/* ---------------------------------------------------------------------------------------- */

/* sort() order for ranges: by start address, for the binary search of the scan. */
static int tsplice_range_cmp(const void *a, const void *b)
{
	const struct tsplice_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * After undo no task may still be in the update's new code, and drop lets its module go, so
 * a task anywhere in that code is busy, not only one in the new versions of the replaced
 * functions: a new helper or a private copy of a static that the new code reached by a tail
 * call leaves no return address in them. Adds the parts of the module's text outside those
 * functions as ranges of their own (named by the first function; the busy message names the
 * symbol the word points into). Returns the new range count.
 */
static unsigned int tsplice_add_module_rest(struct tsplice_switch *sw, struct tsplice_update *u,
					    unsigned int n)
{
	struct module *mod = NULL;
	unsigned long cursor, end;
	unsigned int i, first = n;

	for (i = 0; i < u->nfuncs && !mod; i++)
		mod = u->funcs[i].new_mod;
	if (!mod)
		return n;
	cursor = (unsigned long)mod->core_layout.base;
	end = cursor + mod->core_layout.text_size;
	/* The new-code ranges are ranges[first-…]: walk them in address order. */
	sort(sw->ranges, n, sizeof(*sw->ranges), tsplice_range_cmp, NULL);
	for (i = 0; i < first; i++) {
		const struct tsplice_range *r = &sw->ranges[i];

		if (!r->new_code || r->end <= cursor || r->start >= end)
			continue;
		if (r->start > cursor)
			sw->ranges[n++] = (struct tsplice_range){ cursor, r->start, cursor, 0, true, false };
		cursor = max(cursor, r->end);
	}
	if (cursor < end)
		sw->ranges[n++] = (struct tsplice_range){ cursor, end, cursor, 0, true, false };
	return n;
}

/*
 * Prepares a run: the sorted ranges to check (the old functions for apply and for a scan of
 * a staged update; the new functions and the old ones for undo, with the rest of the update
 * module's code; the module's whole text, as new code, for the drop of an update that
 * was applied), their overall bound, room
 * for each CPU's stack pointer and, for apply and undo, for each site's writable alias. All
 * allocation happens here or in tsplice_run, before the stop.
 */
static struct tsplice_switch *tsplice_switch_new(enum tsplice_op op, struct tsplice_update *u)
{
	struct tsplice_switch *sw = kzalloc(sizeof(*sw), GFP_KERNEL);
	bool writes = op == TS_OP_APPLY || op == TS_OP_UNDO;
	unsigned int i, n = 0;
	unsigned long hi = 0;

	if (!sw)
		return NULL;
	sw->op = op;
	sw->u = u;
	sw->busy_range = -1;
	sw->bad_func = -1;
	sw->cpu_sp = kcalloc(nr_cpu_ids, sizeof(*sw->cpu_sp), GFP_KERNEL);
	sw->cpu_task = kcalloc(nr_cpu_ids, sizeof(*sw->cpu_task), GFP_KERNEL);
	sw->cpu_entry_ns = kcalloc(nr_cpu_ids, sizeof(*sw->cpu_entry_ns), GFP_KERNEL);
	if (u)
		sw->ranges = kvmalloc_array(3 * u->nfuncs + 1, sizeof(*sw->ranges), GFP_KERNEL);
	if (writes)
		sw->alias = kcalloc(u->nfuncs, sizeof(*sw->alias), GFP_KERNEL);
	if (!sw->cpu_sp || !sw->cpu_task || !sw->cpu_entry_ns || (u && !sw->ranges) ||
	    (writes && !sw->alias))
		goto nomem;
	for (i = 0; u && op != TS_OP_RELEASE && i < u->nfuncs; i++) {
		struct tsplice_func *f = &u->funcs[i];

		sw->ranges[n++] = (struct tsplice_range){ f->old_addr, f->old_addr + f->old_size,
							  f->old_addr + f->site, i, false, true };
		if (op == TS_OP_UNDO || (op == TS_OP_SCAN && u->state == TS_APPLIED))
			sw->ranges[n++] = (struct tsplice_range){ f->new_addr, f->new_addr + f->new_size,
								  f->new_addr, i, true, false };
	}
	if (u && (op == TS_OP_UNDO || op == TS_OP_RELEASE || (op == TS_OP_SCAN && u->state == TS_APPLIED)))
		n = tsplice_add_module_rest(sw, u, n);
	sw->nranges = n;
	if (n) {
		sort(sw->ranges, n, sizeof(*sw->ranges), tsplice_range_cmp, NULL);
		for (i = 0; i < n; i++)
			hi = max(hi, sw->ranges[i].end);
		sw->lo = sw->ranges[0].start;
		sw->span = hi - sw->lo;
	}
	return sw;
nomem:
	kfree(sw->cpu_sp);
	kfree(sw->cpu_task);
	kfree(sw->cpu_entry_ns);
	kvfree(sw->ranges);
	kfree(sw->alias);
	kfree(sw);
	return NULL;
}

/* Frees a run's state once the machine runs again; NULL is allowed. */
static void tsplice_switch_free(struct tsplice_switch *sw)
{
	if (!sw)
		return;
	kfree(sw->cpu_sp);
	kfree(sw->cpu_task);
	kfree(sw->cpu_entry_ns);
	kvfree(sw->ranges);
	kfree(sw->alias);
	kfree(sw);
}

/* ---------------------------------------------------------------------------------------- */
/* The task check                                                                           */
/* ---------------------------------------------------------------------------------------- */

/*
 * No task may be inside code a switch changes: a task stopped in an old function would come
 * back to bytes now overwritten by the jmp, or (undo) into new code about to be unloaded. A
 * task is inside when a word of the live part of its kernel stack points into a checked
 * range (tsplice_stack_hit). Reading every task's stack inside stop_machine costs about 12 µs
 * per task under emulation, with the machine stopped, so the check is split in two, much as
 * kernel/livepatch/transition.c checks sleeping tasks one at a time while the system runs:
 *
 * 1. The pre-scan (tsplice_prescan), before the stop, with the system running and CPU
 *    hotplug held off, visits every task on the lists and every online CPU's idle task. For
 *    each it reads, in this order: the switch count nvcsw + nivcsw; then, after smp_rmb(),
 *    ->on_cpu with acquire; then ->thread.sp and the stack words (under
 *    try_get_task_stack()). A task not on a CPU whose stack is clear is recorded with the
 *    count read first, and pinned with get_task_struct() so that its pointer names the same
 *    task to the end of the run. Any other task (on a CPU, exited, odd stack pointer, found
 *    inside, or missed by the walk) is not recorded.
 *
 * 2. Inside the stop (tsplice_scan_tasks), every task on the lists and every online CPU's
 *    idle task is visited, as without the pre-scan. A recorded task that is not on a CPU
 *    (->on_cpu clear, and not one of the stopper threads the callback saw) and whose count
 *    is still the recorded one is taken as checked; every other task has its stack read.
 *    The pre-scan therefore only spares work: a task it found inside, or could not judge, is
 *    judged inside the stop exactly as before.
 *
 * Why a task taken as checked is clear. In 6.1, __schedule() increments prev->nvcsw (it
 * slept) or prev->nivcsw (preempted, or an idle task giving way) under the runqueue lock,
 * before context_switch(), for every switch in which a task leaves a CPU (prev != next), the
 * last switch of an exiting task included. Being switched in increments nothing, and nothing
 * else writes the counts after fork zeroes them (getrusage, taskstats, hung_task and
 * rcu-tasks only read them). ->on_cpu is set before a task is switched in (prepare_task) and
 * cleared by a release store only once it has been switched out with its registers and
 * ->thread.sp saved (finish_task); seen clear with acquire, the saved stack is seen whole.
 * So if a recorded task executed any instruction after step 1 read its ->on_cpu clear, then
 * inside the stop either it is on a CPU (only the stopper threads are, and they are never
 * taken as checked) or it has left a CPU since, and that switch made its count larger than
 * the one read before ->on_cpu: the counts only grow, and each CPU enters the callback
 * through a fully ordered atomic_inc_return() after its last switch, before the patching CPU
 * reads them. A count read while a switch was in progress is at worst too small, which only
 * sends the task to a full check. An unchanged count therefore means the task has not
 * executed since step 1 read its stack, and the words from its saved stack pointer to the
 * top (every return address, and the pt_regs of any interrupt it was preempted in) are the
 * ones step 1 found clear. A task woken but not yet run, or moved between runqueues, has not
 * executed. Only the task itself puts return addresses on its stack (calls, and interrupt
 * entry while it is current); other tasks may write data into objects on it (wait queue
 * entries, completions) and ptrace its user registers, none of which is a place the task
 * returns to in the kernel. An idle task starts executing without being switched in only
 * when its CPU comes online, which the hotplug lock excludes from step 1 to the end of the
 * stop. A recorded task that exited since has no stack any more (it is skipped) or never
 * runs again.
 */

/* Where the scan found a word in a checked range. */
enum tsplice_hit_source {
	TS_HIT_STACK,		/* a word on the live part of the stack */
	TS_HIT_SAVED_IP,	/* the saved instruction pointer of a task switched out */
	TS_HIT_GRAPH,		/* a return address the function-graph tracer keeps */
	TS_HIT_RETHOOK,		/* a return address a kretprobe (rethook) keeps */
	TS_HIT_RETHOOK_MANY,	/* more pending kretprobe returns than can be read */
};

struct tsplice_hit {
	unsigned long word;
	int range;
	enum tsplice_hit_source source;
};

/*
 * The range a stack word points into, or -1. Callers have already done the one-compare
 * bound test; this binary search runs only for the rare words inside [lo, lo + span).
 * Where the range is exempt (an old function), two words are let pass. A word equal to its
 * start is no return address (nothing calls into the bytes before a function's entry); a task
 * stopped exactly there (an interrupt's saved IP) executes the function from its entry: the
 * new bytes whole (apply) or the original ones (undo). For new code (undo, drop) that would
 * mean running the new function after undo, so there the exemption is not sound: a start
 * word is returned, and the caller tells an interrupted task's saved IP from a stale pointer.
 * Nor is a word equal to the patch site after a __fentry__ call: the only call that returns
 * there is that call, made on entry before the function set up anything (a task preempted
 * in an ftrace handler, or stopped right after the nop), and a task that goes on from there
 * executes the whole jmp (apply) or the whole original bytes (undo), as if it had just
 * entered. Excluding it also keeps stale copies of the site's address, which the patching
 * task computes before the stop, from making that task look busy.
 */
static int tsplice_range_of(const struct tsplice_switch *sw, unsigned long w)
{
	unsigned int lo = 0, hi = sw->nranges;
	const struct tsplice_range *r;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (sw->ranges[mid].start <= w)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -1;
	r = &sw->ranges[lo - 1];
	if (w >= r->end || (r->exempt && (w == r->start || w == r->site)))
		return -1;
	return (int)(lo - 1);
}

/*
 * The fast path of the scan, for every stack word: one subtraction and compare against the
 * overall bound, and only inside it the binary search.
 */
static __always_inline int tsplice_word_range(const struct tsplice_switch *sw, unsigned long w)
{
	if (w - sw->lo >= sw->span)
		return -1;
	return tsplice_range_of(sw, w);
}

/*
 * Return addresses that are not on the stack. The function-graph tracer and kretprobes
 * (rethook, on this kernel) replace a return address on the stack with their trampoline
 * (return_to_handler, arch_rethook_trampoline) and keep the real one in the task: the
 * graph tracer in t->ret_stack[0..curr_ret_stack], rethook in the t->rethooks list. A task
 * asleep in do_nanosleep with `schedule` graph-traced has no word of do_nanosleep on its
 * stack at all; the kernel's unwinder recovers these (unwind_recover_ret_addr), and so must
 * the check. Only the task itself pushes and pops them (on function entry and return), so
 * the pre-scan's argument holds for them as for the stack: a task that has not run since
 * has the same ones. Read with READ_ONCE only: in the pre-scan, under rcu_read_lock (a
 * task's ret_stack is freed with the task, rethook nodes after a grace period), a task
 * that starts running may change them, and then its switch count sends it to the full
 * check inside the stop. A list longer than TSPLICE_MAX_RETHOOKS cannot be judged: busy.
 */
static bool tsplice_hidden_hit(const struct tsplice_switch *sw, struct task_struct *t,
			       struct tsplice_hit *hit)
{
	unsigned long w;
	int r;
#ifdef CONFIG_FUNCTION_GRAPH_TRACER
	struct ftrace_ret_stack *ret_stack = READ_ONCE(t->ret_stack);
	int i, top = min(READ_ONCE(t->curr_ret_stack), FTRACE_RETFUNC_DEPTH - 1);

	for (i = 0; ret_stack && i <= top; i++) {
		w = READ_ONCE(ret_stack[i].ret);
		r = tsplice_word_range(sw, w);
		if (r >= 0 && w != sw->ranges[r].start) {
			*hit = (struct tsplice_hit){ w, r, TS_HIT_GRAPH };
			return true;
		}
	}
#endif
#ifdef CONFIG_RETHOOK
	{
		struct llist_node *node = READ_ONCE(t->rethooks.first);
		unsigned int n;

		for (n = 0; node; n++, node = READ_ONCE(node->next)) {
			if (n == TSPLICE_MAX_RETHOOKS) {
				*hit = (struct tsplice_hit){ 0, 0, TS_HIT_RETHOOK_MANY };
				return true;
			}
			w = READ_ONCE(container_of(node, struct rethook_node, llist)->ret_addr);
			r = tsplice_word_range(sw, w);
			if (r >= 0 && w != sw->ranges[r].start) {
				*hit = (struct tsplice_hit){ w, r, TS_HIT_RETHOOK };
				return true;
			}
		}
	}
#endif
	return false;
}

/*
 * Whether the stack word at @p, equal to the entry of new code, is the saved instruction
 * pointer of an interrupt or exception frame taken in the kernel: the CPU pushed ss, sp,
 * flags, cs and ip, so above the ip lie __KERNEL_CS, flags with the always-set bit 1, a stack
 * pointer into this same stack, and __KERNEL_DS or a null selector. Such a task resumes at
 * the entry and is inside. Any other word equal to an entry is a pointer to the function (a
 * callback field, a stale slot: in the lab, threads of the tool that had read the status,
 * which prints these addresses, kept them in live frames, once beside a word equal to
 * __KERNEL_CS) and is no place the task returns to.
 */
static bool tsplice_interrupted_at(const unsigned long *p, const unsigned long *base,
				   const unsigned long *top)
{
	unsigned long ss, sp;

	if (p + 5 > top || READ_ONCE_NOCHECK(p[1]) != __KERNEL_CS ||
	    !(READ_ONCE_NOCHECK(p[2]) & X86_EFLAGS_FIXED))
		return false;
	sp = READ_ONCE_NOCHECK(p[3]);
	ss = READ_ONCE_NOCHECK(p[4]);
	return sp >= (unsigned long)base && sp <= (unsigned long)top && (ss == __KERNEL_DS || ss == 0);
}

/*
 * Inside the stop: whether the kernel's unwinder, which follows the ORC data through every
 * frame, interrupt frames (pt_regs) included, reaches @ip in @t's stack. It confirms a word
 * that looks like an interrupt frame at a new function's entry: live frames also hold stale
 * slots (large uninitialized locals), and in the lab a whole old frame of that shape was
 * found in one. Without stack_trace_save_tsk, or when the trace fills the buffer, the look
 * stands (busy).
 */
static bool tsplice_unwinder_sees(struct tsplice_switch *sw, struct task_struct *t, unsigned long ip)
{
	unsigned int i, n;

	if (!ks.stack_trace_save_tsk)
		return true;
	n = ks.stack_trace_save_tsk(t, sw->trace, ARRAY_SIZE(sw->trace), 0);
	for (i = 0; i < n; i++)
		if (sw->trace[i] == ip)
			return true;
	return n == ARRAY_SIZE(sw->trace);
}

/*
 * Whether @w, in new-code range @r, is the entry of a function of the update module: the
 * range's start, or any symbol kallsyms places at offset 0 (a new helper, a .cold part or a
 * private copy inside the module's other text). Such words are pointers (the tool printed
 * them: the status, /proc/kallsyms) or an interrupted task's saved IP, never return
 * addresses. Drop lets them all pass: undo counted every task interrupted at a new entry,
 * and afterwards no jmp leads there; new code is reached again only through what it
 * registered, which is the operator's word at unload.
 */
static bool tsplice_new_entry(struct tsplice_switch *sw, int r, unsigned long w)
{
	return w == sw->ranges[r].start || (!tsplice_symbol_at(w, &sw->sym) && sw->sym.offset == 0);
}

/*
 * Whether task @t may be inside a checked range: the saved instruction pointer first (the
 * ret_addr of the inactive_task_frame at @sp, for a task not running), then every word from
 * @sp to the top of the THREAD_SIZE stack at @base, then the return addresses kept off the
 * stack (tsplice_hidden_hit). Interrupt and exception frames of a preempted task sit on the
 * stack too (pt_regs), so their instruction pointers are scanned. Only reads: the pre-scan
 * runs it on stacks that may be changing. @confirm: inside the stop, where the unwinder
 * may be asked (tsplice_unwinder_sees).
 */
static bool tsplice_stack_hit(struct tsplice_switch *sw, struct task_struct *t,
			      unsigned long *base, unsigned long sp, bool running, bool confirm,
			      struct tsplice_hit *hit)
{
	/*
	 * The task that wrote the command is running this module's code, not stopped at a new
	 * function's entry; words equal to one on its stack are its own stale locals (the
	 * status it read printed those addresses): they are no frame of it. Its return
	 * addresses still count, as everyone's.
	 */
	bool entries_pass = t == sw->caller;
	unsigned long *top = (unsigned long *)((char *)base + THREAD_SIZE);
	unsigned long *p = (unsigned long *)ALIGN_DOWN(sp, sizeof(long));
	unsigned long w;
	int r;

	if (!running && (unsigned long)(p + sizeof(struct inactive_task_frame) / sizeof(long)) <=
			(unsigned long)top) {
		const struct inactive_task_frame *frame = (const void *)p;

		w = READ_ONCE_NOCHECK(frame->ret_addr);
		r = tsplice_word_range(sw, w);
		if (r >= 0) {
			*hit = (struct tsplice_hit){ w, r, TS_HIT_SAVED_IP };
			return true;
		}
	}
	for (; p < top; p++) {
		w = READ_ONCE_NOCHECK(*p);
		r = tsplice_word_range(sw, w);
		if (r < 0 || (sw->ranges[r].new_code && tsplice_new_entry(sw, r, w) &&
			      (sw->op == TS_OP_RELEASE || entries_pass ||
			       !tsplice_interrupted_at(p, base, top) ||
			       (confirm && !tsplice_unwinder_sees(sw, t, w)))))
			continue;
		*hit = (struct tsplice_hit){ w, r, TS_HIT_STACK };
		return true;
	}
	return tsplice_hidden_hit(sw, t, hit);
}

/*
 * Inside the stop: whether a task may be inside the checked code, from its stack. The stack
 * pointer is the one saved at its last switch (thread.sp) for a task not running; the CPUs'
 * running tasks are their stopper threads, which recorded their own on entry. A task whose
 * stack is already released (dead) is skipped: it never runs again. On a hit, records the
 * task and the word for the abort message (formatted after the machine runs again).
 */
static bool tsplice_task_busy(struct tsplice_switch *sw, struct task_struct *t)
{
	unsigned long *base, *top, sp;
	struct tsplice_hit hit;
	unsigned int cpu;
	bool running;

#ifdef CONFIG_THREAD_INFO_IN_TASK
	if (!refcount_read(&t->stack_refcount))
		return false;
#endif
	base = task_stack_page(t);
	if (!base)
		return false;
	top = (unsigned long *)((char *)base + THREAD_SIZE);
	cpu = task_cpu(t);
	running = cpu < nr_cpu_ids && sw->cpu_task[cpu] == t;
	sp = running ? sw->cpu_sp[cpu] : t->thread.sp;
	if (sp < (unsigned long)base || sp >= (unsigned long)top) {
		/* Not expected; scan the whole stack rather than trust it. */
		sw->odd_sp++;
		sp = (unsigned long)base;
		running = true;
	}
	sw->scanned++;
	if (!tsplice_stack_hit(sw, t, base, sp, running, true, &hit))
		return false;
	sw->busy_pid = t->pid;
	memcpy(sw->busy_comm, t->comm, sizeof(sw->busy_comm));
	sw->busy_comm[sizeof(sw->busy_comm) - 1] = '\0';
	sw->busy_word = hit.word;
	sw->busy_range = hit.range;
	sw->busy_source = hit.source;
	return true;
}

/* The pre-scan's slot for @t: its record, or the empty slot where it would go. */
static struct tsplice_seen *tsplice_seen_slot(const struct tsplice_switch *sw,
					      const struct task_struct *t)
{
	unsigned int mask = (1U << sw->seen_bits) - 1, i = hash_ptr(t, sw->seen_bits);

	/* At most half the slots are ever used, so an empty one ends every search. */
	for (;; i = (i + 1) & mask)
		if (sw->seen[i].task == t || !sw->seen[i].task)
			return &sw->seen[i];
}

/* Inside the stop: a recorded task that has not executed since step 1 read its stack. */
static bool tsplice_task_unchanged(const struct tsplice_switch *sw, struct task_struct *t)
{
	const struct tsplice_seen *s;
	unsigned int cpu;

	if (!sw->seen)
		return false;
	s = tsplice_seen_slot(sw, t);
	if (s->task != t || READ_ONCE(t->on_cpu))
		return false;
	cpu = task_cpu(t);
	if (cpu < nr_cpu_ids && sw->cpu_task[cpu] == t)
		return false;
	return READ_ONCE(t->nvcsw) + READ_ONCE(t->nivcsw) == s->switches;
}

/* Inside the stop, one task: taken as checked if recorded and unchanged, else its stack is read. */
static bool tsplice_check_task(struct tsplice_switch *sw, struct task_struct *t)
{
	sw->tasks++;
	if (tsplice_task_unchanged(sw, t))
		return false;
	return tsplice_task_busy(sw, t);
}

/*
 * Step 2, on the patching CPU with every other CPU spinning: every task, all threads of all
 * processes, then each online CPU's idle task, which is on no task list. No task can run,
 * fork or exit meanwhile; the RCU read section only documents the list walk.
 */
static noinline bool tsplice_scan_tasks(struct tsplice_switch *sw)
{
	struct task_struct *g, *t;
	unsigned int cpu;
	bool busy = false;

	rcu_read_lock();
	for_each_process_thread(g, t) {
		if (tsplice_check_task(sw, t)) {
			busy = true;
			goto out;
		}
	}
	for_each_online_cpu(cpu) {
		t = tsplice_idle_task(cpu);
		if (t && tsplice_check_task(sw, t)) {
			busy = true;
			goto out;
		}
	}
out:
	rcu_read_unlock();
	return busy;
}

/*
 * Step 1 for one task, with the system running: the reads in the order the soundness
 * argument needs (count, then ->on_cpu with acquire, then the stack), and the record.
 */
static void tsplice_prescan_task(struct tsplice_switch *sw, struct task_struct *t)
{
	unsigned long switches, sp, *base;
	struct tsplice_seen *s;
	struct tsplice_hit hit;
	bool clear;

	if (sw->nseen >= sw->prescan_cap)
		return;				/* no room: the stop reads this one */
	switches = READ_ONCE(t->nvcsw) + READ_ONCE(t->nivcsw);
	smp_rmb();				/* the count is read before ->on_cpu */
	if (smp_load_acquire(&t->on_cpu))
		return;				/* on a CPU: left to the stop */
	base = try_get_task_stack(t);
	if (!base)
		return;				/* exited: never runs again */
	sp = READ_ONCE(t->thread.sp);
	clear = sp >= (unsigned long)base && sp < (unsigned long)base + THREAD_SIZE &&
		!tsplice_stack_hit(sw, t, base, sp, false, false, &hit);
	ks.put_task_stack(t);
	if (!clear)
		return;				/* inside, or odd: left to the stop */
	s = tsplice_seen_slot(sw, t);
	if (s->task)
		return;				/* visited already */
	get_task_struct(t);
	s->task = t;
	s->switches = switches;
	sw->nseen++;
}

/*
 * Step 1, before the stop, with the system running; the caller holds cpus_read_lock, so the
 * set of online CPUs and their idle tasks stays the same until the stop is over. The walk
 * needs no lock: a task it misses is simply not recorded, and the stop reads its stack.
 * Skipped when turned off, when put_task_stack was not found at load, or when the table
 * cannot be allocated: the stop then reads every stack, as without it.
 */
static void tsplice_prescan(struct tsplice_switch *sw)
{
	struct task_struct *g, *t;
	unsigned int n = 0, cpu;
	u64 t0 = ktime_get_ns();

	if (!tsplice_prescan_enabled || !ks.put_task_stack)
		return;
	rcu_read_lock();
	for_each_process_thread(g, t)
		n++;
	rcu_read_unlock();
	/* Room for the idle tasks and for tasks forked meanwhile; at most half the slots used. */
	sw->prescan_cap = n + num_online_cpus() + 256;
	sw->seen_bits = order_base_2(2 * sw->prescan_cap);
	sw->seen = kvcalloc(1UL << sw->seen_bits, sizeof(*sw->seen), GFP_KERNEL);
	if (!sw->seen)
		return;
	rcu_read_lock();
	for_each_process_thread(g, t)
		tsplice_prescan_task(sw, t);
	for_each_online_cpu(cpu) {
		t = tsplice_idle_task(cpu);
		if (t)
			tsplice_prescan_task(sw, t);
	}
	rcu_read_unlock();
	sw->prescan_ns = ktime_get_ns() - t0;
}

/* Drops the pre-scan's task references and its table, once the machine runs again. */
static void tsplice_prescan_release(struct tsplice_switch *sw)
{
	unsigned int i;

	if (!sw->seen)
		return;
	for (i = 0; i < 1U << sw->seen_bits; i++)
		if (sw->seen[i].task)
			put_task_struct(sw->seen[i].task);
	kvfree(sw->seen);
	sw->seen = NULL;
	sw->nseen = 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Writing the sites                                                                        */
/* ---------------------------------------------------------------------------------------- */

/*
 * Before the stop: maps the page of every patch site a second time, writable, in one vmap
 * area, so that the writes inside the stop are plain stores. text_poke() switches to its
 * temporary mm and back for each write; under emulation each switch flushes the TLB, about
 * 28 µs per site in the lab. Each site gets two consecutive pages, its own and the next one
 * when the 5 bytes cross into it (its own again otherwise). Pages are found as text_poke()
 * finds them: vmalloc_to_page() for module text (the modules are pinned by now), the linear
 * address for vmlinux text. The alias exists from just before stop_machine to just after it
 * (tsplice_unmap_sites), while text_mutex keeps every other text writer out.
 */
static int tsplice_map_sites(struct tsplice_switch *sw)
{
	struct tsplice_update *u = sw->u;
	struct page **pages;
	unsigned int i;
	u8 *area;

	pages = kvmalloc_array(2 * u->nfuncs, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	for (i = 0; i < u->nfuncs; i++) {
		const struct tsplice_func *f = &u->funcs[i];
		unsigned long site = f->old_addr + f->site;
		bool crosses = offset_in_page(site) + TSPLICE_JMP_SIZE > PAGE_SIZE;
		struct page *page = NULL, *next = NULL;

		/*
		 * Only the site itself (which the scan lets pass) and, if the 5 bytes cross a
		 * page, the next page's start are ever in a variable here: other words inside the
		 * old function would linger on this task's stack and make it look busy.
		 */
		if (f->old_owner[0]) {
			page = vmalloc_to_page((void *)site);
			next = crosses ? vmalloc_to_page((void *)PAGE_ALIGN(site)) : page;
		} else if (virt_addr_valid(site)) {
			page = virt_to_page(site);	/* vmlinux text is physically contiguous */
			next = crosses ? nth_page(page, 1) : page;
		}
		if (!page || !next) {
			kvfree(pages);
			return -EFAULT;
		}
		pages[2 * i] = page;
		pages[2 * i + 1] = next;
	}
	area = vmap(pages, 2 * u->nfuncs, VM_MAP, PAGE_KERNEL);
	kvfree(pages);
	if (!area)
		return -ENOMEM;
	sw->alias_area = area;
	for (i = 0; i < u->nfuncs; i++)
		sw->alias[i] = area + 2 * i * PAGE_SIZE +
			       offset_in_page(u->funcs[i].old_addr + u->funcs[i].site);
	return 0;
}

/* After the stop: removes the alias, and flushes it from every TLB now rather than lazily. */
static void tsplice_unmap_sites(struct tsplice_switch *sw)
{
	if (!sw->alias_area)
		return;
	vunmap(sw->alias_area);
	vm_unmap_aliases();
	sw->alias_area = NULL;
}

/* Inside the stopped machine: the bytes around each site are still what was checked. */
static noinline int tsplice_recheck_bytes(struct tsplice_switch *sw)
{
	struct tsplice_update *u = sw->u;
	unsigned int i, j;

	for (i = 0; i < u->nfuncs; i++) {
		struct tsplice_func *f = &u->funcs[i];
		const u8 *code = (const u8 *)f->old_addr;
		unsigned int skip = f->fentry ? TSPLICE_FENTRY_SIZE : 0;

		if (sw->op == TS_OP_APPLY && tsplice_kprobe_at_site(f) >= 0) {
			sw->bad_func = i;
			sw->bad_kprobe = true;
			return -EILSEQ;
		}
		for (j = skip; j < f->expected_len; j++) {
			u8 want = f->expected[j];

			if (sw->op == TS_OP_UNDO && j >= f->site && j < f->site + TSPLICE_JMP_SIZE)
				want = f->jmp[j - f->site];
			if (code[j] != want) {
				sw->bad_func = i;
				memcpy(sw->bad_bytes, code, f->expected_len);
				return -EILSEQ;
			}
		}
	}
	return 0;
}

/*
 * Inside the stopped machine, after the scan and the byte re-check passed: the jmp (apply)
 * or the original bytes (undo) at each site, through the alias mapped before the stop, then
 * sync_core() so that this CPU too executes only the new bytes (the others serialize as they
 * leave the callback). With text_poke=Y, through text_poke() instead (a temporary writable
 * mapping: CR0.WP cannot be cleared on this kernel, CR pinning restores it).
 */
static noinline void tsplice_write_sites(struct tsplice_switch *sw)
{
	struct tsplice_update *u = sw->u;
	unsigned int i;

	for (i = 0; i < u->nfuncs; i++) {
		struct tsplice_func *f = &u->funcs[i];
		const u8 *bytes = sw->op == TS_OP_APPLY ? f->jmp : f->orig;

		if (sw->alias_area)
			memcpy(sw->alias[i], bytes, TSPLICE_JMP_SIZE);
		else
			ks.text_poke((void *)(f->old_addr + f->site), bytes, TSPLICE_JMP_SIZE);
	}
	if (sw->alias_area)
		sync_core();
}

/* ---------------------------------------------------------------------------------------- */
/* The stopped machine                                                                      */
/* ---------------------------------------------------------------------------------------- */

/*
 * The stop_machine callback, run on every online CPU with interrupts off. Each CPU records
 * its stopper's stack pointer and its entry time, then counts itself in. The last CPU to
 * arrive leads (as arm64's text patching does): every other CPU is already spinning here,
 * so it checks the tasks, re-checks the bytes and writes at once; the others spin until it
 * is done and then serialize (sync_core) so that none executes a stale copy of the patched
 * bytes. The pause is measured on the leader from its entry to its exit; how long the first
 * CPU had been spinning before the leader arrived (host scheduling, mostly) is wait_ns.
 */
static int tsplice_stop_fn(void *data)
{
	struct tsplice_switch *sw = data;
	unsigned int cpu = smp_processor_id(), i;
	u64 t0 = ktime_get_ns(), first = t0;
	int ret = 0;

	sw->cpu_sp[cpu] = current_stack_pointer;
	sw->cpu_task[cpu] = current;
	sw->cpu_entry_ns[cpu] = t0;
	/* Fully ordered: the leader sees every store made before each CPU's increment. */
	if (atomic_inc_return(&sw->entered) != sw->cpus) {
		while (!smp_load_acquire(&sw->done))
			cpu_relax();
		sync_core();
		return 0;
	}
	for (i = 0; i < nr_cpu_ids; i++)
		if (sw->cpu_task[i] && sw->cpu_entry_ns[i] < first)
			first = sw->cpu_entry_ns[i];
	sw->wait_ns = t0 - first;
	if (sw->op != TS_OP_MEASURE && tsplice_scan_tasks(sw))
		ret = -EBUSY;
	if (!ret && (sw->op == TS_OP_APPLY || sw->op == TS_OP_UNDO)) {
		ret = tsplice_recheck_bytes(sw);
		if (!ret)
			tsplice_write_sites(sw);
	}
	sw->result = ret;
	sw->pause_ns = ktime_get_ns() - t0;
	smp_store_release(&sw->done, 1);
	return ret;
}

/*
 * One run. Lock order as kprobes and ftrace use it: CPU hotplug read lock, then text_mutex
 * (so ftrace, kprobes, jump labels and static calls do not write text meanwhile), then
 * stop_machine_cpuslocked on all online CPUs. Between the two, with the system running: the
 * pre-scan of the tasks, then (apply, undo) the writable alias of the sites. The caller's
 * view of the whole stop_machine call is recorded beside the leader's pause.
 */
static int tsplice_run(struct tsplice_switch *sw)
{
	u64 t0;
	int ret = 0;

	atomic_set(&sw->entered, 0);
	sw->done = 0;
	sw->tasks = 0;
	sw->scanned = 0;
	sw->odd_sp = 0;
	sw->prescan_ns = 0;
	sw->wait_ns = 0;
	sw->pause_ns = 0;
	sw->call_ns = 0;
	sw->result = 0;
	sw->busy_range = -1;
	sw->bad_func = -1;
	sw->bad_kprobe = false;
	memset(sw->cpu_task, 0, nr_cpu_ids * sizeof(*sw->cpu_task));
	sw->caller = current;
	cpus_read_lock();
	if (sw->op != TS_OP_MEASURE)
		tsplice_prescan(sw);
	if ((sw->op == TS_OP_APPLY || sw->op == TS_OP_UNDO) && !tsplice_use_text_poke)
		ret = tsplice_map_sites(sw);
	if (ret) {
		sw->result = ret;	/* nothing was stopped */
		goto out;
	}
	mutex_lock(ks.text_mutex);
	sw->cpus = num_online_cpus();
	t0 = ktime_get_ns();
	ret = ks.stop_machine_cpuslocked(tsplice_stop_fn, sw, cpu_online_mask);
	sw->call_ns = ktime_get_ns() - t0;
	mutex_unlock(ks.text_mutex);
	tsplice_unmap_sites(sw);
	if (ret && !sw->result)
		sw->result = ret;	/* the machine was not stopped: nothing ran */
out:
	cpus_read_unlock();
	tsplice_prescan_release(sw);
	return sw->result;
}

/* ---------------------------------------------------------------------------------------- */
/* Commands                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* "busy: function F, task PID (COMM): SYMBOL+OFF/SIZE [MOD] is on its stack", after the run. */
static void tsplice_busy_message(struct tsplice_switch *sw, char *buf, size_t len)
{
	static const char *const where[] = {
		[TS_HIT_STACK] = "is on its stack",
		[TS_HIT_SAVED_IP] = "is its saved instruction pointer",
		[TS_HIT_GRAPH] = "is a return address the function-graph tracer keeps for it",
		[TS_HIT_RETHOOK] = "is a return address a kretprobe keeps for it",
	};
	const struct tsplice_range *r = &sw->ranges[sw->busy_range];
	const struct tsplice_func *f = &sw->u->funcs[r->func];

	if (sw->busy_source == TS_HIT_RETHOOK_MANY) {
		snprintf(buf, len, "busy: function %s, task %d (%s): more than %d kretprobe returns are pending for it, too many to check",
			 f->name, sw->busy_pid, sw->busy_comm, TSPLICE_MAX_RETHOOKS);
		return;
	}
	snprintf(buf, len, "busy: function %s, task %d (%s): %pS %s%s", f->name, sw->busy_pid,
		 sw->busy_comm, (void *)sw->busy_word, where[sw->busy_source],
		 r->new_code ? " (the new code)" : "");
}

/* Keeps a run's figures in the update, for status, whether it succeeded or not. */
static void tsplice_record(struct tsplice_update *u, struct tsplice_switch *sw, unsigned int attempts)
{
	u->attempts = attempts;
	u->pause_ns = sw->pause_ns;
	u->call_ns = sw->call_ns;
	u->wait_ns = sw->wait_ns;
	u->tasks = sw->tasks;
	u->scanned = sw->scanned;
	u->prescan_ns = sw->prescan_ns;
}

/*
 * The retry loop shared by apply and undo: a busy machine is retried @tries times, @retry_ms
 * apart, sleeping interruptibly so that a killed tool ends the wait; any other failure
 * (bytes changed underneath) ends it at once.
 */
static int tsplice_switch_with_retries(struct tsplice_switch *sw, struct tsplice_update *u,
				       unsigned int tries, unsigned int retry_ms, char *msg)
{
	unsigned int attempt;
	int ret;

	for (attempt = 1;; attempt++) {
		ret = tsplice_run(sw);
		tsplice_record(u, sw, attempt);
		if (ret != -EBUSY || attempt >= tries)
			break;
		if (msleep_interruptible(retry_ms) || signal_pending(current)) {
			snprintf(msg, TSPLICE_MSG_LEN, "interrupted by a signal after %u attempt(s)", attempt);
			return -EINTR;
		}
	}
	if (ret == -EBUSY) {
		char busy[TSPLICE_MSG_LEN / 2];

		tsplice_busy_message(sw, busy, sizeof(busy));
		snprintf(msg, TSPLICE_MSG_LEN, "%s; gave up after %u attempt(s) %u ms apart", busy,
			 attempt, retry_ms);
	} else if (ret == -ENOMEM || ret == -EFAULT) {
		snprintf(msg, TSPLICE_MSG_LEN, "cannot map the patch sites writable before the stop (%d)", ret);
	} else if (ret == -EILSEQ && sw->bad_kprobe) {
		const struct tsplice_func *f = &u->funcs[sw->bad_func];

		snprintf(msg, TSPLICE_MSG_LEN, "%s: a kprobe was registered where the jmp goes; remove the probe first",
			 f->name);
	} else if (ret == -EILSEQ) {
		const struct tsplice_func *f = &u->funcs[sw->bad_func];

		snprintf(msg, TSPLICE_MSG_LEN,
			 "bytes changed: function %s now holds %*phN at its entry, not what was %s",
			 f->name, f->expected_len, sw->bad_bytes,
			 sw->op == TS_OP_APPLY ? "staged" : "written by apply");
	}
	return ret;
}

/* Turns "reason" into "apply ID aborted: reason", the form every abort is reported in. */
static void tsplice_prefix(char *msg, const char *cmd, const char *id)
{
	char *why = kstrdup(msg, GFP_KERNEL);

	snprintf(msg, TSPLICE_MSG_LEN, "%s %s aborted: %s", cmd, id, why ?: "");
	kfree(why);
}

/*
 * `apply ID [TRIES [RETRY_MS]]`. Order of checks: state; for each function, not already
 * replaced by another applied update, the old and new symbols and owners as staged, the
 * running bytes as expected; module references; then stop_machine runs (scan, byte
 * re-check, write) until one succeeds or the tries are spent. Any failure leaves the kernel
 * as it was and the update staged, with the reason in status and dmesg.
 */
static int tsplice_apply(struct tsplice_update *u, unsigned int tries, unsigned int retry_ms, char *msg)
{
	struct tsplice_switch *sw = NULL;
	struct tsplice_update *other;
	unsigned int i;
	int ret;

	if (u->state == TS_APPLIED) {
		snprintf(msg, TSPLICE_MSG_LEN, "apply %s: already applied", u->id);
		return -EALREADY;
	}
	if (tsplice_owned_by_other(u)) {
		snprintf(msg, TSPLICE_MSG_LEN, "apply %s: being staged by pid %d", u->id, pid_vnr(u->owner));
		return -EBUSY;
	}
	/* Before the stop: the same checks as staging, so that failures here are cheap. */
	for (i = 0; i < u->nfuncs; i++) {
		struct tsplice_func *f = &u->funcs[i];
		char owner[MODULE_NAME_LEN];

		other = tsplice_patched_by(f->old_addr, u);
		if (other) {
			snprintf(msg, TSPLICE_MSG_LEN, "%s: already replaced by applied update %s", f->name,
				 other->id);
			ret = -EBUSY;
			goto fail;
		}
		ret = tsplice_check_code(f->name, false, f->old_addr, f->old_size, f->name, NULL, owner, msg);
		if (!ret && strcmp(owner, f->old_owner)) {
			snprintf(msg, TSPLICE_MSG_LEN, "%s: now in %s, staged in %s", f->name,
				 owner[0] ? owner : "vmlinux", f->old_owner[0] ? f->old_owner : "vmlinux");
			ret = -ESTALE;
		}
		if (!ret)
			ret = tsplice_check_code(f->name, true, f->new_addr, f->new_size, f->new_name, NULL,
						 owner, msg);
		if (!ret && strcmp(owner, f->new_owner)) {
			snprintf(msg, TSPLICE_MSG_LEN, "%s: its new code moved from %s to %s", f->name,
				 f->new_owner[0] ? f->new_owner : "vmlinux", owner[0] ? owner : "vmlinux");
			ret = -ESTALE;
		}
		if (!ret)
			ret = tsplice_check_bytes(f, msg);
		if (ret)
			goto fail;
	}
	sw = tsplice_switch_new(TS_OP_APPLY, u);
	if (!sw) {
		ret = -ENOMEM;
		snprintf(msg, TSPLICE_MSG_LEN, "out of memory");
		goto fail;
	}
	ret = tsplice_switch_with_retries(sw, u, tries, retry_ms, msg);
	if (ret)
		goto fail;
	u->state = TS_APPLIED;
	u->ever_applied = true;
	u->applied_at = ktime_get_real_seconds();
	u->error[0] = '\0';
	tsplice_applied++;
	snprintf(msg, TSPLICE_MSG_LEN,
		 "ok: applied %s: %u function(s) after %u attempt(s); pause %llu ns, stop_machine %llu ns, %u tasks checked (%u stacks read inside)",
		 u->id, u->nfuncs, u->attempts, u->pause_ns, u->call_ns, u->tasks, u->scanned);
	pr_info("%s\n", msg);
	tsplice_switch_free(sw);
	return 0;
fail:
	tsplice_prefix(msg, "apply", u->id);
	strscpy(u->error, msg, sizeof(u->error));
	pr_err("%s\n", msg);
	tsplice_switch_free(sw);
	return ret;
}

/*
 * `undo ID [TRIES [RETRY_MS]]`: the same machine stop, checking that no task is inside a new
 * function or an old one and that each site still holds our jmp, then restoring the
 * original bytes. The module references held since stage keep both sides in place, so no
 * symbol needs re-checking, and they stay after undo: the new code may still be reached
 * without a return address on any stack (a timer, an RCU callback, work, a notifier or an
 * open file's operations it registered), so its module goes only with `drop`.
 */
static int tsplice_undo(struct tsplice_update *u, unsigned int tries, unsigned int retry_ms, char *msg)
{
	struct tsplice_switch *sw;
	int ret;

	if (u->state != TS_APPLIED) {
		snprintf(msg, TSPLICE_MSG_LEN, "undo %s: not applied (%s)", u->id, tsplice_state_names[u->state]);
		return -EINVAL;
	}
	sw = tsplice_switch_new(TS_OP_UNDO, u);
	if (!sw) {
		snprintf(msg, TSPLICE_MSG_LEN, "undo %s: out of memory", u->id);
		return -ENOMEM;
	}
	ret = tsplice_switch_with_retries(sw, u, tries, retry_ms, msg);
	if (ret) {
		tsplice_prefix(msg, "undo", u->id);
		strscpy(u->error, msg, sizeof(u->error));
		pr_err("%s\n", msg);
		tsplice_switch_free(sw);
		return ret;
	}
	u->state = TS_REVERTED;
	u->error[0] = '\0';
	snprintf(msg, TSPLICE_MSG_LEN,
		 "ok: undid %s: %u function(s) after %u attempt(s); pause %llu ns, stop_machine %llu ns, %u tasks checked (%u stacks read inside)",
		 u->id, u->nfuncs, u->attempts, u->pause_ns, u->call_ns, u->tasks, u->scanned);
	pr_info("%s\n", msg);
	tsplice_switch_free(sw);
	tsplice_applied--;
	return 0;
}

/*
 * `measure` runs the same callback with no check and no write: the cost of stopping the
 * machine alone. `measure ID` adds the task check against ID's ranges (the ones apply, or
 * undo if applied, would check) and writes nothing: the cost of the stack check.
 */
static int tsplice_measure(struct tsplice_update *u, char *msg)
{
	struct tsplice_switch *sw = tsplice_switch_new(u ? TS_OP_SCAN : TS_OP_MEASURE, u);
	struct tsplice_measure *m = &tsplice_last_measure;
	int ret;

	if (!sw)
		return -ENOMEM;
	ret = tsplice_run(sw);
	m->valid = true;
	strscpy(m->kind, u ? "scan" : "empty", sizeof(m->kind));
	strscpy(m->id, u ? u->id : "-", sizeof(m->id));
	m->result = ret;
	m->tasks = sw->tasks;
	m->cpus = sw->cpus;
	m->pause_ns = sw->pause_ns;
	m->call_ns = sw->call_ns;
	m->wait_ns = sw->wait_ns;
	m->scanned = sw->scanned;
	m->prescan_ns = sw->prescan_ns;
	if (ret == -EBUSY) {
		char busy[TSPLICE_MSG_LEN / 2];

		tsplice_busy_message(sw, busy, sizeof(busy));
		snprintf(msg, TSPLICE_MSG_LEN, "ok: measure %s: pause %llu ns, stop_machine %llu ns, %u tasks checked; %s",
			 m->kind, m->pause_ns, m->call_ns, m->tasks, busy);
	} else {
		snprintf(msg, TSPLICE_MSG_LEN, "ok: measure %s: pause %llu ns, stop_machine %llu ns, %u tasks checked",
			 m->kind, m->pause_ns, m->call_ns, m->tasks);
	}
	pr_debug("%s\n", msg);
	tsplice_switch_free(sw);
	return 0;
}

/*
 * `drop ID [TRIES [RETRY_MS]]`: forgets a staged or reverted update and releases its module
 * references, after which its update module can be unloaded. An applied one must be undone
 * first; a staged one that another live process is staging is refused. An update that was
 * ever applied may have new code that a task is still in: drop then stops the machine and
 * checks every task against the update module's whole text (a task interrupted at a new
 * function's entry counts as inside: it would run it after the module went), retrying while
 * one is busy.
 * What no stack shows (a timer, an RCU callback, work, notifiers, file operations the new
 * code registered) cannot be checked here: the module is kept after undo for that reason,
 * and dropping it says the operator knows nothing refers to it (docs/core-module.md).
 */
static int tsplice_drop(struct tsplice_update *u, unsigned int tries, unsigned int retry_ms, char *msg)
{
	struct tsplice_switch *sw;
	int ret;

	if (u->state == TS_APPLIED) {
		snprintf(msg, TSPLICE_MSG_LEN, "drop %s: applied; undo it first", u->id);
		return -EBUSY;
	}
	if (tsplice_owned_by_other(u)) {
		snprintf(msg, TSPLICE_MSG_LEN, "drop %s: being staged by pid %d", u->id, pid_vnr(u->owner));
		return -EBUSY;
	}
	if (u->ever_applied) {
		sw = tsplice_switch_new(TS_OP_RELEASE, u);
		if (!sw) {
			snprintf(msg, TSPLICE_MSG_LEN, "drop %s: out of memory", u->id);
			return -ENOMEM;
		}
		ret = tsplice_switch_with_retries(sw, u, tries, retry_ms, msg);
		tsplice_switch_free(sw);
		if (ret) {
			tsplice_prefix(msg, "drop", u->id);
			strscpy(u->error, msg, sizeof(u->error));
			pr_err("%s\n", msg);
			return ret;
		}
	}
	snprintf(msg, TSPLICE_MSG_LEN, "ok: dropped %s", u->id);
	tsplice_update_free(u);
	return 0;
}

/* The optional TRIES and RETRY_MS of apply and undo, with the defaults 5 and 1000 ms. */
static int tsplice_parse_tries(int argc, char **argv, unsigned int *tries, unsigned int *retry_ms,
			       char *msg)
{
	*tries = TSPLICE_DEFAULT_TRIES;
	*retry_ms = TSPLICE_DEFAULT_RETRY_MS;
	if ((argc > 2 && (kstrtouint(argv[2], 0, tries) || *tries < 1 || *tries > 1000)) ||
	    (argc > 3 && (kstrtouint(argv[3], 0, retry_ms) || *retry_ms > 60000)) || argc > 4) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s: usage: %s ID [TRIES 1-1000 [RETRY_MS 0-60000]]",
			 argv[0], argv[0]);
		return -EINVAL;
	}
	return 0;
}

/* Runs one command line; @msg receives the result ("ok: ...") or the reason for refusing. */
static int tsplice_command(int argc, char **argv, char *msg)
{
	struct tsplice_update *u = NULL;
	unsigned int tries, retry_ms;
	int ret;

	if (argc == 0) {
		snprintf(msg, TSPLICE_MSG_LEN, "empty command");
		return -EINVAL;
	}
	if (!strcmp(argv[0], "stage")) {
		if (argc != 8) {
			snprintf(msg, TSPLICE_MSG_LEN,
				 "stage: usage: stage ID NAME OLD_ADDR OLD_SIZE NEW_ADDR NEW_SIZE EXPECTED_HEX");
			return -EINVAL;
		}
		return tsplice_stage(argv, msg);
	}
	if (!strcmp(argv[0], "measure") && argc == 1)
		return tsplice_measure(NULL, msg);
	if (strcmp(argv[0], "apply") && strcmp(argv[0], "undo") && strcmp(argv[0], "measure") &&
	    strcmp(argv[0], "drop")) {
		snprintf(msg, TSPLICE_MSG_LEN, "unknown command '%s' (stage, apply, undo, drop, measure)", argv[0]);
		return -EINVAL;
	}
	if (argc < 2 || !(u = tsplice_find(argv[1]))) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s: no update %s", argv[0], argc < 2 ? "given" : argv[1]);
		return -ENOENT;
	}
	if (!strcmp(argv[0], "measure"))
		return argc == 2 ? tsplice_measure(u, msg) : -EINVAL;
	ret = tsplice_parse_tries(argc, argv, &tries, &retry_ms, msg);
	if (ret)
		return ret;
	if (!strcmp(argv[0], "drop"))
		return tsplice_drop(u, tries, retry_ms, msg);
	if (!u->nfuncs) {
		snprintf(msg, TSPLICE_MSG_LEN, "%s %s: no function staged", argv[0], u->id);
		return -EINVAL;
	}
	if (!strcmp(argv[0], "apply"))
		return tsplice_apply(u, tries, retry_ms, msg);
	return tsplice_undo(u, tries, retry_ms, msg);
}

/* ---------------------------------------------------------------------------------------- */
/* /proc/tsplice                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* Asked at load, before every command, and shown in status: lockdown can start at runtime. */
static bool tsplice_locked_down(void)
{
	return security_locked_down(TSPLICE_LOCKDOWN_REASON) != 0;
}

/*
 * Who may command: an update is new kernel code, so loading one asks what loading a module
 * asks (CAP_SYS_MODULE, as finit_module does) besides CAP_SYS_ADMIN; both at open and at
 * each write, since an open file can be passed to a process with fewer capabilities.
 */
static bool tsplice_may_command(void)
{
	return capable(CAP_SYS_ADMIN) && capable(CAP_SYS_MODULE);
}

/* Root only (the file is 0600 too): each opener gets its own result buffer. */
static int tsplice_control_open(struct inode *inode, struct file *file)
{
	struct tsplice_fd *fd;

	if (!tsplice_may_command())
		return -EPERM;
	fd = kzalloc(sizeof(*fd), GFP_KERNEL);
	if (!fd)
		return -ENOMEM;
	file->private_data = fd;
	return 0;
}

/* Frees the opener's result buffer. */
static int tsplice_control_release(struct inode *inode, struct file *file)
{
	kfree(file->private_data);
	return 0;
}

/* One command per write; the return is the write's length or the command's errno. */
static ssize_t tsplice_control_write(struct file *file, const char __user *ubuf, size_t len, loff_t *ppos)
{
	struct tsplice_fd *fd = file->private_data;
	char *buf, **argv, *msg;
	int argc, ret;

	if (!tsplice_may_command())
		return -EPERM;
	if (len == 0 || len > TSPLICE_CMD_MAX)
		return -EINVAL;
	buf = memdup_user_nul(ubuf, len);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	msg = kzalloc(TSPLICE_MSG_LEN, GFP_KERNEL);
	argv = argv_split(GFP_KERNEL, strim(buf), &argc);
	if (!msg || !argv) {
		ret = -ENOMEM;
		goto out;
	}
	/*
	 * A reference for the whole command: rmmod of this module while a command runs (an apply
	 * waiting for a busy task) would otherwise go ahead, wait in the proc removal for the
	 * command to end, then forget the update it just applied. With the reference, rmmod fails.
	 */
	if (!try_module_get(THIS_MODULE)) {
		ret = -ENODEV;
		goto out;
	}
	ret = mutex_lock_killable(&tsplice_mutex);
	if (ret) {
		module_put(THIS_MODULE);
		goto out;
	}
	/*
	 * Locked down: nothing new may be staged or switched in, but undo and drop only restore
	 * the kernel's own bytes and take no address, so lockdown raised at runtime does not
	 * freeze an applied update in place.
	 */
	if (tsplice_locked_down() && !(argc && (!strcmp(argv[0], "undo") || !strcmp(argv[0], "drop")))) {
		snprintf(msg, TSPLICE_MSG_LEN, "refused: the kernel is locked down");
		pr_err("%s: %s\n", argc ? argv[0] : "command", msg);
		ret = -EPERM;
	} else if (READ_ONCE(*ks.modules_disabled) && argc &&
		   (!strcmp(argv[0], "stage") || !strcmp(argv[0], "apply"))) {
		/* No new code once module loading is off; undo and drop still take code away. */
		snprintf(msg, TSPLICE_MSG_LEN, "refused: module loading is disabled (kernel.modules_disabled=1)");
		pr_err("%s: %s\n", argv[0], msg);
		ret = -EPERM;
	} else {
		ret = tsplice_command(argc, argv, msg);
		if (ret && !msg[0])
			snprintf(msg, TSPLICE_MSG_LEN, "%s failed (%d)", argc ? argv[0] : "command", ret);
	}
	strscpy(fd->msg, msg, sizeof(fd->msg));
	mutex_unlock(&tsplice_mutex);
	module_put(THIS_MODULE);
out:
	if (argv)
		argv_free(argv);
	kfree(msg);
	kfree(buf);
	return ret ? ret : len;
}

/* The result of the last command written through this open file. */
static ssize_t tsplice_control_read(struct file *file, char __user *ubuf, size_t len, loff_t *ppos)
{
	struct tsplice_fd *fd = file->private_data;
	char *copy;
	ssize_t ret;
	size_t n;

	copy = kmalloc(TSPLICE_MSG_LEN + 1, GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	/* Killable: another opener's apply may hold the mutex for its retries. */
	if (mutex_lock_killable(&tsplice_mutex)) {
		kfree(copy);
		return -EINTR;
	}
	strscpy(copy, fd->msg, TSPLICE_MSG_LEN);
	mutex_unlock(&tsplice_mutex);
	n = strlen(copy);
	if (n)
		copy[n++] = '\n';
	ret = simple_read_from_buffer(ubuf, len, ppos, copy, n);
	kfree(copy);
	return ret;
}

/* An error is the rest of its status line: "-" for none, newlines flattened. */
static void tsplice_show_error(struct seq_file *m, const char *error)
{
	const char *p;

	if (!error[0]) {
		seq_puts(m, "-");
		return;
	}
	for (p = error; *p; p++)
		seq_putc(m, *p == '\n' ? ' ' : *p);
}

/*
 * The status, one record per line (see docs/core-module.md):
 *   tsplice-core 1 applied=N lockdown=yes|no
 *   measure kind=empty|scan id=ID|- result=ok|busy|error tasks=N cpus=N pause_ns=N call_ns=N wait_ns=N scanned=N prescan_ns=N
 *   update ID state=S owner=PID functions=N attempts=N applied_at=SECONDS pause_ns=N call_ns=N wait_ns=N tasks=N scanned=N prescan_ns=N error=TEXT|-
 * owner is the live process that staged the update, 0 once it has exited.
 *   function ID NAME old=0x.. old_size=N new=0x.. new_size=N new_name=NAME site=N fentry=0|1 owner=M|- new_owner=M|-
 */
static int tsplice_status_show(struct seq_file *m, void *v)
{
	const struct tsplice_measure *me = &tsplice_last_measure;
	struct tsplice_update *u;
	unsigned int i;
	int ret = mutex_lock_killable(&tsplice_mutex);

	if (ret)
		return ret;
	seq_printf(m, "tsplice-core 1 applied=%u lockdown=%s\n", tsplice_applied,
		   tsplice_locked_down() ? "yes" : "no");
	if (me->valid)
		seq_printf(m, "measure kind=%s id=%s result=%s tasks=%u cpus=%u pause_ns=%llu call_ns=%llu wait_ns=%llu scanned=%u prescan_ns=%llu\n",
			   me->kind, me->id, me->result == 0 ? "ok" : me->result == -EBUSY ? "busy" : "error",
			   me->tasks, me->cpus, me->pause_ns, me->call_ns, me->wait_ns, me->scanned,
			   me->prescan_ns);
	list_for_each_entry(u, &tsplice_updates, list) {
		seq_printf(m, "update %s state=%s owner=%d functions=%u attempts=%u applied_at=%lld pause_ns=%llu call_ns=%llu wait_ns=%llu tasks=%u scanned=%u prescan_ns=%llu error=",
			   u->id, tsplice_state_names[u->state],
			   u->owner && pid_has_task(u->owner, PIDTYPE_TGID) ? pid_vnr(u->owner) : 0,
			   u->nfuncs, u->attempts,
			   (long long)u->applied_at, u->pause_ns, u->call_ns, u->wait_ns, u->tasks,
			   u->scanned, u->prescan_ns);
		tsplice_show_error(m, u->error);
		seq_putc(m, '\n');
		for (i = 0; i < u->nfuncs; i++) {
			const struct tsplice_func *f = &u->funcs[i];

			seq_printf(m, "function %s %s old=0x%lx old_size=%lu new=0x%lx new_size=%lu new_name=%s site=%u fentry=%d owner=%s new_owner=%s\n",
				   u->id, f->name, f->old_addr, f->old_size, f->new_addr, f->new_size,
				   f->new_name, f->site, f->fentry, f->old_owner[0] ? f->old_owner : "-",
				   f->new_owner[0] ? f->new_owner : "-");
		}
	}
	mutex_unlock(&tsplice_mutex);
	return 0;
}

/* Root only: the status holds kernel addresses. */
static int tsplice_status_open(struct inode *inode, struct file *file)
{
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	return single_open(file, tsplice_status_show, NULL);
}

static const struct proc_ops tsplice_control_ops = {
	.proc_open = tsplice_control_open,
	.proc_read = tsplice_control_read,
	.proc_write = tsplice_control_write,
	.proc_lseek = default_llseek,
	.proc_release = tsplice_control_release,
};

static const struct proc_ops tsplice_status_ops = {
	.proc_open = tsplice_status_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
};

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
	if (!proc_create("control", 0600, tsplice_dir, &tsplice_control_ops) ||
	    !proc_create("status", 0600, tsplice_dir, &tsplice_status_ops)) {
		remove_proc_subtree("tsplice", NULL);
		return -ENOMEM;
	}
	pr_info("loaded: /proc/tsplice/control and /proc/tsplice/status; idle tasks through %s; %s\n",
		ks.idle_task ? "idle_task()" : "idle_threads",
		ks.put_task_stack ? "tasks pre-scanned before the stop" : "no put_task_stack: every task checked inside the stop");
	return 0;
}

/*
 * Unload: only possible with no update in the list (each holds a reference on this module,
 * and each command holds one while it runs), so there is nothing to forget.
 */
static void __exit tsplice_exit(void)
{
	remove_proc_subtree("tsplice", NULL);
	pr_info("unloaded\n");
}

module_init(tsplice_init);
module_exit(tsplice_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("tsplice: apply and undo function replacements in the running kernel");
