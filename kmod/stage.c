// SPDX-License-Identifier: GPL-2.0-only
/*
 * tsplice_core, `stage`: everything about one function that can be decided before the
 * machine is stopped (the symbols at both addresses, the patch site, the reach of the jmp,
 * the sites other kernel users reserve, the running bytes), and the module references that
 * keep both sides of a staged function in place until `drop`. apply repeats the code and byte
 * checks before each stop (apply.c).
 */
#include "tsplice.h"

static const u8 tsplice_nop5[TSPLICE_FENTRY_SIZE] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };

/* ---------------------------------------------------------------------------------------- */
/* Validation: everything that can be decided before the machine is stopped                */
/* ---------------------------------------------------------------------------------------- */

/*
 * The symbol part of tsplice_check_code: a valid size, a symbol at @addr (named @want when
 * that is given) of which @addr is the entry, and @size within it. Returns the name of the
 * refusal, its sentence in @msg, or NULL.
 */
static const char *tsplice_code_symbol(const char *fname, const char *what, unsigned long addr,
				       unsigned long size, const char *want, struct tsplice_sym *s,
				       struct tsplice_report *msg)
{
	if (size == 0 || addr + size < addr) {
		tsplice_say(msg, "%s%s: size %lu is not valid", fname, what, size);
		return "bad-size";
	}
	if (tsplice_symbol_at(addr, s)) {
		tsplice_say(msg, "%s%s: no symbol at 0x%lx", fname, what, addr);
		return "no-symbol";
	}
	if (want && strcmp(s->name, want)) {
		tsplice_say(msg, "%s%s: 0x%lx is %s+0x%lx, not %s", fname, what, addr, s->name,
			    s->offset, want);
		tsplice_field(msg, "want", "%s", want);
		return "wrong-symbol";
	}
	if (s->offset != 0) {
		tsplice_say(msg, "%s%s: 0x%lx is %s+0x%lx, not the entry of a function", fname, what,
			    addr, s->name, s->offset);
		return "not-entry";
	}
	if (size > s->extent) {
		tsplice_say(msg, "%s%s: size %lu exceeds the %lu bytes to the next symbol", fname,
			    what, size, s->extent);
		tsplice_field(msg, "extent", "%lu", s->extent);
		return "past-symbol";
	}
	return NULL;
}

/*
 * The owner part of tsplice_check_code: kernel or module text, wholly in vmlinux or in one
 * module, not a module's init text, not this module, not a bpf program or ftrace trampoline.
 * @owner receives the module's name, "" for vmlinux. Returns the name of a refusal or NULL.
 */
static const char *tsplice_code_owner(const char *fname, const char *what, unsigned long addr,
				      unsigned long size, const struct tsplice_sym *s, char *owner,
				      struct tsplice_report *msg)
{
	char last_name[MODULE_NAME_LEN] = "";
	struct module *first, *last;
	bool self, init;

	owner[0] = '\0';
	if (!tsplice_ks.kernel_text_address(addr) ||
	    !tsplice_ks.kernel_text_address(addr + size - 1)) {
		tsplice_say(msg, "%s%s: 0x%lx+%lu is not kernel or module text", fname, what, addr, size);
		return "not-text";
	}
	preempt_disable();
	first = tsplice_ks.module_text_address(addr);
	last = tsplice_ks.module_text_address(addr + size - 1);
	if (first)
		strscpy(owner, first->name, MODULE_NAME_LEN);
	if (last)
		strscpy(last_name, last->name, sizeof(last_name));
	self = first == THIS_MODULE;
	/* A module's init text is freed once its init returns: never old or new code. */
	init = first && within_module_init(addr, first);
	preempt_enable();
	if (init) {
		tsplice_say(msg, "%s%s: 0x%lx is in the init text of %s, which is freed after its init",
			    fname, what, addr, owner);
		tsplice_field(msg, "module", "%s", owner);
		return "init-text";
	}
	if (first != last) {
		tsplice_say(msg, "%s%s: 0x%lx+%lu spans %s and %s", fname, what, addr, size,
			    first ? owner : "vmlinux", last ? last_name : "vmlinux");
		tsplice_field(msg, "module", "%s", first ? owner : "vmlinux");
		tsplice_field(msg, "module_end", "%s", last ? last_name : "vmlinux");
		return "spans-modules";
	}
	if (self) {
		tsplice_say(msg, "%s%s: is in tsplice_core itself", fname, what);
		return "self";
	}
	if (s->module && !first) {
		/* bpf programs and ftrace trampolines: text, but owned by no module. */
		tsplice_say(msg, "%s%s: belongs to [%s], which is not a module", fname, what, s->module);
		tsplice_field(msg, "owner", "%s", s->module);
		return "not-module";
	}
	return NULL;
}

/*
 * Checks that [addr, addr+size) is one function's code, from its entry, in vmlinux or in one
 * loaded module (not this one), and names its owner. Used when staging and again before each
 * apply: a module unloaded and another loaded at the same place must not be patched blindly.
 * @fname: the function being replaced, for messages; @is_new: checking its new code.
 * @want: the symbol name expected at @addr, or NULL to learn it into @name_out.
 * A refusal has the fields function= code=old|new address= size= and symbol= when there is
 * one, besides its own.
 */
int tsplice_check_code(const char *fname, bool is_new, unsigned long addr, unsigned long size,
		       const char *want, char *name_out, char *owner_out, struct tsplice_report *msg)
{
	const char *what = is_new ? " (new code)" : "";
	char owner[MODULE_NAME_LEN];
	struct tsplice_sym *s;
	const char *reason;

	s = kmalloc(sizeof(*s), GFP_KERNEL);
	if (!s) {
		tsplice_refuse(msg, "no-memory", "%s%s: out of memory", fname, what);
		return -ENOMEM;
	}
	s->name = NULL;
	reason = tsplice_code_symbol(fname, what, addr, size, want, s, msg);
	if (!reason)
		reason = tsplice_code_owner(fname, what, addr, size, s, owner, msg);
	if (reason) {
		msg->reason = reason;
		tsplice_field(msg, "function", "%s", fname);
		tsplice_field(msg, "code", "%s", is_new ? "new" : "old");
		tsplice_field(msg, "address", "0x%lx", addr);
		tsplice_field(msg, "size", "%lu", size);
		if (s->name)
			tsplice_field(msg, "symbol", "%s+0x%lx", s->name, s->offset);
	} else {
		if (name_out)
			strscpy(name_out, s->name, KSYM_NAME_LEN);
		strscpy(owner_out, owner, MODULE_NAME_LEN);
	}
	kfree(s);
	return reason ? -EINVAL : 0;
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
int tsplice_kprobe_at_site(const struct tsplice_func *f)
{
	unsigned long a, from = f->old_addr + (f->fentry ? 1 : 0);

	for (a = from; a < f->old_addr + f->site + TSPLICE_JMP_SIZE; a++)
		if (tsplice_ks.get_kprobe((void *)a))
			return (int)(a - f->old_addr);
	return -1;
}

/*
 * Whether an applied update other than @self already replaced @f's old function; if so the
 * refusal is reported (reason already-replaced, with the update's id) and true returned.
 * Stacking goes through the code that runs now, never through the function it replaced.
 * Called with tsplice_mutex held, at stage and again before apply's stop.
 */
bool tsplice_refuse_replaced(const struct tsplice_func *f, struct tsplice_update *self,
			     struct tsplice_report *msg)
{
	struct tsplice_update *other = tsplice_patched_by(f->old_addr, self);

	if (!other)
		return false;
	tsplice_refuse(msg, "already-replaced", "%s: already replaced by applied update %s", f->name,
		       other->id);
	tsplice_field(msg, "function", "%s", f->name);
	tsplice_field(msg, "by", "%s", other->id);
	return true;
}

/*
 * Compares the running bytes of the old function with the expected ones; the five bytes of
 * the __fentry__ site belong to ftrace (a nop, or a call while the function is traced) and
 * are not compared. Refuses a site under a kprobe (tsplice_kprobe_at_site) by name. Used
 * when staging and before stopping the machine; the same tests run again inside the stopped
 * machine, where they cannot race.
 */
int tsplice_check_bytes(const struct tsplice_func *f, struct tsplice_report *msg)
{
	u8 running[TSPLICE_MAX_EXPECTED];
	unsigned int i, skip = f->fentry ? TSPLICE_FENTRY_SIZE : 0;
	int probe;

	rcu_read_lock();
	probe = tsplice_kprobe_at_site(f);
	rcu_read_unlock();
	if (probe >= 0) {
		tsplice_refuse(msg, "kprobe-at-site",
			       "%s: a kprobe is registered at %s+0x%x, where the jmp goes; remove the probe first",
			       f->name, f->name, probe);
		tsplice_field(msg, "function", "%s", f->name);
		tsplice_field(msg, "offset", "%d", probe);
		return -EBUSY;
	}

	if (copy_from_kernel_nofault(running, (void *)f->old_addr, f->expected_len)) {
		tsplice_refuse(msg, "unreadable", "%s: cannot read its bytes at 0x%lx", f->name,
			       f->old_addr);
		tsplice_field(msg, "function", "%s", f->name);
		tsplice_field(msg, "address", "0x%lx", f->old_addr);
		return -EFAULT;
	}
	for (i = skip; i < f->expected_len; i++) {
		if (running[i] != f->expected[i]) {
			tsplice_refuse(msg, "bytes-changed",
				       "%s: running bytes differ from the expected ones at +%u: running %*phN, expected %*phN",
				       f->name, i, f->expected_len, running, f->expected_len, f->expected);
			tsplice_field(msg, "function", "%s", f->name);
			tsplice_field(msg, "offset", "%u", i);
			tsplice_field(msg, "running", "%*phN", f->expected_len, running);
			tsplice_field(msg, "expected", "%*phN", f->expected_len, f->expected);
			return -EILSEQ;
		}
	}
	return 0;
}

/* Ids are printed in status records and dmesg lines: keep them one plain word. */
bool tsplice_valid_id(const char *id)
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
bool tsplice_owned_by_other(const struct tsplice_update *u)
{
	return u->state == TS_STAGED && u->owner && u->owner != task_tgid(current) &&
	       pid_has_task(u->owner, PIDTYPE_TGID);
}

/* A reference on the module owning @addr, which must still be the one named @owner. */
int tsplice_get_module(unsigned long addr, const char *owner, struct module **out)
{
	struct module *mod;
	int ret = 0;

	*out = NULL;
	preempt_disable();
	mod = tsplice_ks.module_text_address(addr);
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
void tsplice_put_func_modules(struct tsplice_func *f)
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
static int tsplice_get_func_modules(struct tsplice_func *f, struct tsplice_report *msg)
{
	int ret = tsplice_get_module(f->old_addr, f->old_owner, &f->old_mod);
	bool is_new = false;

	if (ret) {
		tsplice_say(msg, "%s: its module %s is %s", f->name,
			    f->old_owner[0] ? f->old_owner : "vmlinux",
			    ret == -EBUSY ? "going away" : "no longer loaded there");
	} else {
		is_new = true;
		ret = tsplice_get_module(f->new_addr, f->new_owner, &f->new_mod);
		if (ret) {
			tsplice_say(msg, "%s: the module %s of its new code is %s", f->name,
				    f->new_owner[0] ? f->new_owner : "vmlinux",
				    ret == -EBUSY ? "going away" : "no longer loaded there");
			tsplice_put_func_modules(f);
		}
	}
	if (ret) {
		const char *owner = is_new ? f->new_owner : f->old_owner;

		msg->reason = ret == -EBUSY ? "module-going" : "module-gone";
		tsplice_field(msg, "function", "%s", f->name);
		tsplice_field(msg, "code", "%s", is_new ? "new" : "old");
		tsplice_field(msg, "module", "%s", owner[0] ? owner : "vmlinux");
	}
	return ret;
}

/* A stage command's arguments, parsed. */
struct tsplice_stage_args {
	const char *id, *name, *hex;
	unsigned long old_addr, old_size, new_addr, new_size;
};

/* Step 1: the form of the command, the id and the numbers. */
static int tsplice_stage_parse(int argc, char **argv, struct tsplice_stage_args *a,
			       struct tsplice_report *msg)
{
	if (argc != 8) {
		tsplice_refuse(msg, "usage",
			       "stage: usage: stage ID NAME OLD_ADDR OLD_SIZE NEW_ADDR NEW_SIZE EXPECTED_HEX");
		return -EINVAL;
	}
	a->id = argv[1];
	a->name = argv[2];
	a->hex = argv[7];
	if (!tsplice_valid_id(a->id)) {
		tsplice_refuse(msg, "bad-id",
			       "stage: '%s' is not a valid update id ([A-Za-z0-9_.:-], 1-63)", a->id);
		return -EINVAL;
	}
	if (strlen(a->name) >= KSYM_NAME_LEN || kstrtoul(argv[3], 0, &a->old_addr) ||
	    kstrtoul(argv[4], 0, &a->old_size) || kstrtoul(argv[5], 0, &a->new_addr) ||
	    kstrtoul(argv[6], 0, &a->new_size)) {
		tsplice_refuse(msg, "bad-number", "stage %s %s: addresses and sizes must be numbers",
			       a->id, a->name);
		return -EINVAL;
	}
	return 0;
}

/* Step 2: whether update @u (NULL: it does not exist yet) takes this function. */
static int tsplice_stage_into(const struct tsplice_update *u, const struct tsplice_stage_args *a,
			      struct tsplice_report *msg)
{
	const char *id = a->id, *name = a->name;
	unsigned int i;

	if (!u)
		return 0;
	if (tsplice_owned_by_other(u)) {
		tsplice_refuse(msg, "owned", "stage %s %s: update %s is being staged by pid %d", id,
			       name, id, pid_vnr(u->owner));
		tsplice_field(msg, "owner", "%d", pid_vnr(u->owner));
		return -EBUSY;
	}
	if (u->state != TS_STAGED) {
		tsplice_refuse(msg, "not-staged", "stage %s %s: update %s is %s; stage into a new id",
			       id, name, id, tsplice_state_names[u->state]);
		tsplice_field(msg, "state", "%s", tsplice_state_names[u->state]);
		return -EBUSY;
	}
	if (u->nfuncs >= TSPLICE_MAX_FUNCS) {
		tsplice_refuse(msg, "too-many", "stage %s %s: at most %d functions per update", id,
			       name, TSPLICE_MAX_FUNCS);
		tsplice_field(msg, "max", "%d", TSPLICE_MAX_FUNCS);
		return -E2BIG;
	}
	for (i = 0; i < u->nfuncs; i++) {
		if (u->funcs[i].old_addr == a->old_addr) {
			tsplice_refuse(msg, "already-staged", "stage %s %s: already staged in %s", id,
				       name, id);
			tsplice_field(msg, "function", "%s", u->funcs[i].name);
			return -EEXIST;
		}
	}
	return 0;
}

/* Step 3: both addresses are function entries of the sizes given, in text, and apart. */
static int tsplice_stage_resolve(struct tsplice_func *f, struct tsplice_report *msg)
{
	int ret;

	ret = tsplice_check_code(f->name, false, f->old_addr, f->old_size, f->name, NULL,
				 f->old_owner, msg);
	if (ret)
		return ret;
	ret = tsplice_check_code(f->name, true, f->new_addr, f->new_size, NULL, f->new_name,
				 f->new_owner, msg);
	if (ret)
		return ret;
	if (f->old_addr < f->new_addr + f->new_size && f->new_addr < f->old_addr + f->old_size) {
		tsplice_refuse(msg, "overlap", "%s: the new code overlaps the old function", f->name);
		tsplice_field(msg, "function", "%s", f->name);
		return -EINVAL;
	}
	return 0;
}

/*
 * Step 4, the patch site: after the fentry nop that ftrace owns, or the entry of a notrace
 * function that does not start with endbr64. Sets f->fentry and f->site.
 */
int tsplice_stage_fentry(struct tsplice_func *f, struct tsplice_report *msg)
{
	static const u8 endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };
	u8 first[TSPLICE_FENTRY_SIZE];

	if (tsplice_ks.ftrace_location) {
		unsigned long loc = tsplice_ks.ftrace_location(f->old_addr);

		if (loc && loc != f->old_addr) {
			tsplice_refuse(msg, "fentry-not-entry",
				       "%s: its __fentry__ site is at +%lu, not at the entry; not supported",
				       f->name, loc - f->old_addr);
			tsplice_field(msg, "function", "%s", f->name);
			tsplice_field(msg, "offset", "%lu", loc - f->old_addr);
			return -EINVAL;
		}
		f->fentry = loc == f->old_addr;
	} else {
		f->fentry = !copy_from_kernel_nofault(first, (void *)f->old_addr, sizeof(first)) &&
			    !memcmp(first, tsplice_nop5, sizeof(first));
	}
	f->site = f->fentry ? TSPLICE_FENTRY_SIZE : 0;
	/*
	 * With IBT an indirect call must land on the endbr64; a jmp written over it would break
	 * that, and this kernel has no IBT to try it on: refuse by name.
	 */
	if (!f->fentry &&
	    !copy_from_kernel_nofault(first, (void *)f->old_addr, sizeof(endbr64)) &&
	    !memcmp(first, endbr64, sizeof(endbr64))) {
		tsplice_refuse(msg, "notrace-endbr", "%s: starts with endbr64 (IBT); not supported",
			       f->name);
		tsplice_field(msg, "function", "%s", f->name);
		return -EINVAL;
	}
	return 0;
}

/* Step 5: room for the jmp at the site, its reach, and no jump label or static call under it. */
int tsplice_stage_jmp(struct tsplice_func *f, struct tsplice_report *msg)
{
	unsigned long site = f->old_addr + f->site;
	long rel;

	if (f->old_size < f->site + TSPLICE_JMP_SIZE) {
		tsplice_refuse(msg, "too-short",
			       "%s is too short to patch: %lu bytes, needs %u (%s%d-byte jmp)", f->name,
			       f->old_size, f->site + TSPLICE_JMP_SIZE,
			       f->fentry ? "5-byte __fentry__ nop + " : "", TSPLICE_JMP_SIZE);
		tsplice_field(msg, "function", "%s", f->name);
		tsplice_field(msg, "size", "%lu", f->old_size);
		tsplice_field(msg, "needs", "%u", f->site + TSPLICE_JMP_SIZE);
		return -EINVAL;
	}
	rel = (long)f->new_addr - (long)(site + TSPLICE_JMP_SIZE);
	if (rel != (long)(s32)rel) {
		tsplice_refuse(msg, "out-of-reach",
			       "%s: the new code at 0x%lx is out of reach of a jmp rel32", f->name,
			       f->new_addr);
		tsplice_field(msg, "function", "%s", f->name);
		tsplice_field(msg, "address", "0x%lx", f->new_addr);
		return -ERANGE;
	}
	f->jmp[0] = 0xe9;
	put_unaligned_le32((u32)(s32)rel, &f->jmp[1]);
	if (tsplice_ks.jump_label_text_reserved((void *)site, (void *)(site + TSPLICE_JMP_SIZE - 1)) ||
	    (tsplice_ks.static_call_text_reserved &&
	     tsplice_ks.static_call_text_reserved((void *)site, (void *)(site + TSPLICE_JMP_SIZE - 1)))) {
		tsplice_refuse(msg, "reserved-site",
			       "%s: a jump label or static call site overlaps the patch site at +%u",
			       f->name, f->site);
		tsplice_field(msg, "function", "%s", f->name);
		tsplice_field(msg, "offset", "%u", f->site);
		return -EBUSY;
	}
	return 0;
}

/*
 * Step 6: the expected bytes (from the entry, at least through the patch site), no applied
 * update replacing this function, and the running bytes equal to the expected ones.
 */
static int tsplice_stage_bytes(struct tsplice_func *f, const char *hex, struct tsplice_report *msg)
{
	unsigned long most = min_t(unsigned long, TSPLICE_MAX_EXPECTED, f->old_size);
	size_t hexlen = strlen(hex);
	int ret;

	if (hexlen % 2 || hexlen / 2 < f->site + TSPLICE_JMP_SIZE || hexlen / 2 > most ||
	    hex2bin(f->expected, hex, hexlen / 2)) {
		tsplice_refuse(msg, "bad-expected",
			       "%s: expected bytes must be hex, %u to %lu bytes from the entry", f->name,
			       f->site + TSPLICE_JMP_SIZE, most);
		tsplice_field(msg, "function", "%s", f->name);
		tsplice_field(msg, "min", "%u", f->site + TSPLICE_JMP_SIZE);
		tsplice_field(msg, "max", "%lu", most);
		return -EINVAL;
	}
	f->expected_len = hexlen / 2;
	if (tsplice_refuse_replaced(f, NULL, msg))
		return -EBUSY;
	ret = tsplice_check_bytes(f, msg);
	if (ret)
		return ret;
	memcpy(f->orig, f->expected + f->site, TSPLICE_JMP_SIZE);
	return 0;
}

/*
 * Step 8: the function joins update @id, which is created if *@up is NULL; a created update
 * that cannot take it is freed again (*@up is then NULL). -ENOMEM is the only failure.
 */
static int tsplice_stage_add(struct tsplice_update **up, const char *id,
			     const struct tsplice_func *f)
{
	struct tsplice_update *u = *up;
	struct tsplice_func *grown;
	bool created = false;

	if (!u) {
		u = tsplice_update_new(id);
		if (!u)
			return -ENOMEM;
		created = true;
	}
	grown = kvmalloc_array(u->nfuncs + 1, sizeof(*grown), GFP_KERNEL);
	if (!grown) {
		if (created) {
			tsplice_update_free(u);
			u = NULL;
		}
		*up = u;
		return -ENOMEM;
	}
	if (u->nfuncs)
		memcpy(grown, u->funcs, u->nfuncs * sizeof(*grown));
	memcpy(&grown[u->nfuncs], f, sizeof(*f));
	kvfree(u->funcs);
	u->funcs = grown;
	u->nfuncs++;
	tsplice_report_clear(&u->error);
	*up = u;
	return 0;
}

/* Adds a function to an existing update (late.c binds parts this way); -ENOMEM only. */
int tsplice_add_func(struct tsplice_update *u, const struct tsplice_func *f)
{
	return tsplice_stage_add(&u, u->id, f);
}

/*
 * Steps 3 to 7 for one function: everything about it is checked, then its modules are held.
 * Every refusal from here on names the function (function=).
 */
static int tsplice_stage_check(struct tsplice_func *f, const char *hex, struct tsplice_report *msg)
{
	int ret = tsplice_stage_resolve(f, msg);

	if (!ret)
		ret = tsplice_stage_fentry(f, msg);
	if (!ret)
		ret = tsplice_stage_jmp(f, msg);
	if (!ret)
		ret = tsplice_stage_bytes(f, hex, msg);
	/* Step 7: from here to drop, neither module can go: a staged address names live code. */
	if (!ret)
		ret = tsplice_get_func_modules(f, msg);
	return ret;
}

/*
 * `stage ID NAME OLD OLD_SIZE NEW NEW_SIZE EXPECTED_HEX`: adds one function to update ID,
 * creating the update. Everything about the function is checked here, long before any
 * machine stop: the symbol at OLD is NAME at offset 0 and OLD_SIZE fits before the next
 * symbol; NEW is the entry of a function in module (or vmlinux) text; the patch site is
 * after the __fentry__ nop when ftrace knows one at the entry, at the entry otherwise; the
 * function is long enough for the jmp; the jmp reaches; no jump label or static call site
 * overlaps it; and the running bytes equal EXPECTED_HEX (the bytes from the entry, at least
 * through the patch site). Every refusal goes to the kernel log and to status (the update's
 * error, once the function's own checks began, and the last refusal).
 */
int tsplice_stage(int argc, char **argv, struct tsplice_report *msg)
{
	struct tsplice_stage_args a = {};
	struct tsplice_update *u = NULL;
	struct tsplice_func *f = NULL;
	int ret;

	ret = tsplice_stage_parse(argc, argv, &a, msg);
	if (!ret) {
		u = tsplice_find(a.id);
		ret = tsplice_stage_into(u, &a, msg);
	}
	if (ret)
		goto refused;
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f) {
		tsplice_refuse(msg, "no-memory", "stage %s %s: out of memory", a.id, a.name);
		ret = -ENOMEM;
		goto refused;
	}
	strscpy(f->name, a.name, sizeof(f->name));
	f->old_addr = a.old_addr;
	f->old_size = a.old_size;
	f->new_addr = a.new_addr;
	f->new_size = a.new_size;
	ret = tsplice_stage_check(f, a.hex, msg);
	if (ret)
		goto fail;
	ret = tsplice_stage_add(&u, a.id, f);
	if (ret) {
		tsplice_refuse(msg, "no-memory", "stage %s %s: out of memory", a.id, a.name);
		tsplice_put_func_modules(f);
		goto fail;
	}
	tsplice_say(msg, "ok: staged %s in %s: jmp at +%u to %s%s%s%s", a.name, a.id, f->site,
		    f->new_name, f->new_owner[0] ? " [" : "", f->new_owner,
		    f->new_owner[0] ? "]" : "");
	kfree(f);
	return 0;
fail:
	if (u)
		u->error = *msg;
refused:
	pr_err("stage %s refused: %s\n", argc > 1 ? argv[1] : "-", msg->text);
	kfree(f);
	return ret;
}
