// SPDX-License-Identifier: GPL-2.0-only
/*
 * tsplice_core, /proc/tsplice/status: every update, its functions and the last measurement,
 * one record per line, read under tsplice_mutex.
 */
#include "tsplice.h"

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

const struct proc_ops tsplice_status_ops = {
	.proc_open = tsplice_status_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
};
