// SPDX-License-Identifier: GPL-2.0-only
/*
 * tsplice_core, what the module reports: /proc/tsplice/status (every update, its functions,
 * the last measurement and the last refused command, one record per line, read under
 * tsplice_mutex), and the reports commands build, a sentence for people and, for a refusal,
 * a reason name with key=value fields for programs.
 */
#include "tsplice.h"

/* The last refused command, whoever wrote it; guarded by tsplice_mutex. */
static struct {
	struct pid *pid;			/* the writer's process; NULL before any refusal */
	int err;
	char head[2 * TSPLICE_ID_LEN + 32];	/* " command=VERB id=ID", escaped */
	struct tsplice_report report;
} tsplice_refusal;

/*
 * Appends " KEY=VALUE" to the fields in @buf. Values are one word: a space, a control
 * character, a byte outside ASCII or a backslash is written as \xHH (a task's comm may hold
 * any of them). A value too long is cut, never inside an escape; a field whose key does not
 * fit is left out.
 */
static void tsplice_append(char *buf, size_t size, const char *key, const char *value)
{
	size_t n = strlen(buf);
	const unsigned char *p;

	if (n + strlen(key) + 2 >= size)
		return;
	n += scnprintf(buf + n, size - n, " %s=", key);
	for (p = (const unsigned char *)value; *p; p++) {
		bool plain = *p > ' ' && *p < 0x7f && *p != '\\';

		if (n + (plain ? 1 : 4) >= size)
			break;
		if (plain)
			buf[n++] = *p;
		else
			n += sprintf(buf + n, "\\x%02x", *p);
	}
	buf[n] = '\0';
}

/* The sentence of a report: the result line, or why the command was refused. */
void tsplice_say(struct tsplice_report *r, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, args);
	va_end(args);
}

/* A refusal: its stable name (a string literal; docs/core-module.md) and its sentence. */
void tsplice_refuse(struct tsplice_report *r, const char *reason, const char *fmt, ...)
{
	va_list args;

	r->reason = reason;
	va_start(args, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, args);
	va_end(args);
}

/*
 * One field of a refusal; the value is formatted, then escaped. Not for atomic context: a
 * run inside the stop records what it found, and the fields are written after it.
 */
void tsplice_field(struct tsplice_report *r, const char *key, const char *fmt, ...)
{
	va_list args;
	char *value;

	va_start(args, fmt);
	value = kvasprintf(GFP_KERNEL, fmt, args);
	va_end(args);
	if (value)
		tsplice_append(r->fields, sizeof(r->fields), key, value);
	kfree(value);
}

/* Forgets a report: no reason, no fields, no sentence. */
void tsplice_report_clear(struct tsplice_report *r)
{
	r->reason = NULL;
	r->fields[0] = '\0';
	r->text[0] = '\0';
}

/*
 * Keeps the last refused command for status: who wrote it, its errno, the command word and
 * the id it named, and its report. Called by the control file with tsplice_mutex held.
 */
void tsplice_note_refusal(int argc, char **argv, int err, const struct tsplice_report *r)
{
	put_pid(tsplice_refusal.pid);
	tsplice_refusal.pid = get_task_pid(current, PIDTYPE_TGID);
	tsplice_refusal.err = err;
	tsplice_refusal.head[0] = '\0';
	tsplice_append(tsplice_refusal.head, sizeof(tsplice_refusal.head), "command",
		       argc > 0 ? argv[0] : "-");
	tsplice_append(tsplice_refusal.head, sizeof(tsplice_refusal.head), "id",
		       argc > 1 ? argv[1] : "-");
	tsplice_refusal.report = *r;
}

/* At unload: drops the reference on the last refusal's writer. */
void tsplice_forget_refusal(void)
{
	put_pid(tsplice_refusal.pid);
	tsplice_refusal.pid = NULL;
}

/* A live process's pid as the reader sees it, 0 once it has exited. */
static pid_t tsplice_live_pid(struct pid *pid)
{
	return pid && pid_has_task(pid, PIDTYPE_TGID) ? pid_vnr(pid) : 0;
}

/*
 * The end of a record: for a refusal its reason and fields, then error= and the sentence,
 * which runs to the end of the line ("-" for none, newlines flattened).
 */
static void tsplice_show_report(struct seq_file *m, const struct tsplice_report *r)
{
	const char *p;

	if (!r->text[0]) {
		seq_puts(m, " error=-\n");
		return;
	}
	seq_printf(m, " reason=%s%s error=", r->reason ?: "failed", r->fields);
	for (p = r->text; *p; p++)
		seq_putc(m, *p == '\n' ? ' ' : *p);
	seq_putc(m, '\n');
}

/*
 * The status, one record per line (see docs/core-module.md):
 *   tsplice-core 1 applied=N lockdown=yes|no
 *   measure kind=empty|scan id=ID|- result=ok|busy|error tasks=N cpus=N pause_ns=N call_ns=N wait_ns=N scanned=N prescan_ns=N [reason=busy FIELDS]
 *   refusal pid=PID errno=N command=WORD id=ID|- reason=NAME FIELDS error=TEXT
 *   update ID state=S owner=PID functions=N attempts=N applied_at=SECONDS pause_ns=N call_ns=N wait_ns=N tasks=N scanned=N prescan_ns=N [reason=NAME FIELDS] error=TEXT|-
 *   function ID NAME old=0x.. old_size=N new=0x.. new_size=N new_name=NAME site=N fentry=0|1 owner=M|- new_owner=M|-
 *   part ID NAME module=M state=waiting|bound|refused old=0x..|0x0 loads=N pre_size=N new=0x.. pinned=0|1 [reason=NAME FIELDS] error=TEXT|-
 * owner and pid are live processes, 0 once they have exited.
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
	seq_printf(m, "shadow entries=%u\n", tsplice_shadow_count((unsigned long)-1));
	if (me->valid)
		seq_printf(m, "measure kind=%s id=%s result=%s tasks=%u cpus=%u pause_ns=%llu call_ns=%llu wait_ns=%llu scanned=%u prescan_ns=%llu%s%s\n",
			   me->kind, me->id, me->result == 0 ? "ok" : me->result == -EBUSY ? "busy" : "error",
			   me->tasks, me->cpus, me->pause_ns, me->call_ns, me->wait_ns, me->scanned,
			   me->prescan_ns, me->result == -EBUSY ? " reason=busy" : "",
			   me->result == -EBUSY ? me->fields : "");
	if (tsplice_refusal.pid) {
		seq_printf(m, "refusal pid=%d errno=%d%s", tsplice_live_pid(tsplice_refusal.pid),
			   -tsplice_refusal.err, tsplice_refusal.head);
		tsplice_show_report(m, &tsplice_refusal.report);
	}
	list_for_each_entry(u, &tsplice_updates, list) {
		seq_printf(m, "update %s state=%s owner=%d functions=%u attempts=%u applied_at=%lld pause_ns=%llu call_ns=%llu wait_ns=%llu tasks=%u scanned=%u prescan_ns=%llu",
			   u->id, tsplice_state_names[u->state], tsplice_live_pid(u->owner),
			   u->nfuncs, u->attempts,
			   (long long)u->applied_at, u->pause_ns, u->call_ns, u->wait_ns, u->tasks,
			   u->scanned, u->prescan_ns);
		tsplice_show_report(m, &u->error);
		for (i = 0; i < u->nfuncs; i++) {
			const struct tsplice_func *f = &u->funcs[i];

			seq_printf(m, "function %s %s old=0x%lx old_size=%lu new=0x%lx new_size=%lu new_name=%s site=%u fentry=%d owner=%s new_owner=%s\n",
				   u->id, f->name, f->old_addr, f->old_size, f->new_addr, f->new_size,
				   f->new_name, f->site, f->fentry, f->old_owner[0] ? f->old_owner : "-",
				   f->new_owner[0] ? f->new_owner : "-");
		}
		for (i = 0; i < u->nparts; i++) {
			const struct tsplice_part *p = &u->parts[i];

			seq_printf(m, "part %s %s module=%s state=%s old=0x%lx loads=%u pre_size=%lu new=0x%lx pinned=%d",
				   u->id, p->name, p->module, tsplice_part_state_names[p->state],
				   p->bound_addr, p->loads, p->pre_size, p->new_addr, p->pin_addr != 0);
			tsplice_show_report(m, &p->why);
		}
		for (i = 0; i < u->nhooks; i++) {
			const struct tsplice_hook *h = &u->hooks[i];

			seq_printf(m, "hook %s %s kind=%s addr=0x%lx runs=%u\n", u->id, h->name,
				   tsplice_hook_kind_names[h->kind], h->addr, h->runs);
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

const struct proc_ops tsplice_status_ops = {
	.proc_open = tsplice_status_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
};
