// SPDX-License-Identifier: GPL-2.0-only
/*
 * tsplice_target: a module for the core module's lab test only; never part of an update.
 *
 *   /proc/tsplice_target/value  reads "value N\n", N from target_show_value();
 *   /proc/tsplice_target/sleep  writing "wait" blocks the writer in target_wait() until
 *                               "release" is written (or a signal arrives); reading it
 *                               gives "waiters N\n".
 *
 * target_short() is a function too short for a jmp after its __fentry__ nop (7 bytes).
 */
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/atomic.h>

static int target_value = 1111;
static DECLARE_WAIT_QUEUE_HEAD(target_wq);
static unsigned int target_generation;
static atomic_t target_waiters = ATOMIC_INIT(0);
static struct proc_dir_entry *target_dir;

int target_show_value(void);
void target_wait(void);
void target_short(void);

/* The function an update replaces; reads a variable so no caller can fold its result. */
noinline int target_show_value(void)
{
	return READ_ONCE(target_value);
}

/* Where a writer of "wait" sleeps: its return address into this function stays on its stack. */
noinline void target_wait(void)
{
	unsigned int generation = READ_ONCE(target_generation);

	atomic_inc(&target_waiters);
	wait_event_interruptible(target_wq, READ_ONCE(target_generation) != generation);
	atomic_dec(&target_waiters);
}

/* __fentry__ nop (5 bytes) + ud2 (2 bytes): too short for the 5-byte jmp after the nop. */
noinline void __noreturn target_short(void)
{
	BUG();
}

static int value_show(struct seq_file *m, void *v)
{
	seq_printf(m, "value %d\n", target_show_value());
	return 0;
}

static int value_open(struct inode *inode, struct file *file)
{
	return single_open(file, value_show, NULL);
}

static int sleep_show(struct seq_file *m, void *v)
{
	seq_printf(m, "waiters %d\n", atomic_read(&target_waiters));
	return 0;
}

static int sleep_open(struct inode *inode, struct file *file)
{
	return single_open(file, sleep_show, NULL);
}

static ssize_t sleep_write(struct file *file, const char __user *ubuf, size_t len, loff_t *ppos)
{
	char buf[16] = "";

	if (copy_from_user(buf, ubuf, min(len, sizeof(buf) - 1)))
		return -EFAULT;
	if (!strncmp(buf, "wait", 4)) {
		target_wait();
	} else if (!strncmp(buf, "release", 7)) {
		WRITE_ONCE(target_generation, target_generation + 1);
		wake_up_all(&target_wq);
	} else {
		return -EINVAL;
	}
	return len;
}

static const struct proc_ops value_ops = {
	.proc_open = value_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
};

static const struct proc_ops sleep_ops = {
	.proc_open = sleep_open,
	.proc_read = seq_read,
	.proc_write = sleep_write,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
};

static int __init target_init(void)
{
	target_dir = proc_mkdir("tsplice_target", NULL);
	if (!target_dir)
		return -ENOMEM;
	if (!proc_create("value", 0444, target_dir, &value_ops) ||
	    !proc_create("sleep", 0600, target_dir, &sleep_ops)) {
		remove_proc_subtree("tsplice_target", NULL);
		return -ENOMEM;
	}
	return 0;
}

static void __exit target_exit(void)
{
	remove_proc_subtree("tsplice_target", NULL);
}

module_init(target_init);
module_exit(target_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("tsplice lab test: functions to replace");
