/**
 * The top-level items of a header on a small text: where items split, the names each defines,
 * and what each mentions. No kernel tree needed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseItems } from './header-items.js';

describe('the items of a header', () => {
  it('splits definitions, prototypes, macros and tags, with the names each defines', () => {
    const items = parseItems(`
#ifndef _X_H
#define _X_H
#include <linux/types.h>
/* a comment */
struct foo;
extern __printf(3, 4) int dev_err_probe(const struct device *dev, int err, const char *fmt, ...);
static inline bool mem_is_zero(const void *s, size_t n)
{
	return !memchr_inv(s, 0, n);
}
typedef int (*handler_t)(struct foo *f);
struct bar { int a; enum { INNER_A, INNER_B } kind; } __packed;
extern unsigned long x, y __read_mostly;
DECLARE_PER_CPU(u32, kstack_offset);
#define ADD(a, b) \\
	((a) + (b))
static enum s_alloc __visit_domain_allocation_hell(struct s_data *d)
{
	memset(d, 0, sizeof(*d));
	return sa_rootdomain;
}
#endif
`);
    const summary = items.map((i) => `${i.kind}: ${[...i.names, ...i.tails.map((t) => `*${t}*`)].join(',')}`);
    assert.deepEqual(summary, [
      'define: _X_H',
      'include: ',
      'declaration: ',
      'declaration: dev_err_probe',
      'declaration: mem_is_zero',
      'declaration: handler_t',
      'declaration: struct bar,INNER_A,INNER_B',
      'declaration: x,y',
      'declaration: *kstack_offset*',
      'define: ADD',
      'declaration: __visit_domain_allocation_hell',
    ]);
    // The forward declaration changes nothing; the prototype's __printf is an invocation.
    assert.equal(items[2]?.inert, true);
    assert.deepEqual(items[3]?.invokes, ['__printf']);
    // Conditionals are each item's context; a parameter is no mention.
    assert.match(items[4]?.text ?? '', /^ifndef _X_H :: static inline bool mem_is_zero/);
    assert.deepEqual(items[9]?.mentions, ['ifndef', '_X_H']);
  });
});
