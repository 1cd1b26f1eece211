// SPDX-License-Identifier: GPL-2.0
/*
 * kvmstub_demo: a module to debug with gdb and Linux's gdb scripts.
 * kvmstub_demo_init runs at insmod (a breakpoint on it is hit once
 * lx-symbols has loaded the module's symbols); writing to
 * /proc/kvmstub_demo reaches kvmstub_demo_write from the console, e.g.
 *   echo hello >/proc/kvmstub_demo; cat /proc/kvmstub_demo
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/uaccess.h>

struct kvmstub_demo_state {
	unsigned long writes;	/* how many writes reached the module */
	char last[32];		/* the last line written, NUL-terminated */
};

static struct kvmstub_demo_state kvmstub_demo_state;
static struct proc_dir_entry *kvmstub_demo_entry;

static noinline ssize_t kvmstub_demo_write(struct file *file, const char __user *buf,
					   size_t len, loff_t *pos)
{
	size_t n = min(len, sizeof(kvmstub_demo_state.last) - 1);

	if (copy_from_user(kvmstub_demo_state.last, buf, n))
		return -EFAULT;
	kvmstub_demo_state.last[n] = '\0';
	if (n && kvmstub_demo_state.last[n - 1] == '\n')
		kvmstub_demo_state.last[n - 1] = '\0';
	kvmstub_demo_state.writes++;
	pr_info("kvmstub_demo: write %lu: %s\n", kvmstub_demo_state.writes,
		kvmstub_demo_state.last);
	return len;
}

static ssize_t kvmstub_demo_read(struct file *file, char __user *buf, size_t len,
				 loff_t *pos)
{
	char text[64];
	int n = scnprintf(text, sizeof(text), "writes=%lu last=%s\n",
			  kvmstub_demo_state.writes, kvmstub_demo_state.last);

	return simple_read_from_buffer(buf, len, pos, text, n);
}

static const struct proc_ops kvmstub_demo_ops = {
	.proc_read = kvmstub_demo_read,
	.proc_write = kvmstub_demo_write,
};

static noinline int __init kvmstub_demo_init(void)
{
	kvmstub_demo_entry = proc_create("kvmstub_demo", 0666, NULL, &kvmstub_demo_ops);
	if (!kvmstub_demo_entry)
		return -ENOMEM;
	pr_info("kvmstub_demo: loaded; write to /proc/kvmstub_demo\n");
	return 0;
}

static void __exit kvmstub_demo_exit(void)
{
	proc_remove(kvmstub_demo_entry);
}

module_init(kvmstub_demo_init);
module_exit(kvmstub_demo_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kvmstub: a module to debug with gdb and Linux's gdb scripts");
