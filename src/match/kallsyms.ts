/**
 * The running kernel's symbol table, from /proc/kallsyms: every symbol's address after KASLR,
 * statics and duplicate names included (about 320 text names occur more than once). There is
 * no size column; the distance to the next symbol bounds a function's size, and matching
 * against the update's pre code tells the real one.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';

export interface KernelSymbol {
  name: string;
  runningAddress: bigint;
  /** The kallsyms type letter: t/T text, d/D data, r/R read-only, b/B bss, … */
  type: string;
  /** Module name for symbols of loaded modules, undefined for vmlinux. */
  module?: string;
}

export class KernelSymbols {
  private readonly byName = new Map<string, KernelSymbol[]>();
  /** Text symbols sorted by address, for "what follows this function". */
  private readonly text: KernelSymbol[];

  constructor(readonly symbols: KernelSymbol[]) {
    for (const s of symbols) {
      const list = this.byName.get(s.name);
      if (list) list.push(s);
      else this.byName.set(s.name, [s]);
    }
    this.text = symbols.filter((s) => isText(s)).sort((a, b) => (a.runningAddress < b.runningAddress ? -1 : a.runningAddress > b.runningAddress ? 1 : 0));
  }

  /** Every symbol with this name (several for duplicate statics). */
  lookup(name: string): KernelSymbol[] {
    return this.byName.get(name) ?? [];
  }

  /** The one vmlinux text symbol with this name; a UserError when there is none or several. */
  uniqueFunction(name: string): KernelSymbol {
    const found = this.lookup(name).filter((s) => isText(s) && s.module === undefined);
    if (found.length === 0) throw new UserError(`The running kernel has no function named ${name} in /proc/kallsyms.`);
    if (found.length > 1) {
      throw new UserError(`The running kernel has ${found.length} functions named ${name}; matching is needed to choose.`);
    }
    return found[0] as KernelSymbol;
  }

  /** Bytes from a text symbol to the next text symbol at a higher address: an upper bound on its size. */
  extent(symbol: KernelSymbol): number {
    let lo = 0;
    let hi = this.text.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.text[mid] as KernelSymbol).runningAddress <= symbol.runningAddress) lo = mid + 1;
      else hi = mid;
    }
    const next = this.text[lo];
    return next ? Number(next.runningAddress - symbol.runningAddress) : 0;
  }
}

export function isText(symbol: KernelSymbol): boolean {
  return symbol.type === 't' || symbol.type === 'T';
}

/** Parses the text of /proc/kallsyms. All-zero addresses mean the reader lacks the right to see them. */
export function parseKallsyms(text: string, source = '/proc/kallsyms'): KernelSymbols {
  const symbols: KernelSymbol[] = [];
  let nonZero = false;
  for (const [i, line] of text.split('\n').entries()) {
    if (!line) continue;
    const m = /^([0-9a-f]+) (\S) (\S+)(?:\t\[(\S+)\])?$/.exec(line);
    if (!m?.[1] || !m[2] || !m[3]) throw new UserError(`${source}: line ${i + 1} is not a kallsyms line: '${line.slice(0, 80)}'.`);
    const runningAddress = BigInt(`0x${m[1]}`);
    if (runningAddress !== 0n) nonZero = true;
    symbols.push({ name: m[3], runningAddress, type: m[2], ...(m[4] ? { module: m[4] } : {}) });
  }
  if (symbols.length > 0 && !nonZero) {
    throw new UserError(`${source} shows every address as zero: run as root (kptr_restrict hides them otherwise).`);
  }
  return new KernelSymbols(symbols);
}

export function readKallsyms(path = '/proc/kallsyms'): KernelSymbols {
  return parseKallsyms(readFileSync(path, 'utf8'), path);
}
