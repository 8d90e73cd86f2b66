/**
 * The changed names of a header closed over the top-level items of the other headers the
 * units see: an item that mentions a changed name (or could paste one, or sits under a
 * conditional that tests one) has its own names changed too, to a fixpoint. Each name keeps
 * the header's own changed names it stands for (its roots), so that a reached unit can be told
 * which change reaches it. header-reach.ts then matches the units' text against the closure.
 *
 * A header is read for its identifiers first and parsed into items only when it names
 * something changed: most of the thousands of headers a unit sees never are.
 */
import { IDENTIFIERS, stripComments } from './c-tokens.js';
import { identOf, parseItems, type Item } from './header-items.js';
import { affixes, fragmentKey, fragmentMatches, fragmentRest, isTailName, pasteKeysOf, segmentRuns, tailName, type Fragment } from './token-pastes.js';

interface Paste {
  key: string;
  fragment: Fragment;
  item: Item;
}

/** One file the closure reads: its identifiers first, its items only when it names something changed. */
export interface FileFacts {
  ids: Set<string>;
  text: string;
  pasteKeys: Set<string>;
  /** Identifier -> the items that mention it. */
  byId?: Map<string, Item[]>;
  pastes?: Paste[];
}

export class NameClosure {
  /** Each changed name, with the header's own changed names it stands for (its roots). */
  private readonly roots = new Map<string, Set<string>>();
  private readonly exact = new Set<string>();
  private readonly tails = new Set<string>();
  /** Prefix and suffix -> the exact changed names that have it, for pastes. */
  private readonly affixIndex = new Map<string, string[]>();
  /** A changed tag counts wherever its identifier is written (a macro may put `struct` in front). */
  private readonly tagsByIdent = new Map<string, string[]>();
  /** The names added, or given new roots, since the closure last looked for them. */
  private fresh: string[] = [];
  /** Items of other files that emit code and use a changed name reach every unit including that file: per file, the roots they use. */
  readonly emitting = new Map<string, Set<string>>();

  /**
   * `read` gives a file's text; `facts` keeps what was read of each file, across the headers
   * of one patch (the texts do not change between them).
   */
  constructor(
    private readonly read: (file: string) => string,
    private readonly facts: Map<string, FileFacts>,
  ) {}

  /** How many names the closure holds: the header's own and those that use them. */
  get size(): number {
    return this.roots.size;
  }

  /** `name` changed because of the header's own changed names `from`. */
  add(name: string, from: Iterable<string>): void {
    let set = this.roots.get(name);
    let grew = false;
    if (!set) {
      set = new Set();
      this.roots.set(name, set);
      if (isTailName(name)) {
        this.tails.add(name.slice(1, -1));
      } else {
        this.exact.add(name);
        const ident = identOf(name);
        if (ident !== name) this.tagsByIdent.set(ident, [...(this.tagsByIdent.get(ident) ?? []), name]);
        for (const a of affixes(ident)) {
          const list = this.affixIndex.get(a);
          if (list) list.push(name);
          else this.affixIndex.set(a, [name]);
        }
      }
      grew = true;
    }
    for (const r of from) {
      if (!set.has(r)) {
        set.add(r);
        grew = true;
      }
    }
    if (grew) this.fresh.push(name);
  }

  /**
   * The roots of the changed names among `ids` and of those `fragments` can paste; with
   * `rests`, a paste of one literal and one parameter counts only where the rest of the name
   * is among `ids` too (see `fragmentRest`).
   */
  named(ids: Set<string> | readonly string[], fragments: readonly Fragment[], rests: boolean): Set<string> {
    const hit = new Set<string>();
    const consider = (name: string): void => {
      for (const r of this.roots.get(name) ?? []) hit.add(r);
    };
    for (const id of ids) {
      if (this.exact.has(id)) consider(id);
      const ident = identOf(id);
      for (const tag of this.tagsByIdent.get(ident) ?? []) consider(tag);
      if (this.tails.size > 0) for (const run of segmentRuns(ident)) if (this.tails.has(run)) consider(tailName(run));
    }
    for (const f of fragments) {
      const key = fragmentKey(f);
      for (const name of key ? (this.affixIndex.get(key) ?? []) : []) {
        if (!fragmentMatches(f, identOf(name))) continue;
        const rest = fragmentRest(f, identOf(name));
        if (rest === undefined || (rests && (Array.isArray(ids) ? ids.includes(rest) : (ids as Set<string>).has(rest)))) consider(name);
      }
    }
    return hit;
  }

  /**
   * Closes the names over the top-level items of `files`, round by round, until no name is
   * added. Returns true when it stopped early because it held more than `limit` names.
   */
  close(files: readonly string[], limit: number): boolean {
    let truncated = false;
    while (this.fresh.length > 0 && !truncated) {
      const batchExact = this.fresh.filter((n) => !isTailName(n));
      // Identifiers to look for in the files: a name, or a tag's identifier.
      const batchIdents = new Set(batchExact.map(identOf));
      const batchTails = new Set(this.fresh.filter(isTailName).map((n) => n.slice(1, -1)));
      const batchAffixes = new Map<string, string[]>();
      for (const n of batchExact) {
        for (const a of affixes(identOf(n))) {
          const list = batchAffixes.get(a);
          if (list) list.push(n);
          else batchAffixes.set(a, [n]);
        }
      }
      this.fresh = [];
      for (const file of files) {
        if (this.roots.size > limit) {
          truncated = true;
          break;
        }
        const f = this.factsOf(file);
        const hitIds: string[] = [];
        if (batchIdents.size < f.ids.size) {
          for (const name of batchIdents) if (f.ids.has(name)) hitIds.push(name);
        } else {
          for (const id of f.ids) if (batchIdents.has(id)) hitIds.push(id);
        }
        if (batchTails.size > 0) {
          for (const id of f.ids) {
            for (const run of segmentRuns(id)) {
              if (batchTails.has(run)) {
                hitIds.push(id);
                break;
              }
            }
          }
        }
        let pasting = false;
        for (const key of f.pasteKeys) if (batchAffixes.has(key)) pasting = true;
        if (hitIds.length === 0 && !pasting) continue;
        const { byId, pastes } = this.parsed(f);
        const affected = new Set<Item>();
        for (const id of hitIds) {
          for (const form of [id, `struct ${id}`, `union ${id}`, `enum ${id}`]) for (const item of byId.get(form) ?? []) affected.add(item);
        }
        for (const p of pastes) {
          for (const name of batchAffixes.get(p.key) ?? []) {
            if (!fragmentMatches(p.fragment, identOf(name))) continue;
            const rest = fragmentRest(p.fragment, identOf(name));
            // The rest, wherever it is written, may build the name through this paste.
            if (rest !== undefined) this.add(rest, this.roots.get(name) ?? []);
            else affected.add(p.item);
          }
        }
        for (const item of affected) {
          // The roots of every changed name it mentions, not only this round's.
          const all = this.named(item.mentions, item.fragments, false);
          if (all.size === 0) continue;
          for (const n of item.names) this.add(n, all);
          for (const t of item.tails) this.add(tailName(t), all);
          if (item.emits) {
            const set = this.emitting.get(file) ?? new Set<string>();
            for (const r of all) set.add(r);
            this.emitting.set(file, set);
          }
        }
      }
    }
    return truncated;
  }

  private factsOf(file: string): FileFacts {
    let f = this.facts.get(file);
    if (!f) {
      const text = stripComments(this.read(file));
      f = { ids: new Set(text.match(IDENTIFIERS) ?? []), text, pasteKeys: text.includes('##') ? pasteKeysOf(text) : new Set() };
      this.facts.set(file, f);
    }
    return f;
  }

  private parsed(f: FileFacts): { byId: Map<string, Item[]>; pastes: Paste[] } {
    if (!f.byId || !f.pastes) {
      f.byId = new Map();
      f.pastes = [];
      for (const item of parseItems(f.text)) {
        for (const id of item.mentions) {
          const list = f.byId.get(id);
          if (list) list.push(item);
          else f.byId.set(id, [item]);
        }
        for (const fragment of item.fragments) {
          const key = fragmentKey(fragment);
          if (key) f.pastes.push({ key, fragment, item });
        }
      }
    }
    return { byId: f.byId, pastes: f.pastes };
  }
}
