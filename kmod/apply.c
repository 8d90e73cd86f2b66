// SPDX-License-Identifier: GPL-2.0-only
/*
 * tsplice_core, the commands that switch: apply, undo, drop and measure. Each prepares a
 * switch (switch.c), runs it with its retries, and turns the outcome into the result line,
 * the update's recorded figures and error, and a line in the kernel log.
 */
#include "tsplice.h"

/* The figures of the last `measure`, for status; guarded by tsplice_mutex. */
struct tsplice_measure tsplice_last_measure;

/* Where the scan found the word, as the busy fields name it (source=). */
static const char *const tsplice_sources[] = {
	[TS_HIT_STACK] = "stack",
	[TS_HIT_SAVED_IP] = "saved-ip",
	[TS_HIT_GRAPH] = "graph",
	[TS_HIT_RETHOOK] = "rethook",
	[TS_HIT_RETHOOK_MANY] = "rethook-many",
};

/*
 * After a busy run: the sentence "busy: function F, task PID (COMM): SYMBOL+OFF/SIZE [MOD] is
 * on its stack" into @buf, and the same as fields into @r: reason=busy function= task= comm=
 * source=, then code=old|new symbol= module= (module only for module code), or limit= when
 * more kretprobe returns are pending than can be read.
 */
static void tsplice_busy_report(struct tsplice_switch *sw, struct tsplice_report *r, char *buf,
				size_t len)
{
	static const char *const where[] = {
		[TS_HIT_STACK] = "is on its stack",
		[TS_HIT_SAVED_IP] = "is its saved instruction pointer",
		[TS_HIT_GRAPH] = "is a return address the function-graph tracer keeps for it",
		[TS_HIT_RETHOOK] = "is a return address a kretprobe keeps for it",
	};
	const struct tsplice_range *range = &sw->ranges[sw->busy_range];
	/* An update of hooks alone has no function: its module's text is named by the first hook. */
	const char *fname = sw->u->nfuncs ? sw->u->funcs[range->func].name : sw->u->hooks[0].name;
	char *mod;

	r->reason = "busy";
	tsplice_field(r, "function", "%s", fname);
	tsplice_field(r, "task", "%d", sw->busy_pid);
	tsplice_field(r, "comm", "%s", sw->busy_comm);
	tsplice_field(r, "source", "%s", tsplice_sources[sw->busy_source]);
	if (sw->busy_source == TS_HIT_RETHOOK_MANY) {
		tsplice_field(r, "limit", "%d", TSPLICE_MAX_RETHOOKS);
		snprintf(buf, len, "busy: function %s, task %d (%s): more than %d kretprobe returns are pending for it, too many to check",
			 fname, sw->busy_pid, sw->busy_comm, TSPLICE_MAX_RETHOOKS);
		return;
	}
	snprintf(buf, len, "busy: function %s, task %d (%s): %pS %s%s", fname, sw->busy_pid,
		 sw->busy_comm, (void *)sw->busy_word, where[sw->busy_source],
		 range->new_code ? " (the new code)" : "");
	/* The symbol as %pS prints it, "name+0xoff/0xsize [module]", in two fields. */
	tsplice_field(r, "code", "%s", range->new_code ? "new" : "old");
	sprint_symbol(sw->sym.buf, sw->busy_word);
	mod = strstr(sw->sym.buf, " [");
	if (mod) {
		*mod = '\0';
		mod += 2;
		mod[strcspn(mod, "]")] = '\0';
	}
	tsplice_field(r, "symbol", "%s", sw->sym.buf);
	if (mod)
		tsplice_field(r, "module", "%s", mod);
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
 * Inside the stop the bytes at a site, or a kprobe there, were not what was checked before
 * it: the refusal (kprobe-at-site or bytes-changed), from what the run recorded.
 */
static void tsplice_changed_report(struct tsplice_switch *sw, struct tsplice_report *msg)
{
	const struct tsplice_func *f = &sw->u->funcs[sw->bad_func];
	u8 want[TSPLICE_MAX_EXPECTED];

	if (sw->bad_kprobe) {
		tsplice_refuse(msg, "kprobe-at-site",
			       "%s: a kprobe was registered where the jmp goes; remove the probe first",
			       f->name);
		tsplice_field(msg, "function", "%s", f->name);
		tsplice_field(msg, "offset", "%d", sw->bad_at);
		return;
	}
	tsplice_refuse(msg, "bytes-changed",
		       "bytes changed: function %s now holds %*phN at its entry, not what was %s",
		       f->name, f->expected_len, sw->bad_bytes,
		       sw->op == TS_OP_APPLY ? "staged" : "written by apply");
	/* What the run wanted: the staged bytes, with the jmp at the site for undo. */
	memcpy(want, f->expected, f->expected_len);
	if (sw->op == TS_OP_UNDO)
		memcpy(want + f->site, f->jmp, TSPLICE_JMP_SIZE);
	tsplice_field(msg, "function", "%s", f->name);
	tsplice_field(msg, "offset", "%d", sw->bad_at);
	tsplice_field(msg, "running", "%*phN", f->expected_len, sw->bad_bytes);
	tsplice_field(msg, "expected", "%*phN", f->expected_len, want);
}

/*
 * The retry loop shared by apply and undo: a busy machine is retried @tries times, @retry_ms
 * apart, sleeping interruptibly so that a killed tool ends the wait; any other failure
 * (bytes changed underneath) ends it at once.
 */
static int tsplice_switch_with_retries(struct tsplice_switch *sw, struct tsplice_update *u,
				       unsigned int tries, unsigned int retry_ms,
				       struct tsplice_report *msg)
{
	unsigned int attempt;
	int ret;

	for (attempt = 1;; attempt++) {
		ret = tsplice_run(sw);
		tsplice_record(u, sw, attempt);
		if (ret != -EBUSY || attempt >= tries)
			break;
		if (msleep_interruptible(retry_ms) || signal_pending(current)) {
			tsplice_refuse(msg, "interrupted", "interrupted by a signal after %u attempt(s)",
				       attempt);
			tsplice_field(msg, "attempts", "%u", attempt);
			return -EINTR;
		}
	}
	if (ret == -EBUSY) {
		char busy[TSPLICE_MSG_LEN / 2];

		tsplice_busy_report(sw, msg, busy, sizeof(busy));
		tsplice_say(msg, "%s; gave up after %u attempt(s) %u ms apart", busy, attempt, retry_ms);
		tsplice_field(msg, "attempts", "%u", attempt);
		tsplice_field(msg, "retry_ms", "%u", retry_ms);
	} else if (ret == -ENOMEM || ret == -EFAULT) {
		tsplice_refuse(msg, "map-failed",
			       "cannot map the patch sites writable before the stop (%d)", ret);
		tsplice_field(msg, "errno", "%d", -ret);
	} else if (ret == -EILSEQ) {
		tsplice_changed_report(sw, msg);
	} else if (ret == -ECANCELED) {
		const struct tsplice_hook *h = &u->hooks[sw->hook_refused];

		tsplice_refuse(msg, "hook-refused", "the %s hook %s returned %d", tsplice_hook_kind_names[h->kind],
			       h->name, sw->hook_value);
		tsplice_field(msg, "hook", "%s", h->name);
		tsplice_field(msg, "kind", "%s", tsplice_hook_kind_names[h->kind]);
		tsplice_field(msg, "value", "%d", sw->hook_value);
	} else if (ret) {
		tsplice_refuse(msg, "failed", "the machine could not be stopped (%d)", ret);
		tsplice_field(msg, "errno", "%d", -ret);
	}
	return ret;
}

/* Turns "reason" into "apply ID aborted: reason", the form every abort is reported in. */
static void tsplice_prefix(struct tsplice_report *msg, const char *cmd, const char *id)
{
	char *why = kstrdup(msg->text, GFP_KERNEL);

	tsplice_say(msg, "%s %s aborted: %s", cmd, id, why ?: "");
	kfree(why);
}

/*
 * Before apply's stop, for one function: the same checks as staging, so that failures here
 * are cheap. Not replaced by another applied update; the old and new symbols and owners as
 * staged; the running bytes as expected.
 */
static int tsplice_apply_check(struct tsplice_update *u, struct tsplice_func *f,
			       struct tsplice_report *msg)
{
	char owner[MODULE_NAME_LEN];
	bool is_new = false;
	int ret;

	if (tsplice_refuse_replaced(f, u, msg))
		return -EBUSY;
	ret = tsplice_check_code(f->name, false, f->old_addr, f->old_size, f->name, NULL, owner, msg);
	if (!ret && strcmp(owner, f->old_owner)) {
		tsplice_refuse(msg, "module-moved", "%s: now in %s, staged in %s", f->name,
			       owner[0] ? owner : "vmlinux", f->old_owner[0] ? f->old_owner : "vmlinux");
		ret = -ESTALE;
	}
	if (!ret) {
		is_new = true;
		ret = tsplice_check_code(f->name, true, f->new_addr, f->new_size, f->new_name, NULL,
					 owner, msg);
	}
	if (!ret && strcmp(owner, f->new_owner)) {
		tsplice_refuse(msg, "module-moved", "%s: its new code moved from %s to %s", f->name,
			       f->new_owner[0] ? f->new_owner : "vmlinux", owner[0] ? owner : "vmlinux");
		ret = -ESTALE;
	}
	if (ret == -ESTALE) {
		const char *staged = is_new ? f->new_owner : f->old_owner;

		tsplice_field(msg, "function", "%s", f->name);
		tsplice_field(msg, "code", "%s", is_new ? "new" : "old");
		tsplice_field(msg, "staged", "%s", staged[0] ? staged : "vmlinux");
		tsplice_field(msg, "now", "%s", owner[0] ? owner : "vmlinux");
	}
	if (!ret)
		ret = tsplice_check_bytes(f, msg);
	return ret;
}

/* The parts of @u that wait for their module to be loaded. */
static unsigned int tsplice_waiting(const struct tsplice_update *u)
{
	unsigned int i, n = 0;

	for (i = 0; i < u->nparts; i++)
		n += u->parts[i].state != TS_PART_BOUND;
	return n;
}

/*
 * `apply ID [TRIES [RETRY_MS]]`. Order of checks: state; for each function, not already
 * replaced by another applied update, the old and new symbols and owners as staged, the
 * running bytes as expected; module references; then the pre_apply hooks, and stop_machine
 * runs (scan, byte re-check, check hooks, write, apply hooks) until one succeeds, the tries
 * are spent or a check hook refuses; then the post_apply hooks, or on failure the fail_apply
 * ones. Any failure leaves the kernel as it was (as far as the author's fail hooks restore
 * what the pre hooks did) and the update staged, with the reason in status and dmesg.
 */
int tsplice_apply(struct tsplice_update *u, unsigned int tries, unsigned int retry_ms,
		  struct tsplice_report *msg)
{
	struct tsplice_switch *sw = NULL;
	unsigned int i;
	int ret;

	if (u->state == TS_APPLIED) {
		tsplice_refuse(msg, "already-applied", "apply %s: already applied", u->id);
		return -EALREADY;
	}
	if (tsplice_owned_by_other(u)) {
		tsplice_refuse(msg, "owned", "apply %s: being staged by pid %d", u->id,
			       pid_vnr(u->owner));
		tsplice_field(msg, "owner", "%d", pid_vnr(u->owner));
		return -EBUSY;
	}
	/* Functions of modules loaded now join the switch; the others wait for their module. */
	ret = tsplice_bind_loaded(u, msg);
	if (ret)
		goto fail;
	for (i = 0; i < u->nfuncs; i++) {
		ret = tsplice_apply_check(u, &u->funcs[i], msg);
		if (ret)
			goto fail;
	}
	/* From here an abort runs the fail hooks: the pre hooks may have changed something. */
	tsplice_run_hooks(u, TS_HOOK_PRE_APPLY);
	if (u->nfuncs || tsplice_has_hooks(u, TS_HOOK_CHECK_APPLY) || tsplice_has_hooks(u, TS_HOOK_APPLY)) {
		sw = tsplice_switch_new(TS_OP_APPLY, u);
		if (!sw) {
			ret = -ENOMEM;
			tsplice_refuse(msg, "no-memory", "out of memory");
			goto fail_hooks;
		}
		ret = tsplice_switch_with_retries(sw, u, tries, retry_ms, msg);
		if (ret)
			goto fail_hooks;
	}
	tsplice_run_hooks(u, TS_HOOK_POST_APPLY);
	u->state = TS_APPLIED;
	u->ever_applied = true;
	u->applied_at = ktime_get_real_seconds();
	tsplice_report_clear(&u->error);
	tsplice_applied++;
	tsplice_say(msg,
		    "ok: applied %s: %u function(s) after %u attempt(s); pause %llu ns, stop_machine %llu ns, %u tasks checked (%u stacks read inside); %u waiting for their module",
		    u->id, u->nfuncs, u->attempts, u->pause_ns, u->call_ns, u->tasks, u->scanned, tsplice_waiting(u));
	pr_info("%s\n", msg->text);
	tsplice_switch_free(sw);
	return 0;
fail_hooks:
	tsplice_run_hooks(u, TS_HOOK_FAIL_APPLY);
fail:
	tsplice_prefix(msg, "apply", u->id);
	u->error = *msg;
	pr_err("%s\n", msg->text);
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
int tsplice_undo(struct tsplice_update *u, unsigned int tries, unsigned int retry_ms,
		 struct tsplice_report *msg)
{
	struct tsplice_switch *sw;
	int ret;

	if (u->state != TS_APPLIED) {
		tsplice_refuse(msg, "not-applied", "undo %s: not applied (%s)", u->id,
			       tsplice_state_names[u->state]);
		tsplice_field(msg, "state", "%s", tsplice_state_names[u->state]);
		return -EINVAL;
	}
	if (!u->nfuncs && !u->nhooks) {
		/* Every part waits for its module: nothing is written, nothing runs the new code. */
		u->state = TS_REVERTED;
		tsplice_report_clear(&u->error);
		tsplice_say(msg, "ok: undid %s: no function was patched; %u waiting for their module forgotten",
			    u->id, u->nparts);
		pr_info("%s\n", msg->text);
		tsplice_applied--;
		return 0;
	}
	tsplice_run_hooks(u, TS_HOOK_PRE_REVERSE);
	sw = tsplice_switch_new(TS_OP_UNDO, u);
	if (!sw) {
		tsplice_refuse(msg, "no-memory", "undo %s: out of memory", u->id);
		tsplice_run_hooks(u, TS_HOOK_FAIL_REVERSE);
		return -ENOMEM;
	}
	ret = tsplice_switch_with_retries(sw, u, tries, retry_ms, msg);
	if (!ret)
		tsplice_run_hooks(u, TS_HOOK_POST_REVERSE);
	else
		tsplice_run_hooks(u, TS_HOOK_FAIL_REVERSE);
	if (ret) {
		tsplice_prefix(msg, "undo", u->id);
		u->error = *msg;
		pr_err("%s\n", msg->text);
		tsplice_switch_free(sw);
		return ret;
	}
	u->state = TS_REVERTED;
	tsplice_report_clear(&u->error);
	tsplice_say(msg,
		    "ok: undid %s: %u function(s) after %u attempt(s); pause %llu ns, stop_machine %llu ns, %u tasks checked (%u stacks read inside)",
		    u->id, u->nfuncs, u->attempts, u->pause_ns, u->call_ns, u->tasks, u->scanned);
	pr_info("%s\n", msg->text);
	tsplice_switch_free(sw);
	tsplice_applied--;
	return 0;
}

/*
 * `measure` runs the same callback with no check and no write: the cost of stopping the
 * machine alone. `measure ID` adds the task check against ID's ranges (the ones apply, or
 * undo if applied, would check) and writes nothing: the cost of the stack check.
 */
int tsplice_measure(struct tsplice_update *u, struct tsplice_report *msg)
{
	struct tsplice_switch *sw = tsplice_switch_new(u ? TS_OP_SCAN : TS_OP_MEASURE, u);
	struct tsplice_measure *m = &tsplice_last_measure;
	int ret;

	if (!sw) {
		tsplice_refuse(msg, "no-memory", "measure: out of memory");
		return -ENOMEM;
	}
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
	m->fields[0] = '\0';
	if (ret == -EBUSY) {
		char busy[TSPLICE_MSG_LEN / 2];

		/* Not a refusal: the busy task goes to status as the measurement's fields. */
		tsplice_busy_report(sw, msg, busy, sizeof(busy));
		strscpy(m->fields, msg->fields, sizeof(m->fields));
		tsplice_report_clear(msg);
		tsplice_say(msg, "ok: measure %s: pause %llu ns, stop_machine %llu ns, %u tasks checked; %s",
			    m->kind, m->pause_ns, m->call_ns, m->tasks, busy);
	} else {
		tsplice_say(msg, "ok: measure %s: pause %llu ns, stop_machine %llu ns, %u tasks checked",
			    m->kind, m->pause_ns, m->call_ns, m->tasks);
	}
	pr_debug("%s\n", msg->text);
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
int tsplice_drop(struct tsplice_update *u, unsigned int tries, unsigned int retry_ms,
		 struct tsplice_report *msg)
{
	struct tsplice_switch *sw;
	int ret;

	if (u->state == TS_APPLIED) {
		tsplice_refuse(msg, "still-applied", "drop %s: applied; undo it first", u->id);
		return -EBUSY;
	}
	if (tsplice_owned_by_other(u)) {
		tsplice_refuse(msg, "owned", "drop %s: being staged by pid %d", u->id,
			       pid_vnr(u->owner));
		tsplice_field(msg, "owner", "%d", pid_vnr(u->owner));
		return -EBUSY;
	}
	if (u->ever_applied) {
		sw = tsplice_switch_new(TS_OP_RELEASE, u);
		if (!sw) {
			tsplice_refuse(msg, "no-memory", "drop %s: out of memory", u->id);
			return -ENOMEM;
		}
		ret = tsplice_switch_with_retries(sw, u, tries, retry_ms, msg);
		tsplice_switch_free(sw);
		if (ret) {
			tsplice_prefix(msg, "drop", u->id);
			u->error = *msg;
			pr_err("%s\n", msg->text);
			return ret;
		}
	}
	tsplice_say(msg, "ok: dropped %s", u->id);
	tsplice_update_free(u);
	return 0;
}
