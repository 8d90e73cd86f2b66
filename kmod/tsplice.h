/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the files of the tsplice_core module share: the sizes, the records of an update and of
 * one stop_machine run, and, one section per file, what each file offers the others.
 *
 *   core.c       load and unload, the kernel internals found by name, the update list and
 *                its mutex
 *   stage.c      `stage`: every check of a function before any stop, the module references
 *   taskcheck.c  whether a task is inside the code a switch changes: the stack scan, the
 *                return addresses kept off the stack, the pre-scan
 *   switch.c     one stop_machine run: its state, the writable alias of the sites, the writes
 *   apply.c      apply, undo, drop and measure: runs with their retries and their messages
 *   control.c    /proc/tsplice/control: who may write, command parsing, lockdown
 *   status.c     /proc/tsplice/status, and the reports commands build: a sentence, and for a
 *                refusal a reason name with key=value fields
 *   late.c       functions of loadable modules: `part`, `late`, and the module notifier that
 *                binds them when their module comes and forgets them when it goes
 *   hooks.c      `hook`: the patch author's functions run around and inside the switch
 *   shadow.c     shadow data, exported to update modules (<linux/tsplice.h>)
 */
#ifndef TSPLICE_H
#define TSPLICE_H

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
#define TSPLICE_FIELDS_LEN	512
#define TSPLICE_CMD_MAX		2048
#define TSPLICE_DEFAULT_TRIES	5
#define TSPLICE_DEFAULT_RETRY_MS 1000
#define TSPLICE_MAX_RETHOOKS	1024		/* pending kretprobe returns read per task */
#define TSPLICE_MAX_PRE		(48 * 1024)	/* pre code of a module's function, compared at load */
#define TSPLICE_MAX_PARTS	1024
#define TSPLICE_MAX_LATE	8192
#define TSPLICE_MAX_HOOKS	256
#define TSPLICE_CMD_BIG		(2 * TSPLICE_MAX_PRE + 4096)	/* a `part` command: pre code in hex and its mask */

/*
 * What a command reports: a sentence for people (the control file's read, the kernel log, the
 * status's error=) and, when it refuses, a stable reason name with key=value fields for
 * programs (the status; docs/core-module.md lists them). Built with tsplice_refuse,
 * tsplice_field and tsplice_say (status.c).
 */
struct tsplice_report {
	const char *reason;			/* a literal: "busy", "too-short"...; NULL if none */
	char fields[TSPLICE_FIELDS_LEN];	/* " key=value" words, values escaped */
	char text[TSPLICE_MSG_LEN];		/* "ok: ..." or why it was refused */
};

/* Kernel internals that modules may not link against, found by name once at load (core.c). */
struct tsplice_ks {
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
	struct module *(*find_module)(const char *name);	/* with preemption disabled */
	struct module *(*module_address)(unsigned long addr);
	unsigned int (*stack_trace_save_tsk)(struct task_struct *t, unsigned long *store,
					     unsigned int size, unsigned int skipnr);
	/* livepatch's unwinder: a trace, or an error when the stack cannot be trusted */
	int (*stack_trace_save_tsk_reliable)(struct task_struct *t, unsigned long *store,
					     unsigned int size);
};

extern struct tsplice_ks tsplice_ks;

enum tsplice_state { TS_STAGED, TS_APPLIED, TS_REVERTED };

extern const char *const tsplice_state_names[];

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
	bool bound;				/* made from a part (late.c): no reference on old_mod */
};

/*
 * A function of a loadable module (late.c). It is bound to the module's running copy each time
 * the module is live: at apply when it is loaded then, at MODULE_STATE_COMING when it is loaded
 * later; binding proves the copy against the pre code outside @mask, writes the update's late
 * relocations for the module and adds a tsplice_func (bound). At MODULE_STATE_GOING that
 * function is forgotten and the part waits again.
 */
enum tsplice_part_state { TS_PART_WAITING, TS_PART_BOUND, TS_PART_REFUSED };

struct tsplice_part {
	char name[KSYM_NAME_LEN];
	char module[MODULE_NAME_LEN];
	char new_name[KSYM_NAME_LEN];
	char new_owner[MODULE_NAME_LEN];
	unsigned long new_addr, new_size;
	struct module *new_mod;			/* the update module, held from `part` to drop */
	u8 *pre;				/* the pre code, pre_size bytes */
	u8 *mask;				/* 1 where the running copy may differ (relocated, rewritten) */
	unsigned long pre_size;
	enum tsplice_part_state state;
	unsigned long bound_addr;		/* the running function while bound, else 0 */
	unsigned long pin_addr;			/* pinned: bind only the copy running here, kept loaded */
	unsigned int loads;			/* times bound */
	struct tsplice_report why;		/* why refused, reason NULL otherwise */
};

/* How a late relocation's field is computed (x86-64 psABI). */
enum tsplice_late_type { TS_LATE_PC32, TS_LATE_32S, TS_LATE_64 };

/*
 * A relocation of the new code that names something of a loadable module, written each time
 * that module's parts are bound (the module may be loaded at another address each time).
 */
struct tsplice_late {
	char module[MODULE_NAME_LEN];		/* whose parts bind it */
	char target[MODULE_NAME_LEN];		/* the module defining @symbol: @module or a dependency */
	char symbol[KSYM_NAME_LEN];
	unsigned long field;			/* in the update module */
	long addend;
	enum tsplice_late_type type;
};

/* The kinds of hooks (<linux/tsplice.h>); hooks.c says when each runs. */
enum tsplice_hook_kind {
	TS_HOOK_PRE_APPLY, TS_HOOK_CHECK_APPLY, TS_HOOK_APPLY, TS_HOOK_POST_APPLY, TS_HOOK_FAIL_APPLY,
	TS_HOOK_PRE_REVERSE, TS_HOOK_CHECK_REVERSE, TS_HOOK_REVERSE, TS_HOOK_POST_REVERSE,
	TS_HOOK_FAIL_REVERSE,
	TS_HOOK_KINDS
};

/* A hook: a function of the update module, run by the core module at its time. */
struct tsplice_hook {
	enum tsplice_hook_kind kind;
	char name[KSYM_NAME_LEN];
	unsigned long addr;
	struct module *mod;			/* the update module, held from `hook` to drop */
	unsigned int runs;			/* times it ran */
};

struct tsplice_update {
	struct list_head list;
	char id[TSPLICE_ID_LEN];
	enum tsplice_state state;
	struct pid *owner;			/* the process that staged it (thread group) */
	bool ever_applied;			/* its new code may have run: drop checks the tasks */
	struct tsplice_func *funcs;
	unsigned int nfuncs;
	struct tsplice_part *parts;		/* functions of loadable modules (late.c) */
	unsigned int nparts;
	struct tsplice_late *lates;
	unsigned int nlates;
	struct tsplice_hook *hooks;		/* in the order given (hooks.c) */
	unsigned int nhooks;
	bool empty;				/* staged with `empty`: nothing to switch (hooks.c) */
	time64_t applied_at;			/* wall clock seconds of the last apply, 0 if none */
	unsigned int attempts;			/* stop_machine runs of the last apply or undo */
	u64 pause_ns, call_ns, wait_ns;		/* of the last successful or last tried switch */
	unsigned int tasks;			/* tasks checked in that switch */
	unsigned int scanned;			/* ... of which stacks read inside the stop */
	u64 prescan_ns;				/* the check before the stop, 0 if none */
	struct tsplice_report error;		/* why the last command on it failed; text "" if none */
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
	int bad_at;				/* ... the offset from its entry where it differs */
	bool bad_kprobe;			/* ... because a kprobe was registered there */
	int hook_refused;			/* the check hook that returned non-zero, or -1 */
	int hook_value;				/* ... and what it returned */
	u8 bad_bytes[TSPLICE_MAX_EXPECTED];
};

struct tsplice_measure {
	bool valid;
	char kind[8];
	char id[TSPLICE_ID_LEN];
	int result;
	unsigned int tasks, cpus, scanned;
	u64 pause_ns, call_ns, wait_ns, prescan_ns;
	char fields[TSPLICE_FIELDS_LEN];	/* of the busy task when result is -EBUSY */
};

/* Where the scan found a word in a checked range. */
enum tsplice_hit_source {
	TS_HIT_STACK,		/* a word on the live part of the stack */
	TS_HIT_SAVED_IP,	/* the saved instruction pointer of a task switched out */
	TS_HIT_GRAPH,		/* a return address the function-graph tracer keeps */
	TS_HIT_RETHOOK,		/* a return address a kretprobe (rethook) keeps */
	TS_HIT_RETHOOK_MANY,	/* more pending kretprobe returns than can be read */
};

/* core.c: the update list, guarded by tsplice_mutex (the lock rules are beside it) */
extern struct mutex tsplice_mutex;
extern struct list_head tsplice_updates;
extern unsigned int tsplice_applied;
struct task_struct *tsplice_idle_task(int cpu);
int tsplice_symbol_at(unsigned long addr, struct tsplice_sym *s);
struct tsplice_update *tsplice_find(const char *id);
struct tsplice_update *tsplice_patched_by(unsigned long old_addr, struct tsplice_update *self);
struct tsplice_update *tsplice_update_new(const char *id);
void tsplice_update_free(struct tsplice_update *u);

/* stage.c */
int tsplice_stage(int argc, char **argv, struct tsplice_report *msg);
int tsplice_check_code(const char *fname, bool is_new, unsigned long addr, unsigned long size,
		       const char *want, char *name_out, char *owner_out,
		       struct tsplice_report *msg);
int tsplice_kprobe_at_site(const struct tsplice_func *f);
bool tsplice_refuse_replaced(const struct tsplice_func *f, struct tsplice_update *self,
			     struct tsplice_report *msg);
int tsplice_check_bytes(const struct tsplice_func *f, struct tsplice_report *msg);
bool tsplice_owned_by_other(const struct tsplice_update *u);
void tsplice_put_func_modules(struct tsplice_func *f);
bool tsplice_valid_id(const char *id);
int tsplice_get_module(unsigned long addr, const char *owner, struct module **out);
int tsplice_stage_fentry(struct tsplice_func *f, struct tsplice_report *msg);
int tsplice_stage_jmp(struct tsplice_func *f, struct tsplice_report *msg);
int tsplice_add_func(struct tsplice_update *u, const struct tsplice_func *f);

/* late.c: functions of loadable modules, bound when their module is live */
extern const char *const tsplice_part_state_names[];
int tsplice_part_command(int argc, char **argv, struct tsplice_report *msg);
int tsplice_late_command(int argc, char **argv, struct tsplice_report *msg);
int tsplice_bind_loaded(struct tsplice_update *u, struct tsplice_report *msg);
void tsplice_free_parts(struct tsplice_update *u);
int tsplice_late_init(void);
void tsplice_late_exit(void);

/* hooks.c: the patch author's functions */
extern const char *const tsplice_hook_kind_names[];
int tsplice_hook_command(int argc, char **argv, struct tsplice_report *msg);
int tsplice_empty_command(int argc, char **argv, struct tsplice_report *msg);
bool tsplice_has_hooks(const struct tsplice_update *u, enum tsplice_hook_kind kind);
void tsplice_run_hooks(struct tsplice_update *u, enum tsplice_hook_kind kind);
int tsplice_run_check_hooks(struct tsplice_update *u, enum tsplice_hook_kind kind, int *value);
void tsplice_free_hooks(struct tsplice_update *u);
struct module *tsplice_hooks_module(const struct tsplice_update *u);

/* shadow.c: shadow data (the API is in include/linux/tsplice.h) */
unsigned int tsplice_shadow_count(unsigned long id);
void tsplice_shadow_exit(void);

/* taskcheck.c */
bool tsplice_scan_tasks(struct tsplice_switch *sw);
void tsplice_prescan(struct tsplice_switch *sw);
void tsplice_prescan_release(struct tsplice_switch *sw);

/* switch.c */
struct tsplice_switch *tsplice_switch_new(enum tsplice_op op, struct tsplice_update *u);
void tsplice_switch_free(struct tsplice_switch *sw);
int tsplice_run(struct tsplice_switch *sw);

/* apply.c */
extern struct tsplice_measure tsplice_last_measure;
int tsplice_apply(struct tsplice_update *u, unsigned int tries, unsigned int retry_ms,
		  struct tsplice_report *msg);
int tsplice_undo(struct tsplice_update *u, unsigned int tries, unsigned int retry_ms,
		 struct tsplice_report *msg);
int tsplice_measure(struct tsplice_update *u, struct tsplice_report *msg);
int tsplice_drop(struct tsplice_update *u, unsigned int tries, unsigned int retry_ms,
		 struct tsplice_report *msg);

/* control.c */
extern const struct proc_ops tsplice_control_ops;
bool tsplice_locked_down(void);

/* status.c: the reports and the status file */
extern const struct proc_ops tsplice_status_ops;
void tsplice_say(struct tsplice_report *r, const char *fmt, ...) __printf(2, 3);
void tsplice_refuse(struct tsplice_report *r, const char *reason, const char *fmt, ...)
	__printf(3, 4);
void tsplice_field(struct tsplice_report *r, const char *key, const char *fmt, ...) __printf(3, 4);
void tsplice_report_clear(struct tsplice_report *r);
void tsplice_note_refusal(int argc, char **argv, int err, const struct tsplice_report *r);
void tsplice_forget_refusal(void);

#endif /* TSPLICE_H */
