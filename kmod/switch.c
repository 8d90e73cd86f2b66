// SPDX-License-Identifier: GPL-2.0-only
/*
 * tsplice_core, one switch: the state of a stop_machine run (the ranges to check, sorted),
 * the writable alias of the patch sites mapped before the stop, the stop_machine callback
 * that checks the tasks, re-checks the bytes and writes, and the run around it with its locks.
 */
#include "tsplice.h"

/*
 * One of two switches that turn the pause-saving work back into the plain method, so that
 * both can be measured in one boot (bench/apply.ts; the other, prescan, is in taskcheck.c):
 * `text_poke=N` writes through the writable alias prepared before the stop (Y: one
 * text_poke() per site inside it). It changes how the sites are written, not what is checked.
 */
static bool tsplice_use_text_poke;
module_param_named(text_poke, tsplice_use_text_poke, bool, 0644);
MODULE_PARM_DESC(text_poke, "write each site with text_poke() inside stop_machine instead of through a writable alias mapped before it (default N)");

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
	for (i = 0; i < u->nparts && !mod; i++)
		mod = u->parts[i].new_mod;
	if (!mod)
		mod = tsplice_hooks_module(u);
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
struct tsplice_switch *tsplice_switch_new(enum tsplice_op op, struct tsplice_update *u)
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
	tsplice_switch_free(sw);
	return NULL;
}

/* Frees a run's state once the machine runs again; NULL is allowed. */
void tsplice_switch_free(struct tsplice_switch *sw)
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

	if (!u->nfuncs)
		return 0;	/* hooks alone: nothing to write */
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
		int probe = sw->op == TS_OP_APPLY ? tsplice_kprobe_at_site(f) : -1;

		if (probe >= 0) {
			sw->bad_func = i;
			sw->bad_at = probe;
			sw->bad_kprobe = true;
			return -EILSEQ;
		}
		for (j = skip; j < f->expected_len; j++) {
			u8 want = f->expected[j];

			if (sw->op == TS_OP_UNDO && j >= f->site && j < f->site + TSPLICE_JMP_SIZE)
				want = f->jmp[j - f->site];
			if (code[j] != want) {
				sw->bad_func = i;
				sw->bad_at = j;
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
			tsplice_ks.text_poke((void *)(f->old_addr + f->site), bytes, TSPLICE_JMP_SIZE);
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
		bool apply = sw->op == TS_OP_APPLY;

		ret = tsplice_recheck_bytes(sw);
		/* The author's checks see the machine as the task check left it; then the writes,
		 * then the author's changes to live data, before any task runs the new code. */
		if (!ret) {
			sw->hook_refused = tsplice_run_check_hooks(sw->u, apply ? TS_HOOK_CHECK_APPLY :
								   TS_HOOK_CHECK_REVERSE, &sw->hook_value);
			if (sw->hook_refused >= 0)
				ret = -ECANCELED;
		}
		if (!ret) {
			tsplice_write_sites(sw);
			tsplice_run_hooks(sw->u, apply ? TS_HOOK_APPLY : TS_HOOK_REVERSE);
		}
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
int tsplice_run(struct tsplice_switch *sw)
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
	sw->bad_at = -1;
	sw->bad_kprobe = false;
	sw->hook_refused = -1;
	sw->hook_value = 0;
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
	mutex_lock(tsplice_ks.text_mutex);
	sw->cpus = num_online_cpus();
	t0 = ktime_get_ns();
	ret = tsplice_ks.stop_machine_cpuslocked(tsplice_stop_fn, sw, cpu_online_mask);
	sw->call_ns = ktime_get_ns() - t0;
	mutex_unlock(tsplice_ks.text_mutex);
	tsplice_unmap_sites(sw);
	if (ret && !sw->result)
		sw->result = ret;	/* the machine was not stopped: nothing ran */
out:
	cpus_read_unlock();
	tsplice_prescan_release(sw);
	return sw->result;
}
