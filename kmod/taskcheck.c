// SPDX-License-Identifier: GPL-2.0-only
/*
 * tsplice_core, the task check: whether any task may be inside the code a switch changes.
 * The stack scan and its fast word test, the return addresses kept off the stack (the
 * function-graph tracer's ret_stack, kretprobes' rethooks), the unwinder's confirmation of an
 * interrupted task, and the pre-scan that checks most tasks before the machine is stopped.
 */
#include "tsplice.h"

/*
 * One of two switches that turn the pause-saving work back into the plain method, so that
 * both can be measured in one boot (bench/apply.ts; the other, text_poke, is in switch.c):
 * `prescan` checks every task before the stop and reads inside it only the stacks of tasks
 * that may have run since (N: every stack inside). It changes when tasks are checked, not what.
 */
static bool tsplice_prescan_enabled = true;
module_param_named(prescan, tsplice_prescan_enabled, bool, 0644);
MODULE_PARM_DESC(prescan, "check task stacks before stop_machine and re-check inside only tasks that ran since (default Y)");

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

	if (!tsplice_ks.stack_trace_save_tsk)
		return true;
	n = tsplice_ks.stack_trace_save_tsk(t, sw->trace, ARRAY_SIZE(sw->trace), 0);
	for (i = 0; i < n; i++)
		if (sw->trace[i] == ip)
			return true;
	return n == ARRAY_SIZE(sw->trace);
}

/*
 * Inside the stop, for a task switched out: whether livepatch's reliable unwinder proves that
 * the stack word @w is no return address of @t. A live frame keeps stale slots (uninitialized
 * locals, padding); a timer interrupt taken in user mode runs on the task's own stack, so a
 * task that mostly runs in user space carries words of the timer code in slots its later
 * syscalls never write (the hrtimer fix was busy for good that way). The reliable unwinder
 * follows the ORC data frame by frame and fails (any error: an interrupt frame in the kernel,
 * an unknown frame, a full buffer) rather than skip one; only a trace it vouches for, without
 * @w, clears the word. Without the unwinder the word stands (busy).
 */
static bool tsplice_reliably_not_frame(struct tsplice_switch *sw, struct task_struct *t,
				       unsigned long w)
{
	int i, n;

	if (!tsplice_ks.stack_trace_save_tsk_reliable)
		return false;
	n = tsplice_ks.stack_trace_save_tsk_reliable(t, sw->trace, ARRAY_SIZE(sw->trace));
	if (n < 0 || n >= (int)ARRAY_SIZE(sw->trace))
		return false;
	for (i = 0; i < n; i++)
		if (sw->trace[i] == w)
			return false;
	return true;
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
		if (confirm && !running && tsplice_reliably_not_frame(sw, t, w))
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
noinline bool tsplice_scan_tasks(struct tsplice_switch *sw)
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
	tsplice_ks.put_task_stack(t);
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
void tsplice_prescan(struct tsplice_switch *sw)
{
	struct task_struct *g, *t;
	unsigned int n = 0, cpu;
	u64 t0 = ktime_get_ns();

	if (!tsplice_prescan_enabled || !tsplice_ks.put_task_stack)
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
void tsplice_prescan_release(struct tsplice_switch *sw)
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
