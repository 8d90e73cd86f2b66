/**
 * The running kernel's symbol table, from /proc/kallsyms: every symbol's address after KASLR,
 * statics and duplicate names included (about 320 text names occur more than once). There is
 * no size column; the distance to the next symbol bounds a function's size, and matching
 * against the update's pre code tells the real one.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../host/errors.js';

export interface KernelSymbol {
  name: string;
  runningAddress: bigint;
  /** The kallsyms type letter: t/T text, d/D data, r/R read-only, b/B bss, … */
  type: string;
  /** Module name for symbols of loaded modules, undefined for vmlinux. */
  module?: string;
}

export class KernelSymbols {
  /** One symbol, or the list of several with one name: no array for each of the 100,000 names. */
  private readonly byName = new Map<string, KernelSymbol | KernelSymbol[]>();
  /** Text symbols sorted by address, for "what follows this function"; sorted on first use. */
  private sortedText: KernelSymbol[] | undefined;
  /** The modules that have symbols; built on first use. */
  private modules: Set<string> | undefined;

  constructor(readonly symbols: KernelSymbol[]) {
    for (const s of symbols) {
      const known = this.byName.get(s.name);
      if (known === undefined) this.byName.set(s.name, s);
      else if (Array.isArray(known)) known.push(s);
      else this.byName.set(s.name, [known, s]);
    }
  }

  /** Whether a loaded module has any symbol in the table (a module without symbols is not expected). */
  hasModule(module: string): boolean {
    this.modules ??= new Set(this.symbols.flatMap((s) => (s.module !== undefined ? [s.module] : [])));
    return this.modules.has(module);
  }

  /** Every symbol with this name (several for duplicate statics). */
  lookup(name: string): KernelSymbol[] {
    const known = this.byName.get(name);
    return known === undefined ? [] : Array.isArray(known) ? known : [known];
  }

  /**
   * How the core module names the copy of `name` at `address` in the loaded module `module`
   * (kmod/late.c, tsplice_module_symbol): the bare name when the module has it once, else
   * `NAME#N`, its place (from 1) among the module's symbols of that name. kallsyms lists a
   * module's symbols in the order of its file's symbol table, which is the order the core
   * module counts in when the module loads again. Undefined when no symbol of the module by that
   * name is at `address`.
   */
  moduleCopyName(module: string, name: string, address: bigint): string | undefined {
    const copies = this.lookup(name).filter((s) => s.module === module);
    const place = copies.findIndex((s) => s.runningAddress === address);
    if (place < 0) return undefined;
    return copies.length === 1 ? name : `${name}#${place + 1}`;
  }

  /**
   * The one text symbol with this name: in `module` when given (`vmlinux` for the kernel
   * image), else in vmlinux, else in the one loaded module that has it. A UserError when there
   * is none or several.
   */
  uniqueFunction(name: string, module?: string): KernelSymbol {
    const text = this.lookup(name).filter((s) => isText(s));
    const where = module === undefined || module === 'vmlinux' ? undefined : module;
    let found = text.filter((s) => s.module === where);
    if (module === undefined && found.length === 0) found = text;
    const inWhat = module === undefined ? '' : ` in ${module}`;
    if (found.length === 0) throw new UserError(`The running kernel has no function named ${name}${inWhat} in /proc/kallsyms.`, { kind: 'no-such-function', function: name, ...(where ? { object: where } : {}) });
    if (found.length > 1) {
      const modules = [...new Set(found.map((s) => s.module ?? 'vmlinux'))];
      const choose = module === undefined && modules.length > 1 ? ` (in ${modules.join(', ')}: choose with --module)` : '; matching is needed to choose';
      throw new UserError(`The running kernel has ${found.length} functions named ${name}${inWhat}${choose}.`, { kind: 'ambiguous', function: name });
    }
    return found[0] as KernelSymbol;
  }

  /** Bytes from a text symbol to the next text symbol at a higher address: an upper bound on its size. */
  extent(symbol: KernelSymbol): number {
    const text = (this.sortedText ??= this.symbols
      .filter((s) => isText(s))
      .sort((a, b) => (a.runningAddress < b.runningAddress ? -1 : a.runningAddress > b.runningAddress ? 1 : 0)));
    let lo = 0;
    let hi = text.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((text[mid] as KernelSymbol).runningAddress <= symbol.runningAddress) lo = mid + 1;
      else hi = mid;
    }
    const next = text[lo];
    return next ? Number(next.runningAddress - symbol.runningAddress) : 0;
  }
}

export function isText(symbol: KernelSymbol): boolean {
  return symbol.type === 't' || symbol.type === 'T';
}

/**
 * Parses the text of /proc/kallsyms (about 100,000 lines; in the emulated lab guest every
 * microsecond per line counts, so this splits by hand instead of with a regular expression).
 * All-zero addresses mean the reader lacks the right to see them.
 */
export function parseKallsyms(text: string, source = '/proc/kallsyms'): KernelSymbols {
  const symbols: KernelSymbol[] = [];
  let nonZero = false;
  let lineNumber = 0;
  let at = 0;
  while (at < text.length) {
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    lineNumber++;
    if (end > at) {
      const firstSpace = text.indexOf(' ', at);
      const secondSpace = firstSpace < 0 ? -1 : text.indexOf(' ', firstSpace + 1);
      const notALine = (): UserError =>
        new UserError(`${source}: line ${lineNumber} is not a kallsyms line: '${text.slice(at, Math.min(end, at + 80))}'.`, {
          kind: 'bad-kernel-record',
          object: source,
          offset: at,
          reason: `line ${lineNumber} is not a kallsyms line`,
        });
      if (firstSpace <= at || secondSpace !== firstSpace + 2 || secondSpace >= end - 1) throw notALine();
      const hex = text.slice(at, firstSpace);
      const runningAddress = BigInt(`0x${hex}`);
      if (runningAddress !== 0n) nonZero = true;
      // Module symbols end in "\t[module]"; look for the tab only inside this line.
      const tail = text.slice(secondSpace + 1, end);
      const tabInTail = tail.indexOf('\t');
      const nameEnd = tabInTail >= 0 ? secondSpace + 1 + tabInTail : end;
      let module: string | undefined;
      if (nameEnd !== end) {
        module = /^\t\[(\S+)\]$/.exec(text.slice(nameEnd, end))?.[1];
        if (!module) throw notALine();
      }
      // One object shape for every symbol (module set or not): a property added later gives
      // V8 a second shape and slows every lookup.
      symbols.push({ name: text.slice(secondSpace + 1, nameEnd), runningAddress, type: text.charAt(firstSpace + 1), module });
    }
    at = end + 1;
  }
  if (symbols.length > 0 && !nonZero) {
    throw new UserError(`${source} shows every address as zero: run as root (kptr_restrict hides them otherwise).`, { kind: 'not-root', object: source });
  }
  return new KernelSymbols(symbols);
}

export function readKallsyms(path = '/proc/kallsyms'): KernelSymbols {
  return parseKallsyms(readFileSync(path, 'utf8'), path);
}

/**
 * The lines of one loaded module in kallsyms text (`… name\t[module]`), for a caller that
 * knows the rest already: after loading an update's module, apply needs only its new
 * functions' addresses, and parsing the whole table again costs seconds in the emulated guest.
 */
export function moduleLines(text: string, module: string): string {
  const tail = `\t[${module}]`;
  const lines: string[] = [];
  // The tail ends in "]", so "\t[nf_tables]" is never found inside "\t[nf_tables_x]".
  for (let at = text.indexOf(tail); at >= 0; at = text.indexOf(tail, at + tail.length)) {
    lines.push(text.slice(text.lastIndexOf('\n', at) + 1, at + tail.length));
  }
  return lines.join('\n');
}

/**
 * The lines of kallsyms text whose symbol has one of `names`, in the table's order: for a
 * caller that looks a few names up (the corpus's guest driver, before each apply), without
 * parsing 100,000 lines.
 */
export function linesNamed(text: string, names: Iterable<string>): string {
  const starts = new Set<number>();
  for (const name of new Set(names)) {
    if (name === '') continue;
    for (let at = text.indexOf(` ${name}`); at >= 0; at = text.indexOf(` ${name}`, at + 1)) {
      const after = at + 1 + name.length;
      // The name field: after "ADDRESS T ", ending at the line's end or at "\t[module]".
      if (text.charAt(at - 2) !== ' ' || (after < text.length && text.charAt(after) !== '\n' && text.charAt(after) !== '\t')) continue;
      starts.add(text.lastIndexOf('\n', at) + 1);
    }
  }
  return [...starts]
    .sort((a, b) => a - b)
    .map((start) => {
      const end = text.indexOf('\n', start);
      return text.slice(start, end < 0 ? text.length : end);
    })
    .join('\n');
}

/** The symbols of one loaded module only (moduleLines); none when it has no symbols. */
export function readModuleKallsyms(module: string, path = '/proc/kallsyms'): KernelSymbols {
  return parseKallsyms(moduleLines(readFileSync(path, 'utf8'), module), path);
}
