// SPDX-License-Identifier: GPL-2.0-only
/*
 * tsplice_core, shadow data: memory a fix attaches to an existing object (a task, a socket, a
 * device) by the object's address and an id, where the fix needs a field the object's layout
 * has no room for. The core module holds it, not the update, so that it outlives one update
 * and updates stacked on one another share it by id (the way livepatch's klp_shadow_* do).
 * Declared for patch authors in <linux/tsplice.h>; docs/hooks.md says how to use it.
 *
 * Lock rules: tsplice_shadow_lock (a spinlock, taken with interrupts saved) guards every
 * change to the table; lookups walk it under RCU alone, and an entry is freed after a grace
 * period, so a reader never sees freed memory. No allocation is made under the lock: an entry
 * is allocated first with the caller's gfp and dropped if another CPU added one meanwhile.
 * Nothing here sleeps except what the caller's gfp allows.
 */
#include "tsplice.h"
#include <linux/hashtable.h>
#include "include/linux/tsplice.h"

struct tsplice_shadow {
	struct hlist_node node;
	struct rcu_head rcu;
	void *obj;
	unsigned long id;
	u8 data[] __aligned(sizeof(void *));
};

#define TSPLICE_SHADOW_BITS 12
static DEFINE_HASHTABLE(tsplice_shadow_table, TSPLICE_SHADOW_BITS);
static DEFINE_SPINLOCK(tsplice_shadow_lock);

/* The entry of (@obj, @id); with RCU read or tsplice_shadow_lock held. */
static struct tsplice_shadow *tsplice_shadow_find(void *obj, unsigned long id)
{
	struct tsplice_shadow *s;

	hash_for_each_possible_rcu(tsplice_shadow_table, s, node, (unsigned long)obj) {
		if (s->obj == obj && s->id == id)
			return s;
	}
	return NULL;
}

/* The shadow data of @id attached to @obj, or NULL if there is none. */
void *tsplice_shadow_get(void *obj, unsigned long id)
{
	struct tsplice_shadow *s;

	rcu_read_lock();
	s = tsplice_shadow_find(obj, id);
	rcu_read_unlock();
	return s ? s->data : NULL;
}
EXPORT_SYMBOL_GPL(tsplice_shadow_get);

/*
 * The shadow data of @id attached to @obj; if there is none, @size zeroed bytes allocated with
 * @gfp are attached and returned. NULL if that allocation failed. When two CPUs attach at once,
 * both get the same entry.
 */
void *tsplice_shadow_get_or_alloc(void *obj, unsigned long id, size_t size, gfp_t gfp)
{
	struct tsplice_shadow *s, *fresh;
	unsigned long flags;

	rcu_read_lock();
	s = tsplice_shadow_find(obj, id);
	rcu_read_unlock();
	if (s)
		return s->data;
	fresh = kzalloc(struct_size(fresh, data, size), gfp);
	if (!fresh)
		return NULL;
	fresh->obj = obj;
	fresh->id = id;
	spin_lock_irqsave(&tsplice_shadow_lock, flags);
	s = tsplice_shadow_find(obj, id);
	if (!s)
		hash_add_rcu(tsplice_shadow_table, &fresh->node, (unsigned long)obj);
	spin_unlock_irqrestore(&tsplice_shadow_lock, flags);
	if (s) {
		kfree(fresh);
		return s->data;
	}
	return fresh->data;
}
EXPORT_SYMBOL_GPL(tsplice_shadow_get_or_alloc);

/* Detaches and frees the shadow data of @id attached to @obj, if any. */
void tsplice_shadow_free(void *obj, unsigned long id)
{
	struct tsplice_shadow *s;
	unsigned long flags;

	spin_lock_irqsave(&tsplice_shadow_lock, flags);
	s = tsplice_shadow_find(obj, id);
	if (s)
		hash_del_rcu(&s->node);
	spin_unlock_irqrestore(&tsplice_shadow_lock, flags);
	if (s)
		kfree_rcu(s, rcu);
}
EXPORT_SYMBOL_GPL(tsplice_shadow_free);

/* Detaches and frees the shadow data of @id of every object: a reverse hook's last word. */
void tsplice_shadow_free_all(unsigned long id)
{
	struct tsplice_shadow *s;
	struct hlist_node *next;
	unsigned long flags;
	int bucket;

	spin_lock_irqsave(&tsplice_shadow_lock, flags);
	hash_for_each_safe(tsplice_shadow_table, bucket, next, s, node) {
		if (s->id != id)
			continue;
		hash_del_rcu(&s->node);
		kfree_rcu(s, rcu);
	}
	spin_unlock_irqrestore(&tsplice_shadow_lock, flags);
}
EXPORT_SYMBOL_GPL(tsplice_shadow_free_all);

/* How many entries of @id there are (all ids for -1): for status and the tests. */
unsigned int tsplice_shadow_count(unsigned long id)
{
	struct tsplice_shadow *s;
	unsigned int n = 0;
	int bucket;

	rcu_read_lock();
	hash_for_each_rcu(tsplice_shadow_table, bucket, s, node)
		n += id == (unsigned long)-1 || s->id == id;
	rcu_read_unlock();
	return n;
}

/*
 * At the core module's unload: no update module is loaded any more (each one that calls these
 * functions holds a reference on tsplice_core), so nothing can reach the entries; free them.
 */
void tsplice_shadow_exit(void)
{
	struct tsplice_shadow *s;
	struct hlist_node *next;
	int bucket;

	hash_for_each_safe(tsplice_shadow_table, bucket, next, s, node) {
		hash_del_rcu(&s->node);
		kfree_rcu(s, rcu);
	}
	rcu_barrier();
}
