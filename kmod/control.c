// SPDX-License-Identifier: GPL-2.0-only
/*
 * tsplice_core, /proc/tsplice/control: who may command (capabilities, lockdown,
 * kernel.modules_disabled), one command per write(2) parsed and dispatched under
 * tsplice_mutex, and a read(2) that returns the result of the last command written through
 * the same open file.
 */
#include "tsplice.h"

/*
 * Every command is refused while the kernel is locked down. 6.1 has no lockdown reason for
 * live patching; the control file takes raw kernel addresses from user space the way unsafe
 * module parameters do, and that reason is at the integrity level, so `lockdown=integrity`
 * and `confidentiality` both refuse it.
 */
#define TSPLICE_LOCKDOWN_REASON	LOCKDOWN_MODULE_PARAMETERS

/* Per open control file: the result of the last command written through it. */
struct tsplice_fd {
	char msg[TSPLICE_MSG_LEN];
};

/* The optional TRIES and RETRY_MS of apply and undo, with the defaults 5 and 1000 ms. */
static int tsplice_parse_tries(int argc, char **argv, unsigned int *tries, unsigned int *retry_ms,
			       struct tsplice_report *msg)
{
	*tries = TSPLICE_DEFAULT_TRIES;
	*retry_ms = TSPLICE_DEFAULT_RETRY_MS;
	if ((argc > 2 && (kstrtouint(argv[2], 0, tries) || *tries < 1 || *tries > 1000)) ||
	    (argc > 3 && (kstrtouint(argv[3], 0, retry_ms) || *retry_ms > 60000)) || argc > 4) {
		tsplice_refuse(msg, "usage", "%s: usage: %s ID [TRIES 1-1000 [RETRY_MS 0-60000]]",
			       argv[0], argv[0]);
		return -EINVAL;
	}
	return 0;
}

/* Runs one command line; @msg receives the result ("ok: ...") or the reason for refusing. */
static int tsplice_command(int argc, char **argv, struct tsplice_report *msg)
{
	struct tsplice_update *u = NULL;
	unsigned int tries, retry_ms;
	int ret;

	if (argc == 0) {
		tsplice_refuse(msg, "usage", "empty command");
		return -EINVAL;
	}
	if (!strcmp(argv[0], "stage"))
		return tsplice_stage(argc, argv, msg);
	if (!strcmp(argv[0], "part"))
		return tsplice_part_command(argc, argv, msg);
	if (!strcmp(argv[0], "late"))
		return tsplice_late_command(argc, argv, msg);
	if (!strcmp(argv[0], "hook"))
		return tsplice_hook_command(argc, argv, msg);
	if (!strcmp(argv[0], "empty"))
		return tsplice_empty_command(argc, argv, msg);
	if (!strcmp(argv[0], "measure") && argc == 1)
		return tsplice_measure(NULL, msg);
	if (strcmp(argv[0], "apply") && strcmp(argv[0], "undo") && strcmp(argv[0], "measure") &&
	    strcmp(argv[0], "drop")) {
		tsplice_refuse(msg, "usage", "unknown command '%s' (stage, part, late, hook, empty, apply, undo, drop, measure)",
			       argv[0]);
		return -EINVAL;
	}
	if (argc < 2 || !(u = tsplice_find(argv[1]))) {
		tsplice_refuse(msg, argc < 2 ? "usage" : "no-update", "%s: no update %s", argv[0],
			       argc < 2 ? "given" : argv[1]);
		return -ENOENT;
	}
	if (!strcmp(argv[0], "measure") && argc == 2)
		return tsplice_measure(u, msg);
	if (!strcmp(argv[0], "measure")) {
		tsplice_refuse(msg, "usage", "measure: usage: measure [ID]");
		return -EINVAL;
	}
	ret = tsplice_parse_tries(argc, argv, &tries, &retry_ms, msg);
	if (ret)
		return ret;
	if (!strcmp(argv[0], "drop"))
		return tsplice_drop(u, tries, retry_ms, msg);
	if (!u->nfuncs && !u->nparts && !u->nhooks && !u->empty) {
		tsplice_refuse(msg, "no-functions", "%s %s: no function or hook staged", argv[0], u->id);
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
bool tsplice_locked_down(void)
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
	struct tsplice_report *msg;
	char *buf, **argv;
	int argc, ret;

	if (!tsplice_may_command())
		return -EPERM;
	/* A `part` carries a function's whole pre code; every other command is short. */
	if (len == 0 || len > TSPLICE_CMD_BIG)
		return -EINVAL;
	buf = kvmalloc(len + 1, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	if (copy_from_user(buf, ubuf, len)) {
		kvfree(buf);
		return -EFAULT;
	}
	buf[len] = '\0';
	msg = kzalloc(sizeof(*msg), GFP_KERNEL);
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
		tsplice_refuse(msg, "locked-down", "refused: the kernel is locked down");
		pr_err("%s: %s\n", argc ? argv[0] : "command", msg->text);
		ret = -EPERM;
	} else if (READ_ONCE(*tsplice_ks.modules_disabled) && argc &&
		   (!strcmp(argv[0], "stage") || !strcmp(argv[0], "part") || !strcmp(argv[0], "late") ||
		    !strcmp(argv[0], "hook") || !strcmp(argv[0], "empty") ||
		    !strcmp(argv[0], "apply"))) {
		/* No new code once module loading is off; undo and drop still take code away. */
		tsplice_refuse(msg, "modules-disabled",
			       "refused: module loading is disabled (kernel.modules_disabled=1)");
		pr_err("%s: %s\n", argv[0], msg->text);
		ret = -EPERM;
	} else {
		ret = tsplice_command(argc, argv, msg);
		if (ret && !msg->text[0])
			tsplice_say(msg, "%s failed (%d)", argc ? argv[0] : "command", ret);
	}
	/* Every refusal has a name in status, the rare ones without their own too. */
	if (ret && !msg->reason)
		msg->reason = ret == -ENOMEM ? "no-memory" : "failed";
	if (ret)
		tsplice_note_refusal(argc, argv, ret, msg);
	strscpy(fd->msg, msg->text, sizeof(fd->msg));
	mutex_unlock(&tsplice_mutex);
	module_put(THIS_MODULE);
out:
	if (argv)
		argv_free(argv);
	kfree(msg);
	kvfree(buf);
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

const struct proc_ops tsplice_control_ops = {
	.proc_open = tsplice_control_open,
	.proc_read = tsplice_control_read,
	.proc_write = tsplice_control_write,
	.proc_lseek = default_llseek,
	.proc_release = tsplice_control_release,
};
