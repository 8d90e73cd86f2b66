// SPDX-License-Identifier: GPL-2.0-only
/*
 * tsplice_core, functions of loadable modules. A module may be loaded after an update was
 * applied, unloaded while it is applied, and loaded again: its functions are recorded as parts
 * (`part`), with the relocations of the new code that name something of a module (`late`), and
 * bound to the module's running copy each time it is live:
 *   - at apply, for a module loaded then (the switch writes the jmps under stop_machine);
 *   - at MODULE_STATE_COMING, for a module loaded while the update is applied. The loader has
 *     relocated the module, applied its alternatives and set up its ftrace sites; its init has
 *     not run and nothing can call into it yet, so the jmps are written at once, no stop needed.
 * Binding proves the running copy against the pre code outside the mask apply computed (the
 * relocation fields and the sites the kernel rewrites at load), writes the late relocations,
 * then adds one tsplice_func per part. A copy that differs is left unpatched, with a kernel log
 * line and the part's state `refused`. At MODULE_STATE_GOING (the module's exit has run and
 * nothing of it runs again) its functions are forgotten without writes and the parts wait.
 * No reference on the module is held: the administrator may unload it while an update is
 * applied (docs/design.md, "Fixes to loadable modules").
 */
#include "tsplice.h"

/*
 * `refuse_load=Y`: a module whose copy does not match a part of an applied update fails to load
 * (the loader reports EILSEQ) instead of loading unpatched. For operators who would rather not
 * run a module their fix does not cover.
 */
static bool tsplice_refuse_load;
module_param_named(refuse_load, tsplice_refuse_load, bool, 0644);
MODULE_PARM_DESC(refuse_load, "refuse to load a module a part of an applied update does not match, instead of loading it unpatched (default N)");

const char *const tsplice_part_state_names[] = {
	[TS_PART_WAITING] = "waiting",
	[TS_PART_BOUND] = "bound",
	[TS_PART_REFUSED] = "refused",
};

/* ---------------------------------------------------------------------------------------- */
/* Commands                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/*
 * The update a `part` or `late` command adds to: staged, not another live process's, with room.
 * @create: make it when missing (a part may be the first thing of an update).
 */
static int tsplice_late_target(const char *cmd, const char *id, bool create,
			       struct tsplice_update **out, struct tsplice_report *msg)
{
	struct tsplice_update *u;

	*out = NULL;
	if (!tsplice_valid_id(id)) {
		tsplice_refuse(msg, "bad-id", "%s: '%s' is not a valid update id", cmd, id);
		return -EINVAL;
	}
	u = tsplice_find(id);
	if (!u && !create) {
		tsplice_refuse(msg, "no-update", "%s: no update %s with a part", cmd, id);
		return -ENOENT;
	}
	if (u && tsplice_owned_by_other(u)) {
		tsplice_refuse(msg, "owned", "%s %s: being staged by pid %d", cmd, id, pid_vnr(u->owner));
		tsplice_field(msg, "owner", "%d", pid_vnr(u->owner));
		return -EBUSY;
	}
	if (u && u->state != TS_STAGED) {
		tsplice_refuse(msg, "not-staged", "%s %s: update is %s; stage into a new id", cmd, id,
			       tsplice_state_names[u->state]);
		tsplice_field(msg, "state", "%s", tsplice_state_names[u->state]);
		return -EBUSY;
	}
	if (!u) {
		u = tsplice_update_new(id);
		if (!u) {
			tsplice_refuse(msg, "no-memory", "%s %s: out of memory", cmd, id);
			return -ENOMEM;
		}
	}
	*out = u;
	return 0;
}

/* MASK: "-" or "OFF+LEN,..." (decimal) within @size; sets mask[OFF..OFF+LEN) to 1. */
static int tsplice_parse_mask(const char *text, u8 *mask, unsigned long size)
{
	unsigned long off, len;
	const char *p = text;
	int n;

	if (!strcmp(text, "-"))
		return 0;
	while (*p) {
		if (sscanf(p, "%lu+%lu%n", &off, &len, &n) != 2 || len == 0 || off >= size ||
		    len > size - off)
			return -EINVAL;
		memset(mask + off, 1, len);
		p += n;
		if (*p == ',')
			p++;
		else if (*p)
			return -EINVAL;
	}
	return 0;
}

/* Frees what a part holds: its reference on the update module and its buffers. */
static void tsplice_part_release(struct tsplice_part *p)
{
	if (p->new_mod)
		module_put(p->new_mod);
	p->new_mod = NULL;
	kvfree(p->pre);
	kvfree(p->mask);
	p->pre = p->mask = NULL;
}

/* Fills @p from a `part` command's arguments; every refusal names the function. */
static int tsplice_part_parse(struct tsplice_part *p, char **argv, struct tsplice_report *msg)
{
	size_t hexlen = strlen(argv[6]);
	int ret;

	if (strlen(argv[2]) >= KSYM_NAME_LEN || strlen(argv[3]) >= MODULE_NAME_LEN ||
	    kstrtoul(argv[4], 0, &p->new_addr) || kstrtoul(argv[5], 0, &p->new_size)) {
		tsplice_refuse(msg, "bad-number", "part %s %s: names too long or numbers not valid",
			       argv[1], argv[2]);
		return -EINVAL;
	}
	strscpy(p->name, argv[2], sizeof(p->name));
	strscpy(p->module, argv[3], sizeof(p->module));
	p->pre_size = hexlen / 2;
	if (hexlen % 2 || p->pre_size < TSPLICE_FENTRY_SIZE + TSPLICE_JMP_SIZE ||
	    p->pre_size > TSPLICE_MAX_PRE) {
		tsplice_refuse(msg, "bad-expected", "%s: the pre code must be hex, %u to %u bytes",
			       p->name, TSPLICE_FENTRY_SIZE + TSPLICE_JMP_SIZE, TSPLICE_MAX_PRE);
		return -EINVAL;
	}
	p->pre = kvmalloc(p->pre_size, GFP_KERNEL);
	p->mask = kvzalloc(p->pre_size, GFP_KERNEL);
	if (!p->pre || !p->mask) {
		tsplice_refuse(msg, "no-memory", "part %s: out of memory", p->name);
		return -ENOMEM;
	}
	if (hex2bin(p->pre, argv[6], p->pre_size) ||
	    tsplice_parse_mask(argv[7], p->mask, p->pre_size)) {
		tsplice_refuse(msg, "bad-expected", "%s: the pre code is not hex or the mask is not OFF+LEN,... within it",
			       p->name);
		return -EINVAL;
	}
	/* The new code: a function entry in a loaded module other than the one it replaces. */
	ret = tsplice_check_code(p->name, true, p->new_addr, p->new_size, NULL, p->new_name,
				 p->new_owner, msg);
	if (ret)
		return ret;
	if (!p->new_owner[0] || !strcmp(p->new_owner, p->module)) {
		tsplice_refuse(msg, "not-module", "%s: its new code must be in an update module, not %s",
			       p->name, p->new_owner[0] ? p->new_owner : "vmlinux");
		return -EINVAL;
	}
	ret = tsplice_get_module(p->new_addr, p->new_owner, &p->new_mod);
	if (ret)
		tsplice_refuse(msg, "module-gone", "%s: the module %s of its new code is going", p->name,
			       p->new_owner);
	return ret;
}

/*
 * `part ID NAME MODULE NEW_ADDR NEW_SIZE PRE_HEX MASK`: a function of the loadable module
 * MODULE, replaced by the new code at NEW_ADDR, recorded to be bound whenever MODULE is live.
 * PRE_HEX is the whole pre code; MASK lists the byte ranges "OFF+LEN,..." where the running
 * copy may differ (relocation fields and load-time rewrite sites), "-" for none.
 */
int tsplice_part_command(int argc, char **argv, struct tsplice_report *msg)
{
	struct tsplice_update *u;
	struct tsplice_part *p, *grown;
	unsigned int i;
	int ret;

	if (argc != 8 && !(argc == 9 && !strncmp(argv[8], "pin=", 4))) {
		tsplice_refuse(msg, "usage", "part: usage: part ID NAME MODULE NEW_ADDR NEW_SIZE PRE_HEX MASK [pin=ADDR]");
		return -EINVAL;
	}
	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p) {
		tsplice_refuse(msg, "no-memory", "part: out of memory");
		return -ENOMEM;
	}
	ret = tsplice_part_parse(p, argv, msg);
	if (!ret && argc == 9 && (kstrtoul(argv[8] + 4, 0, &p->pin_addr) || !p->pin_addr)) {
		tsplice_refuse(msg, "bad-number", "part %s: pin= takes the running address", p->name);
		ret = -EINVAL;
	}
	if (ret)
		goto fail;
	ret = tsplice_late_target("part", argv[1], true, &u, msg);
	if (ret)
		goto fail;
	for (i = 0; i < u->nparts; i++) {
		if (!strcmp(u->parts[i].name, p->name) && !strcmp(u->parts[i].module, p->module)) {
			tsplice_refuse(msg, "already-staged", "part %s %s: already a part of %s", u->id,
				       p->name, u->id);
			ret = -EEXIST;
			goto fail_new;
		}
	}
	if (u->nparts >= TSPLICE_MAX_PARTS ||
	    (u->nparts && u->parts[0].new_mod != p->new_mod)) {
		tsplice_refuse(msg, "usage", "part %s %s: at most %d parts, all with new code in one module",
			       u->id, p->name, TSPLICE_MAX_PARTS);
		ret = -EINVAL;
		goto fail_new;
	}
	grown = kvmalloc_array(u->nparts + 1, sizeof(*grown), GFP_KERNEL);
	if (!grown) {
		tsplice_refuse(msg, "no-memory", "part %s: out of memory", p->name);
		ret = -ENOMEM;
		goto fail_new;
	}
	if (u->nparts)
		memcpy(grown, u->parts, u->nparts * sizeof(*grown));
	p->state = TS_PART_WAITING;
	memcpy(&grown[u->nparts], p, sizeof(*p));
	kvfree(u->parts);
	u->parts = grown;
	u->nparts++;
	tsplice_say(msg, "ok: part %s [%s] of %s waits for its module", p->name, p->module, u->id);
	kfree(p);
	return 0;
fail_new:
	if (!u->nfuncs && !u->nparts)
		tsplice_update_free(u);
fail:
	tsplice_part_release(p);
	kfree(p);
	pr_err("part refused: %s\n", msg->text);
	return ret;
}

/*
 * `late ID MODULE FIELD TYPE TARGET SYMBOL ADDEND`: when MODULE's parts bind, write at FIELD
 * (in the update module) the value of SYMBOL as defined in the loaded module TARGET (MODULE
 * itself or one it depends on), computed as TYPE says: pc32 (S + A - P, also for PLT32),
 * 32s (S + A, sign-extended) or 64 (S + A). The update must have its parts already.
 */
int tsplice_late_command(int argc, char **argv, struct tsplice_report *msg)
{
	struct tsplice_update *u;
	struct tsplice_late l = {}, *grown;
	struct module *owner;
	int ret;

	if (argc != 8) {
		tsplice_refuse(msg, "usage", "late: usage: late ID MODULE FIELD pc32|32s|64 TARGET SYMBOL ADDEND");
		return -EINVAL;
	}
	ret = tsplice_late_target("late", argv[1], false, &u, msg);
	if (ret)
		return ret;
	if (strlen(argv[2]) >= MODULE_NAME_LEN || strlen(argv[5]) >= MODULE_NAME_LEN ||
	    strlen(argv[6]) >= KSYM_NAME_LEN || kstrtoul(argv[3], 0, &l.field) ||
	    kstrtol(argv[7], 0, &l.addend)) {
		tsplice_refuse(msg, "bad-number", "late %s: names too long or numbers not valid", u->id);
		return -EINVAL;
	}
	if (!strcmp(argv[4], "pc32"))
		l.type = TS_LATE_PC32;
	else if (!strcmp(argv[4], "32s"))
		l.type = TS_LATE_32S;
	else if (!strcmp(argv[4], "64"))
		l.type = TS_LATE_64;
	else {
		tsplice_refuse(msg, "usage", "late %s: type %s is not pc32, 32s or 64", u->id, argv[4]);
		return -EINVAL;
	}
	strscpy(l.module, argv[2], sizeof(l.module));
	strscpy(l.target, argv[5], sizeof(l.target));
	strscpy(l.symbol, argv[6], sizeof(l.symbol));
	/* The field must be in the update module, the one every part's new code is in. */
	preempt_disable();
	owner = tsplice_ks.module_address(l.field);
	preempt_enable();
	if (!u->nparts || owner != u->parts[0].new_mod || u->nlates >= TSPLICE_MAX_LATE) {
		tsplice_refuse(msg, "bad-field", "late %s %s: 0x%lx is not in the update module of its parts",
			       u->id, l.symbol, l.field);
		tsplice_field(msg, "symbol", "%s", l.symbol);
		tsplice_field(msg, "address", "0x%lx", l.field);
		return -EINVAL;
	}
	grown = kvmalloc_array(u->nlates + 1, sizeof(*grown), GFP_KERNEL);
	if (!grown) {
		tsplice_refuse(msg, "no-memory", "late %s: out of memory", u->id);
		return -ENOMEM;
	}
	if (u->nlates)
		memcpy(grown, u->lates, u->nlates * sizeof(*grown));
	grown[u->nlates] = l;
	kvfree(u->lates);
	u->lates = grown;
	u->nlates++;
	tsplice_say(msg, "ok: late %s [%s] at 0x%lx", l.symbol, l.target, l.field);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Binding                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/*
 * Whether @addr is where a core symbol of @mod lives: its core memory or its per-CPU area. The
 * symbols kallsyms keeps after init are exactly these (defined, in a section the loader keeps,
 * not init), in the order of the file's symbol table; at COMING the whole table is there, and
 * the others (init, and sections the loader does not keep, whose values point into the file's
 * temporary copy) fall outside both ranges.
 */
static bool tsplice_core_address(struct module *mod, unsigned long addr)
{
	if (within_module_core(addr, mod))
		return true;
#ifdef CONFIG_SMP
	return mod->percpu_size && addr >= (unsigned long)mod->percpu &&
	       addr - (unsigned long)mod->percpu < mod->percpu_size;
#else
	return false;
#endif
}

/*
 * The defined symbol @name of @mod outside its init text (@func: a function), by the module's
 * own symbol table, which kallsyms reads too. Returns how many there are; the address and size
 * of the last. At COMING the table is the whole ELF symtab, afterwards the core symbols: both
 * hold statics.
 *
 * NAME#N names the N-th (from 1) core symbol called NAME, counted in table order: a module
 * whose units each have a static of one name (lockdep's `__key.0`, a ratelimit `_rs.3`, two
 * `put_ldev`) has them in the order of its file, which the loader and kallsyms keep, so apply
 * names the copy it proved by its place. Returns 1 when that one exists (and, for @func, is a
 * function), else 0.
 */
static unsigned int tsplice_module_symbol(struct module *mod, const char *name, bool func,
					  unsigned long *addr, unsigned long *size)
{
	const char *hash = strchr(name, '#');
	size_t len = hash ? hash - name : strlen(name);
	struct mod_kallsyms *ks;
	unsigned int i, nth = 0, seen = 0, found = 0;

	if (!strcmp(name, "__this_module")) {
		*addr = (unsigned long)mod;
		*size = sizeof(*mod);
		return 1;
	}
	if (hash && (kstrtouint(hash + 1, 10, &nth) || !nth))
		return 0;
	preempt_disable();
	ks = rcu_dereference_sched(mod->kallsyms);
	for (i = 0; ks && i < ks->num_symtab; i++) {
		const Elf_Sym *sym = &ks->symtab[i];
		const char *sym_name = ks->strtab + sym->st_name;

		if (sym->st_shndx == SHN_UNDEF || sym->st_shndx >= SHN_LORESERVE)
			continue;
		if (strncmp(sym_name, name, len) || sym_name[len] || within_module_init(sym->st_value, mod))
			continue;
		if (nth) {
			if (!tsplice_core_address(mod, sym->st_value) || ++seen != nth)
				continue;
			if (func && ELF_ST_TYPE(sym->st_info) != STT_FUNC)
				break;
		} else if (func && ELF_ST_TYPE(sym->st_info) != STT_FUNC) {
			continue;
		}
		found++;
		*addr = sym->st_value;
		*size = sym->st_size;
		if (nth)
			break;
	}
	preempt_enable();
	return found;
}

/* A late relocation's value for this load of @mod, or a refusal naming the symbol. */
static int tsplice_late_value(const struct tsplice_late *l, struct module *mod, u64 *value,
			      unsigned int *len, struct tsplice_report *msg)
{
	struct module *target = mod;
	unsigned long s = 0, size;
	unsigned int found = 0;
	s64 v;

	if (strcmp(l->target, mod->name)) {
		/* A dependency: loaded while @mod is, which holds a reference on it. */
		preempt_disable();
		target = tsplice_ks.find_module(l->target);
		if (target && target->state != MODULE_STATE_LIVE)
			target = NULL;
		preempt_enable();
	}
	if (target)
		found = tsplice_module_symbol(target, l->symbol, false, &s, &size);
	if (found != 1) {
		tsplice_refuse(msg, found ? "ambiguous-symbol" : "unresolved-symbol",
			       "the new code refers to %s of %s, which %s", l->symbol, l->target,
			       !target ? "is not loaded" : found ? "has it more than once" : "does not have it");
		tsplice_field(msg, "symbol", "%s", l->symbol);
		tsplice_field(msg, "target", "%s", l->target);
		return -ENOENT;
	}
	v = (s64)s + l->addend;
	switch (l->type) {
	case TS_LATE_PC32:
		v -= (s64)l->field;
		fallthrough;
	case TS_LATE_32S:
		*len = 4;
		if (v != (s64)(s32)v) {
			tsplice_refuse(msg, "out-of-reach", "%s of %s is out of reach of a 32-bit field",
				       l->symbol, l->target);
			tsplice_field(msg, "symbol", "%s", l->symbol);
			return -ERANGE;
		}
		break;
	case TS_LATE_64:
		*len = 8;
		break;
	}
	*value = (u64)v;
	return 0;
}

/*
 * Writes every late relocation of @mod's parts into the update module: first all computed,
 * then all written (text_poke under text_mutex: the update module's text and rodata are
 * read-only), so that a symbol missing leaves nothing half-written. No jmp leads into the
 * new code of @mod's parts while this runs: they are written afterwards.
 */
static int tsplice_write_lates(struct tsplice_update *u, struct module *mod,
			       struct tsplice_report *msg)
{
	unsigned int i, len = 0;
	u64 *values;
	int ret = 0;

	values = kvmalloc_array(max(u->nlates, 1U), sizeof(*values), GFP_KERNEL);
	if (!values) {
		tsplice_refuse(msg, "no-memory", "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < u->nlates && !ret; i++)
		if (!strcmp(u->lates[i].module, mod->name))
			ret = tsplice_late_value(&u->lates[i], mod, &values[i], &len, msg);
	if (!ret) {
		mutex_lock(tsplice_ks.text_mutex);
		for (i = 0; i < u->nlates; i++) {
			if (strcmp(u->lates[i].module, mod->name))
				continue;
			len = u->lates[i].type == TS_LATE_64 ? 8 : 4;
			tsplice_ks.text_poke((void *)u->lates[i].field, &values[i], len);
		}
		mutex_unlock(tsplice_ks.text_mutex);
	}
	kvfree(values);
	return ret;
}

/*
 * Proves @mod's running copy of part @p against its pre code, and makes the function that
 * switches it (the same site, reach and reserved-site checks as stage). Refusals name the
 * function, and the offset for a byte that differs.
 */
static int tsplice_part_func(struct tsplice_part *p, struct module *mod, struct tsplice_func *f,
			     struct tsplice_report *msg)
{
	unsigned long addr = 0, size = 0, i;
	unsigned int found = tsplice_module_symbol(mod, p->name, true, &addr, &size);
	const u8 *running;
	int ret;

	if (found != 1) {
		tsplice_refuse(msg, found ? "ambiguous-symbol" : "unresolved-symbol",
			       "%s: the module %s has %s function of that name", p->name, mod->name,
			       found ? "more than one" : "no");
		tsplice_field(msg, "function", "%s", p->name);
		return -ENOENT;
	}
	/*
	 * A pinned part's new code was bound at insmod to the copy at pin_addr: only that copy, live
	 * (not one coming), and it is kept loaded from here to drop.
	 */
	if (p->pin_addr && (addr != p->pin_addr || mod->state != MODULE_STATE_LIVE)) {
		tsplice_refuse(msg, "module-moved", "%s: the new code was bound to the copy of %s at 0x%lx, which is gone",
			       p->name, mod->name, p->pin_addr);
		tsplice_field(msg, "function", "%s", p->name);
		tsplice_field(msg, "module", "%s", mod->name);
		return -ESTALE;
	}
	if (size != p->pre_size) {
		tsplice_refuse(msg, "pre-code-differs", "%s: %lu bytes in %s, the pre code has %lu",
			       p->name, size, mod->name, p->pre_size);
		tsplice_field(msg, "function", "%s", p->name);
		tsplice_field(msg, "offset", "0x%lx", min(size, p->pre_size));
		return -EILSEQ;
	}
	running = (const u8 *)addr;
	for (i = 0; i < size; i++) {
		if (!p->mask[i] && running[i] != p->pre[i]) {
			tsplice_refuse(msg, "pre-code-differs", "%s: the running copy in %s differs from the pre code at +0x%lx",
				       p->name, mod->name, i);
			tsplice_field(msg, "function", "%s", p->name);
			tsplice_field(msg, "offset", "0x%lx", i);
			return -EILSEQ;
		}
	}
	memset(f, 0, sizeof(*f));
	/* The function is the symbol kallsyms names at addr: NAME, without a part's #N. */
	strscpy(f->name, p->name, min(sizeof(f->name), strcspn(p->name, "#") + 1));
	strscpy(f->new_name, p->new_name, sizeof(f->new_name));
	strscpy(f->old_owner, mod->name, sizeof(f->old_owner));
	strscpy(f->new_owner, p->new_owner, sizeof(f->new_owner));
	f->old_addr = addr;
	f->old_size = size;
	f->new_addr = p->new_addr;
	f->new_size = p->new_size;
	f->bound = true;
	ret = tsplice_stage_fentry(f, msg);
	if (!ret)
		ret = tsplice_stage_jmp(f, msg);
	if (ret)
		return ret;
	/* The running bytes were just proven: they are what apply's checks expect. */
	f->expected_len = min_t(unsigned long, TSPLICE_MAX_EXPECTED, size);
	memcpy(f->expected, running, f->expected_len);
	memcpy(f->orig, f->expected + f->site, TSPLICE_JMP_SIZE);
	if (tsplice_refuse_replaced(f, NULL, msg))
		return -EBUSY;
	ret = tsplice_check_bytes(f, msg);
	if (ret)
		return ret;
	if (!try_module_get(p->new_mod)) {
		tsplice_refuse(msg, "module-going", "%s: its update module is going", p->name);
		return -EBUSY;
	}
	f->new_mod = p->new_mod;
	if (p->pin_addr) {
		if (!try_module_get(mod)) {
			tsplice_put_func_modules(f);
			tsplice_refuse(msg, "module-going", "%s: its module %s is going", p->name, mod->name);
			return -EBUSY;
		}
		f->old_mod = mod;
	}
	return 0;
}

/*
 * Forgets the bound functions of @module in @u (no writes): its parts wait again, except,
 * with @keep_refused, those refused on this load (a load refused with refuse_load=Y).
 */
static void tsplice_unbind(struct tsplice_update *u, const char *module, bool keep_refused)
{
	unsigned int i, kept = 0;

	for (i = 0; i < u->nfuncs; i++) {
		struct tsplice_func *f = &u->funcs[i];

		if (f->bound && !strcmp(f->old_owner, module)) {
			tsplice_put_func_modules(f);
			continue;
		}
		if (kept != i)
			u->funcs[kept] = *f;
		kept++;
	}
	u->nfuncs = kept;
	for (i = 0; i < u->nparts; i++) {
		if (strcmp(u->parts[i].module, module) ||
		    (keep_refused && u->parts[i].state == TS_PART_REFUSED))
			continue;
		u->parts[i].state = TS_PART_WAITING;
		u->parts[i].bound_addr = 0;
		tsplice_report_clear(&u->parts[i].why);
	}
}

/*
 * Binds every part of @u in @mod: each copy proven, the late relocations written, one
 * function added per part. All or nothing: the first part refused leaves every part of @mod
 * refused with that reason (a fix is not half-applied to one module) and is returned.
 * @first: the index in u->funcs of the first function added, for the caller's writes.
 */
static int tsplice_bind(struct tsplice_update *u, struct module *mod, unsigned int *first,
			struct tsplice_report *msg)
{
	struct tsplice_func *f = kmalloc(sizeof(*f), GFP_KERNEL);
	unsigned int i, bound = 0;
	int ret = 0;

	*first = u->nfuncs;
	if (!f) {
		tsplice_refuse(msg, "no-memory", "out of memory");
		return -ENOMEM;
	}
	/* First every copy is proven, so that a refusal writes nothing... */
	for (i = 0; i < u->nparts && !ret; i++) {
		if (strcmp(u->parts[i].module, mod->name) || u->parts[i].state == TS_PART_BOUND)
			continue;
		ret = tsplice_part_func(&u->parts[i], mod, f, msg);
		if (!ret)
			tsplice_put_func_modules(f);
	}
	/* ...then the relocations are written and the functions made again, to keep. */
	if (!ret)
		ret = tsplice_write_lates(u, mod, msg);
	for (i = 0; i < u->nparts && !ret; i++) {
		struct tsplice_part *p = &u->parts[i];

		if (strcmp(p->module, mod->name) || p->state == TS_PART_BOUND)
			continue;
		ret = tsplice_part_func(p, mod, f, msg);
		if (!ret && tsplice_add_func(u, f)) {
			tsplice_put_func_modules(f);
			tsplice_refuse(msg, "no-memory", "out of memory");
			ret = -ENOMEM;
		}
		if (!ret) {
			p->state = TS_PART_BOUND;
			p->bound_addr = f->old_addr;
			p->loads++;
			bound++;
		}
	}
	kfree(f);
	if (ret) {
		tsplice_unbind(u, mod->name, false);
		for (i = 0; i < u->nparts; i++) {
			if (strcmp(u->parts[i].module, mod->name))
				continue;
			u->parts[i].state = TS_PART_REFUSED;
			u->parts[i].why = *msg;
		}
		pr_warn("update=%s module=%s reason=%s%s\n", u->id, mod->name, msg->reason ?: "failed",
			msg->fields);
	}
	return ret;
}

/*
 * Before apply's checks: binds the parts of modules that are live now. A module being loaded
 * or unloaded is left to the notifier, which waits for tsplice_mutex. A copy that differs
 * refuses the apply: the tool proved the same module against the pre code a moment ago.
 */
int tsplice_bind_loaded(struct tsplice_update *u, struct tsplice_report *msg)
{
	unsigned int i, first;
	int ret = 0;

	for (i = 0; i < u->nparts && !ret; i++) {
		struct tsplice_part *p = &u->parts[i];
		struct module *mod;

		if (p->state == TS_PART_BOUND)
			continue;
		preempt_disable();
		mod = tsplice_ks.find_module(p->module);
		if (mod && (mod->state != MODULE_STATE_LIVE || !try_module_get(mod)))
			mod = NULL;
		preempt_enable();
		if (!mod && p->pin_addr) {
			tsplice_refuse(msg, "module-gone", "%s: its module %s, which the new code was bound to, is not loaded",
				       p->name, p->module);
			tsplice_field(msg, "function", "%s", p->name);
			tsplice_field(msg, "module", "%s", p->module);
			return -ESTALE;
		}
		if (!mod) {
			p->state = TS_PART_WAITING;
			continue;
		}
		ret = tsplice_bind(u, mod, &first, msg);
		module_put(mod);
	}
	return ret;
}

/* Frees the parts and late relocations of an update being forgotten. */
void tsplice_free_parts(struct tsplice_update *u)
{
	unsigned int i;

	for (i = 0; i < u->nparts; i++)
		tsplice_part_release(&u->parts[i]);
	kvfree(u->parts);
	kvfree(u->lates);
	u->parts = NULL;
	u->lates = NULL;
	u->nparts = u->nlates = 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The module notifier                                                                      */
/* ---------------------------------------------------------------------------------------- */

/*
 * MODULE_STATE_COMING of a module an applied update has parts in: bind them and write their
 * jmps now. Nothing runs the module's code yet (its init comes after the notifiers), so the
 * sites are written with text_poke, no stop needed.
 */
static int tsplice_module_coming(struct tsplice_update *u, struct module *mod)
{
	struct tsplice_report *msg;
	unsigned int i, first;
	bool has = false;
	int ret;

	for (i = 0; i < u->nparts; i++)
		has |= !strcmp(u->parts[i].module, mod->name);
	if (!has || u->state != TS_APPLIED)
		return 0;
	msg = kzalloc(sizeof(*msg), GFP_KERNEL);
	if (!msg) {
		pr_err("update=%s module=%s reason=no-memory: loaded unpatched\n", u->id, mod->name);
		return tsplice_refuse_load ? -ENOMEM : 0;
	}
	ret = tsplice_bind(u, mod, &first, msg);
	if (!ret) {
		mutex_lock(tsplice_ks.text_mutex);
		for (i = first; i < u->nfuncs; i++)
			tsplice_ks.text_poke((void *)(u->funcs[i].old_addr + u->funcs[i].site),
					     u->funcs[i].jmp, TSPLICE_JMP_SIZE);
		mutex_unlock(tsplice_ks.text_mutex);
		pr_info("update=%s module=%s bound=%u: patched as it loads\n", u->id, mod->name,
			u->nfuncs - first);
	} else {
		pr_warn("update=%s module=%s %s: %s\n", u->id, mod->name,
			tsplice_refuse_load ? "refused to load (refuse_load=Y)" : "loaded unpatched", msg->text);
	}
	kfree(msg);
	return tsplice_refuse_load ? ret : 0;
}

/* Every update's parts in a module that comes or goes; under tsplice_mutex like every command. */
static int tsplice_module_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	struct module *mod = data;
	struct tsplice_update *u;
	int ret = 0;

	if (action != MODULE_STATE_COMING && action != MODULE_STATE_GOING)
		return NOTIFY_DONE;
	mutex_lock(&tsplice_mutex);
	list_for_each_entry(u, &tsplice_updates, list) {
		if (action == MODULE_STATE_GOING)
			tsplice_unbind(u, mod->name, false);
		else if (!ret)
			ret = tsplice_module_coming(u, mod);
	}
	/*
	 * A refused load (refuse_load=Y): the loader frees the module without calling us at
	 * GOING, so what earlier updates bound in it on this load is forgotten here.
	 */
	if (ret)
		list_for_each_entry(u, &tsplice_updates, list)
			tsplice_unbind(u, mod->name, true);
	mutex_unlock(&tsplice_mutex);
	return ret ? notifier_from_errno(ret) : NOTIFY_OK;
}

static struct notifier_block tsplice_module_nb = {
	.notifier_call = tsplice_module_notify,
};

/* At load, after the internals are resolved. */
int tsplice_late_init(void)
{
	return register_module_notifier(&tsplice_module_nb);
}

/* At unload: no update is in the list then, so no part. */
void tsplice_late_exit(void)
{
	unregister_module_notifier(&tsplice_module_nb);
}
