/**
 * What changed between a header's pre and post text, item by item: the names whose
 * definition changed, the includes added or removed, and the changes no name carries (which
 * reach every includer). A change in layout or comments changes no item and so nothing.
 */
import { parseItems, type Item } from './header-items.js';
import { tailName } from './token-pastes.js';

/** Per name (tails as `*tail*`), the keys of the items that define it, in order. */
function keyed(items: readonly Item[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (name: string, key: string): void => {
    const list = out.get(name);
    if (list) list.push(key);
    else out.set(name, [key]);
  };
  for (const item of items) {
    for (const name of item.names) add(name, item.keys.get(name) ?? item.text);
    for (const tail of item.tails) add(tailName(tail), item.text);
  }
  return out;
}

export interface HeaderChange {
  header: string;
  /** The names (tails as `*tail*`) whose definition changed, was added or was removed. */
  names: string[];
  /** `#include` lines added or removed, as written. */
  includesAdded: string[];
  includesRemoved: string[];
  /** Changes no name carries (an `asm`, a `#pragma`, code or data emitted in every includer, an item nothing is found in): they reach every includer. */
  unnamed: string[];
  /** Macros whose top-level invocations changed: a unit that defines one itself expands them (X-macros). */
  invokes: string[];
  /** The header is a trace-event header and its events changed: the units that define CREATE_TRACE_POINTS instantiate them. */
  traceEvents: boolean;
}

function multiset(items: readonly Item[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const item of items) out.set(item.text, (out.get(item.text) ?? 0) + 1);
  return out;
}

function describe(item: Item, side: 'pre' | 'post'): string {
  const text = item.text.replace(/^.* :: /, '');
  return `${side === 'pre' ? 'removed' : 'changed'} at line ${item.line}: ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`;
}

/** What changed between a header's pre and post text, item by item. */
export function headerChange(header: string, pre: string, post: string): HeaderChange {
  const before = parseItems(pre);
  const after = parseItems(post);
  const preKeys = keyed(before);
  const postKeys = keyed(after);
  const names = new Set<string>();
  for (const name of new Set([...preKeys.keys(), ...postKeys.keys()])) {
    if ((preKeys.get(name) ?? []).join('\u0000') !== (postKeys.get(name) ?? []).join('\u0000')) names.add(name);
  }
  const preSet = multiset(before);
  const postSet = multiset(after);
  const change: HeaderChange = { header, names: [], includesAdded: [], includesRemoved: [], unnamed: [], invokes: [], traceEvents: false };
  const invokes = new Set<string>();
  const unnamed: { pre: Item[]; post: Item[] } = { pre: [], post: [] };
  const visit = (item: Item, side: 'pre' | 'post', other: Map<string, number>): void => {
    const left = other.get(item.text) ?? 0;
    if (left > 0) {
      other.set(item.text, left - 1);
      return;
    }
    if (item.kind === 'include' && item.include !== undefined) {
      (side === 'pre' ? change.includesRemoved : change.includesAdded).push(item.include);
      return;
    }
    for (const m of item.invokes) if (m !== 'asm') invokes.add(m);
    if (item.emits || (item.names.length === 0 && item.tails.length === 0 && !item.inert)) unnamed[side].push(item);
  };
  // Each side's items matched against the other's, one for one.
  const postLeft = new Map(postSet);
  for (const item of before) visit(item, 'pre', postLeft);
  const preLeft = new Map(preSet);
  for (const item of after) visit(item, 'post', preLeft);
  // A changed item is one left over on each side: named once, by its new text.
  const changedLines = new Set(unnamed.post.map((i) => i.line));
  change.unnamed = [...unnamed.post.map((i) => describe(i, 'post')), ...unnamed.pre.filter((i) => !changedLines.has(i.line)).map((i) => describe(i, 'pre'))];
  change.names = [...names].sort();
  change.invokes = [...invokes].sort();
  change.traceEvents = invokes.size > 0 && /#\s*include\s*<trace\/define_trace\.h>/.test(pre + post);
  return change;
}
