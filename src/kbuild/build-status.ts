/**
 * Whether a compilation unit is built into vmlinux, as a module, or not at all for the tree's
 * configuration: the one reader of kbuild's Makefiles that create, the include graph
 * (includers.ts) and the corpus (src/release/derive.ts) share.
 *
 * kbuild decides in two steps, and so does this. A folder is built only when kbuild descends
 * into it: the top Kbuild (`obj-y += kernel/`) and, for the top-level lists, the top Makefile
 * and the arch Makefile (`libs-y := lib/`, `drivers-$(CONFIG_PCI) += arch/x86/pci/`) start the
 * chain, and each folder is entered from a folder above whose Makefile lists it in obj-y or
 * obj-m (`obj-$(CONFIG_OF) += of/` with OF off: never; arch/arm/ on x86: never). Then the
 * folder's own Makefile (Kbuild when there is one) says what becomes of the unit's object:
 * obj-y or lib-y (built in), obj-m (a module), a part of a composite object (`foo-y := a.o`,
 * `foo-objs`, `foo-m` for a module), or named only under an option that is off. A unit no
 * Makefile of its folder names may be named from a folder above (`kvm-y += mmu/mmu.o`).
 *
 * The Makefiles are read as make would for these forms: assignments in order (`:=` replaces,
 * `+=` appends, `?=`), variables expanded (`$(mmu-y)`, `${CONFIG_X}`, `$(subst m,y,…)`,
 * `$(SRCARCH)`, `$(BITS)`), `ifdef`/`ifeq` on CONFIG_ values evaluated (a condition on anything
 * else takes both branches), `include $(src)/…` followed. Other make functions are not
 * evaluated: an object list that holds one leaves a unit it does not find 'unknown', as does a
 * unit no Makefile names (path variables: `$(KVM)/dirty_ring.o`), except where kbuild never
 * builds kernel code (tools/, scripts/, other architectures), which is 'not built'.
 * Configuration values come from include/config/auto.conf.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';

export type BuildStatus = 'built-in' | 'module' | 'not built' | 'unknown';

export function readAutoConf(treeDir: string): Map<string, string> {
  const config = new Map<string, string>();
  const path = join(treeDir, 'include/config/auto.conf');
  if (!existsSync(path)) return config;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) config.set(m[1], m[2].replace(/^"|"$/g, ''));
  }
  return config;
}

/** What a thing of `inner` status inside a folder of `outer` status amounts to for vmlinux. */
export function combine(outer: BuildStatus, inner: BuildStatus): BuildStatus {
  if (outer === 'not built' || inner === 'not built') return 'not built';
  if (inner === 'module' || outer === 'module') return 'module';
  if (outer === 'unknown' || inner === 'unknown') return 'unknown';
  return 'built-in';
}

interface Variable {
  /** `:=` variables hold their expanded value; `=` and `+=` ones expand when used. */
  simple: boolean;
  value: string;
  /** Set inside a conditional this does not evaluate: a condition on it is not evaluated either. */
  uncertain?: boolean;
}

/** The result of expanding make text: `opaque` when it used something this does not evaluate. */
interface Expanded {
  text: string;
  opaque: boolean;
}

/** One folder's Makefile, evaluated: the objects and folders kbuild builds there. */
interface FolderLists {
  /** Objects linked into the folder's built-in.a or lib.a, composite objects replaced by their parts. */
  builtIn: Set<string>;
  /** Objects of modules, composites replaced by their parts. */
  modules: Set<string>;
  /** Subfolders descended into through obj-y (or the top Makefile's core-y, drivers-y, libs-y). */
  dirsBuiltIn: Set<string>;
  /** Subfolders descended into through obj-m only. */
  dirsModule: Set<string>;
  /**
   * Words the Makefile names where kbuild would build them were an option on: in obj-/lib-
   * lists, in the parts of a composite object it names, in a list under an option that is off
   * (`mmu-` from `mmu-$(CONFIG_MMU)`), in kbuild's lists of things that are not kernel objects
   * (extra-y, always-y, targets, hostprogs), also under a conditional that is false. Not a
   * variable of the Makefile's own (`LEGACYDPM_MGR-y`): where that goes is not followed.
   */
  namedOff: Set<string>;
  /** The lists above hold something not evaluated (a make function): a word not found may be in it. */
  opaque: boolean;
}

/** Splits `a,b` at the top-level commas of a make function's arguments. */
function splitArguments(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(' || c === '{') depth++;
    else if (c === ')' || c === '}') depth--;
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

/** The index of the parenthesis closing the one opened at `open`, or -1. */
function closing(text: string, open: number): number {
  const close = text[open] === '{' ? '}' : ')';
  const opener = text[open];
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === opener) depth++;
    else if (text[i] === close && --depth === 0) return i;
  }
  return -1;
}

/** Logical lines of a Makefile: continuations joined, comments dropped, recipe lines marked. */
function logicalLines(text: string): { line: string; tab: boolean }[] {
  const out: { line: string; tab: boolean }[] = [];
  for (const raw of text.replace(/\\\n/g, ' ').split('\n')) {
    const hash = raw.search(/(?<!\\)#/);
    const line = hash >= 0 ? raw.slice(0, hash) : raw;
    out.push({ line, tab: raw.startsWith('\t') });
  }
  return out;
}

const ASSIGNMENT = /^(?:(?:export|override)\s+)?([^:#=\s][^:#=]*?)\s*(:=|::=|\+=|\?=|=)\s*(.*?)\s*$/;
const CONDITIONAL = /^(ifdef|ifndef|ifeq|ifneq)\s+(.*?)\s*$/;

type Active = 'yes' | 'no' | 'maybe';

/**
 * A Makefile's variables, evaluated in order. `maybe` is the state inside a conditional this
 * does not evaluate: assignments there add to a variable rather than replace it, so that
 * either branch's words are kept.
 */
class MakeEvaluator {
  readonly variables = new Map<string, Variable>();
  /** Each word of an assignment (taken or not) with the variables that hold it. */
  readonly mentions = new Map<string, Set<string>>();
  /** Each variable named as `$(V)` in an assignment (taken or not), with the variables assigned. */
  readonly references = new Map<string, Set<string>>();

  constructor(
    private readonly treeDir: string,
    private readonly config: ReadonlyMap<string, string>,
    /** Variables kbuild sets for every Makefile: SRCARCH, BITS, src, obj, srctree. */
    private readonly builtins: ReadonlyMap<string, string>,
    private readonly followIncludes: boolean,
  ) {}

  expand(text: string, depth = 0): Expanded {
    let opaque = false;
    let out = '';
    let i = 0;
    while (i < text.length) {
      const dollar = text.indexOf('$', i);
      if (dollar < 0) {
        out += text.slice(i);
        break;
      }
      out += text.slice(i, dollar);
      const next = text[dollar + 1];
      if (next === '$') {
        out += '$';
        i = dollar + 2;
        continue;
      }
      if (next !== '(' && next !== '{') {
        // $x: a one-letter variable, automatic variables of rules; nothing kbuild lists use.
        opaque = true;
        out += text.slice(dollar, dollar + 2);
        i = dollar + 2;
        continue;
      }
      const end = closing(text, dollar + 1);
      if (end < 0) {
        opaque = true;
        out += text.slice(dollar);
        break;
      }
      const inner = text.slice(dollar + 2, end);
      const r = this.reference(inner, depth);
      opaque ||= r.opaque;
      out += r.text;
      i = end + 1;
    }
    return { text: out, opaque };
  }

  /** `$(inner)`: a variable, or one of the few functions evaluated here. */
  private reference(inner: string, depth: number): Expanded {
    if (depth > 30) return { text: '', opaque: true };
    const fn = /^(subst|addprefix|addsuffix|strip)\s+([\s\S]*)$/.exec(inner);
    if (fn?.[1] && fn[2] !== undefined) {
      const args = splitArguments(fn[2]).map((a) => this.expand(a, depth + 1));
      const opaque = args.some((a) => a.opaque);
      const [a = '', b = '', c = ''] = args.map((x) => x.text);
      const words = (s: string): string[] => s.split(/\s+/).filter(Boolean);
      switch (fn[1]) {
        case 'subst':
          return { text: a === '' ? c : c.split(a).join(b), opaque };
        case 'addprefix':
          return { text: words(b).map((w) => a.trim() + w).join(' '), opaque };
        case 'addsuffix':
          return { text: words(b).map((w) => w + a.trim()).join(' '), opaque };
        default:
          return { text: words(a).join(' '), opaque };
      }
    }
    if (/\s|,/.test(inner.replace(/\$[({][^)}]*[)}]/g, ''))) {
      // Another function ($(call …), $(patsubst …), $(shell …)): not evaluated.
      return { text: `$(${inner})`, opaque: true };
    }
    const name = this.expand(inner, depth + 1);
    const variable = this.variables.get(name.text);
    if (variable) {
      const uncertain = name.opaque || variable.uncertain === true;
      if (variable.simple) return { text: variable.value, opaque: uncertain };
      const value = this.expand(variable.value, depth + 1);
      return { text: value.text, opaque: uncertain || value.opaque };
    }
    if (name.text.startsWith('CONFIG_')) return { text: this.config.get(name.text) ?? '', opaque: name.opaque };
    const builtin = this.builtins.get(name.text);
    if (builtin !== undefined) return { text: builtin, opaque: name.opaque };
    // Set elsewhere (the top Makefile, the command line) or nowhere: make gives ''.
    return { text: '', opaque: true };
  }

  /** true, false, or undefined when the condition depends on something not known here. */
  private condition(kind: string, rest: string): boolean | undefined {
    if (kind === 'ifdef' || kind === 'ifndef') {
      const name = this.expand(rest);
      if (name.opaque) return undefined;
      let defined: boolean | undefined;
      const variable = this.variables.get(name.text);
      if (variable) defined = variable.uncertain ? undefined : variable.value.trim() !== '';
      else if (name.text.startsWith('CONFIG_')) defined = (this.config.get(name.text) ?? '') !== '';
      else if (this.builtins.has(name.text)) defined = true;
      if (defined === undefined) return undefined;
      return kind === 'ifdef' ? defined : !defined;
    }
    let args: string[] | undefined;
    const paren = /^\(([\s\S]*)\)$/.exec(rest);
    if (paren?.[1] !== undefined) args = splitArguments(paren[1]);
    else {
      const quoted = /^(["'])(.*?)\1\s+(["'])(.*?)\3$/.exec(rest);
      if (quoted) args = [quoted[2] ?? '', quoted[4] ?? ''];
    }
    if (args?.length !== 2) return undefined;
    const [a, b] = args.map((x) => this.expand(x.trim()));
    if (!a || !b || a.opaque || b.opaque) return undefined;
    const equal = a.text.trim() === b.text.trim();
    return kind === 'ifeq' ? equal : !equal;
  }

  private assign(name: string, operator: string, value: string, active: Active): void {
    const expandedName = this.expand(name);
    if (expandedName.opaque && expandedName.text.includes('$')) return;
    const key = expandedName.text.trim();
    const now = this.expand(value);
    this.mention(key, now.text);
    for (const m of value.matchAll(/\$[({]([\w.-]+)[)}]/g)) {
      const holders = this.references.get(m[1] ?? '') ?? new Set<string>();
      holders.add(key);
      this.references.set(m[1] ?? '', holders);
    }
    if (active === 'no') return;
    const old = this.variables.get(key);
    if (operator === '?=' && old) return;
    const simple = operator === ':=' || operator === '::=';
    const uncertain = active === 'maybe' || old?.uncertain === true;
    if (operator === '+=' || active === 'maybe') {
      if (!old) this.variables.set(key, { simple, value: simple ? now.text : value, uncertain });
      else this.variables.set(key, { simple: old.simple, value: `${old.value} ${old.simple ? now.text : value}`, uncertain });
      return;
    }
    this.variables.set(key, { simple, value: simple ? now.text : value });
  }

  private mention(variable: string, text: string): void {
    for (const word of text.split(/\s+/)) {
      if (!word) continue;
      const w = word.replace(/^(\.\/)+/, '');
      const holders = this.mentions.get(w) ?? new Set<string>();
      holders.add(variable);
      this.mentions.set(w, holders);
    }
  }

  /** Reads `path` (tree-relative) into the variables. */
  read(path: string, level = 0): void {
    const full = join(this.treeDir, path);
    if (level > 8 || !existsSync(full)) return;
    // Per open conditional: the state outside it, of its current branch, and whether an
    // earlier branch was taken ('maybe' when that was not decided).
    const frames: { outer: Active; branch: Active; taken: Active }[] = [];
    const activeNow = (): Active => {
      let state: Active = 'yes';
      for (const f of frames) {
        if (f.outer === 'no' || f.branch === 'no') return 'no';
        if (f.branch === 'maybe') state = 'maybe';
      }
      return state;
    };
    const branchOf = (c: boolean | undefined): Active => (c === undefined ? 'maybe' : c ? 'yes' : 'no');
    let inRecipe = false;
    let inDefine = false;
    for (const { line, tab } of logicalLines(readFileSync(full, 'utf8'))) {
      if (tab && inRecipe) continue;
      const text = line.trim();
      if (text === '') continue;
      inRecipe = false;
      if (inDefine) {
        if (/^endef\b/.test(text)) inDefine = false;
        continue;
      }
      if (/^(?:(?:export|override)\s+)?define\b/.test(text)) {
        inDefine = true;
        continue;
      }
      const conditional = CONDITIONAL.exec(text);
      if (conditional?.[1]) {
        const branch = branchOf(this.condition(conditional[1], conditional[2] ?? ''));
        frames.push({ outer: activeNow(), branch, taken: branch });
        continue;
      }
      const elseLine = /^else\b\s*(.*)$/.exec(text);
      if (elseLine) {
        const frame = frames[frames.length - 1];
        if (!frame) continue;
        const chained = CONDITIONAL.exec(elseLine[1] ?? '');
        const c = chained?.[1] ? this.condition(chained[1], chained[2] ?? '') : true;
        if (frame.taken === 'yes') frame.branch = 'no';
        else if (frame.taken === 'no') frame.branch = frame.taken = branchOf(c);
        else {
          frame.branch = c === false ? 'no' : 'maybe';
          frame.taken = c === true ? 'yes' : 'maybe';
        }
        continue;
      }
      if (/^endif\b/.test(text)) {
        frames.pop();
        continue;
      }
      const active = activeNow();
      const include = /^(-?include|sinclude)\s+(.+)$/.exec(text);
      if (include?.[2]) {
        if (!this.followIncludes || active === 'no') continue;
        const target = this.expand(include[2]);
        for (const file of target.text.split(/\s+/).filter(Boolean)) {
          const rel = posix.normalize(file);
          if (!rel.startsWith('..') && !rel.startsWith('/')) this.read(rel, level + 1);
        }
        continue;
      }
      const assignment = ASSIGNMENT.exec(text);
      if (assignment?.[1] && assignment[2]) {
        this.assign(assignment[1], assignment[2], assignment[3] ?? '', active);
        continue;
      }
      // A rule: tab lines after it are its recipe.
      if (/:/.test(text) && !/^(export|unexport|override|define|endef|vpath)\b/.test(text)) inRecipe = true;
    }
  }

  /** The words of a variable's value, and whether it holds something not evaluated. */
  words(name: string): { words: string[]; opaque: boolean } {
    const variable = this.variables.get(name);
    if (!variable) return { words: [], opaque: false };
    const value = variable.simple ? { text: variable.value, opaque: /\$\(/.test(variable.value) } : this.expand(variable.value);
    const words = value.text.split(/\s+/).filter(Boolean).map((w) => w.replace(/^(\.\/)+/, ''));
    return { words, opaque: value.opaque && words.some((w) => w.includes('$')) };
  }
}

/** kbuild's variables whose words are objects or files that are not linked into vmlinux or a module. */
const KBUILD_LISTS = /^(obj|lib|extra|always|hostprogs|userprogs|targets|subdir|clean|head)(-|$)/;

/** The words of `mentions` that kbuild variables name (FolderLists.namedOff). */
function namedOff(mentions: ReadonlyMap<string, ReadonlySet<string>>, references: ReadonlyMap<string, ReadonlySet<string>>): Set<string> {
  const owners = new Set<string>();
  for (const [word, holders] of mentions) {
    if (word.endsWith('.o') && [...holders].some((h) => /^(obj|lib)-/.test(h))) owners.add(word.slice(0, -2));
  }
  const memo = new Map<string, boolean>();
  // A variable of kbuild's, a composite's parts, or one such a variable uses (`$(clk-common)`).
  const understood = (variable: string): boolean => {
    const known = memo.get(variable);
    if (known !== undefined) return known;
    memo.set(variable, false);
    const owner = /^(.+)-(y|m|objs)$/.exec(variable)?.[1];
    const result =
      KBUILD_LISTS.test(variable) || /-n?$/.test(variable) || (owner !== undefined && owners.has(owner)) || [...(references.get(variable) ?? [])].some(understood);
    memo.set(variable, result);
    return result;
  };
  const out = new Set<string>();
  for (const [word, holders] of mentions) {
    if (![...holders].some(understood)) continue;
    out.add(word);
    // A host or user program `foo` is built from foo.c (its foo.o): never part of the kernel.
    if (!word.endsWith('.o') && [...holders].some((h) => /^(hostprogs|userprogs)/.test(h))) out.add(`${word}.o`);
  }
  return out;
}

/** Where kbuild never builds kernel code for `arch`: a unit there is 'not built', named or not. */
function outsideKernel(unit: string, arch: string): boolean {
  if (/^(tools|scripts|samples|Documentation)\//.test(unit)) return true;
  return unit.startsWith('arch/') && !unit.startsWith(`arch/${arch}/`);
}

/**
 * The tree's Makefiles, read once each: `unit(file)` and `folder(dir)` answer from them.
 * One reader per tree and configuration; it caches what it reads.
 */
export class KbuildReader {
  private readonly lists = new Map<string, FolderLists | undefined>();
  private readonly folders = new Map<string, BuildStatus>([['', 'built-in']]);
  private readonly builtins: Map<string, string>;
  /** Objects named by the Makefile of a folder they are not under (see namedElsewhere), by tree path. */
  private elsewhere: Map<string, { status: BuildStatus; folder: string; word: string }> | undefined;

  constructor(
    readonly treeDir: string,
    readonly config: ReadonlyMap<string, string> = readAutoConf(treeDir),
    readonly arch = 'x86',
  ) {
    const bits = config.get('CONFIG_64BIT') === 'y' ? '64' : '32';
    this.builtins = new Map([
      ['SRCARCH', arch],
      ['ARCH', arch],
      ['BITS', bits],
      ['srctree', '.'],
      ['objtree', '.'],
    ]);
  }

  /** The file kbuild reads for a folder: its Kbuild when there is one, else its Makefile. */
  private kbuildFile(dir: string): string | undefined {
    return ['Kbuild', 'Makefile'].map((f) => (dir === '' ? f : `${dir}/${f}`)).find((p) => existsSync(join(this.treeDir, p)));
  }

  private evaluator(dir: string, followIncludes = true): MakeEvaluator {
    const builtins = new Map(this.builtins);
    builtins.set('src', dir === '' ? '.' : dir);
    builtins.set('obj', dir === '' ? '.' : dir);
    return new MakeEvaluator(this.treeDir, this.config, builtins, followIncludes);
  }

  /** What the folder's Makefile builds, or undefined when it has none. */
  private folderLists(dir: string): FolderLists | undefined {
    if (this.lists.has(dir)) return this.lists.get(dir);
    const file = this.kbuildFile(dir);
    let result: FolderLists | undefined;
    if (file) {
      const make = this.evaluator(dir);
      make.read(file);
      result = { builtIn: new Set(), modules: new Set(), dirsBuiltIn: new Set(), dirsModule: new Set(), namedOff: namedOff(make.mentions, make.references), opaque: false };
      const objY = make.words('obj-y');
      const objM = make.words('obj-m');
      const libs = [make.words('lib-y'), make.words('lib-m')];
      result.opaque = [objY, objM, ...libs].some((l) => l.opaque);
      const inY = new Set(objY.words);
      for (const word of objY.words) if (word.endsWith('/')) result.dirsBuiltIn.add(word.slice(0, -1));
      for (const word of objM.words) if (word.endsWith('/') && !inY.has(word)) result.dirsModule.add(word.slice(0, -1));
      // A composite object (kbuild's multi-obj-y/-m) is replaced by its parts.
      const parts = (object: string, suffixes: string[], into: Set<string>): void => {
        const base = object.replace(/\.o$/, '');
        const found = suffixes.map((s) => make.words(`${base}${s}`));
        const composite = [...found, make.words(`${base}-`)].some((f) => f.words.length > 0);
        if (!object.endsWith('.o') || !composite) {
          into.add(object);
          return;
        }
        for (const f of found) {
          result!.opaque ||= f.opaque;
          for (const w of f.words) into.add(w);
        }
      };
      for (const object of objY.words) if (!object.endsWith('/')) parts(object, ['-objs', '-y'], result.builtIn);
      for (const object of objM.words) if (!object.endsWith('/') && !inY.has(object)) parts(object, ['-objs', '-y', '-m'], result.modules);
      for (const lib of libs) for (const w of lib.words) if (!inY.has(w)) result.builtIn.add(w);
      if (dir === '') this.addTopLevel(result);
    }
    this.lists.set(dir, result);
    return result;
  }

  /**
   * The folders the top Makefile and the arch Makefile it includes add to the top Kbuild's
   * obj-y: core-y, drivers-y and drivers-m (ARCH_CORE, ARCH_DRIVERS) and the folders of libs-y
   * (ARCH_LIB). Each file is read alone: the top Makefile's other includes are build machinery.
   */
  private addTopLevel(result: FolderLists): void {
    for (const file of ['Makefile', `arch/${this.arch}/Makefile`]) {
      const make = this.evaluator('', false);
      make.read(file);
      for (const name of ['core-y', 'drivers-y', 'drivers-m', 'libs-y']) {
        for (const word of make.words(name).words) if (word.endsWith('/')) result.dirsBuiltIn.add(word.slice(0, -1));
      }
    }
  }

  /**
   * Whether kbuild descends into `dir` and links what it builds there into vmlinux: 'built-in'
   * when a folder above lists it through obj-y and is itself built in, 'module' when it is
   * reached only through obj-m, 'not built' when no folder above lists it.
   */
  folder(dir: string): BuildStatus {
    const known = this.folders.get(dir);
    if (known) return known;
    let best: BuildStatus = 'not built';
    for (let above = parentOf(dir); ; above = parentOf(above)) {
      const lists = this.folderLists(above);
      const rel = above === '' ? dir : dir.slice(above.length + 1);
      const own: BuildStatus | undefined = lists?.dirsBuiltIn.has(rel) ? 'built-in' : lists?.dirsModule.has(rel) ? 'module' : undefined;
      if (own) {
        const status = combine(this.folder(above), own);
        if (status === 'built-in') {
          best = status;
          break;
        }
        if (status === 'module') best = status;
      }
      if (above === '') break;
    }
    this.folders.set(dir, best);
    return best;
  }

  /**
   * The status of `unit` (a tree-relative .c or .S file) for vmlinux: what the nearest
   * Makefile that names its object says (its own folder's, or one above naming `sub/x.o`),
   * combined with whether kbuild reaches that Makefile's folder.
   */
  unit(unit: string): BuildStatus {
    const object = unit.replace(/\.[cS]$/, '.o');
    let hidden = false;
    for (let at = parentOf(unit); ; at = parentOf(at)) {
      const lists = this.folderLists(at);
      // A list kbuild reads that this could not evaluate may hold it.
      hidden ||= lists?.opaque === true && this.folder(at) !== 'not built';
      const word = at === '' ? object : object.slice(at.length + 1);
      let own: BuildStatus = 'unknown';
      if (lists) {
        if (lists.builtIn.has(word)) own = 'built-in';
        else if (lists.modules.has(word)) own = 'module';
        else if (lists.namedOff.has(word) && !lists.opaque) own = 'not built';
      }
      if (own === 'not built') return own;
      if (own !== 'unknown') return combine(this.folder(at), own);
      if (at !== '') continue;
      if (outsideKernel(unit, this.arch)) return 'not built';
      const elsewhere = this.namedElsewhere(object);
      if (elsewhere) return elsewhere;
      // No Makefile kbuild reads names it, and kbuild never enters its folder (`subdir-y +=
      // libstub`: the boot stub); in a folder it enters, it may be #included by a unit.
      return this.folder(parentOf(unit)) === 'not built' && !hidden ? 'not built' : 'unknown';
    }
  }

  /**
   * The status of an object that the Makefile of a folder it is not under names with `../`
   * (amdgpu's `amdgpu-y += $(AMD_DISPLAY_FILES)`, made of `../display/…` paths by the display
   * Makefiles it includes; arch/x86/kvm's `$(KVM)/dirty_ring.o`). Found by reading every folder
   * kbuild descends into, once per reader, the first time a unit needs it (about a second).
   */
  private namedElsewhere(object: string): BuildStatus | undefined {
    return this.readElsewhere().get(object)?.status;
  }

  /**
   * The folder whose Makefile names `object` with a `../` path, and the word it uses
   * (`drivers/gpu/drm/amd/amdgpu`, `../display/dc/core/dc.o`), when one does: kbuild builds
   * such an object only as part of that folder, never alone.
   */
  namingFolder(object: string): { folder: string; word: string } | undefined {
    const found = this.readElsewhere().get(object);
    return found ? { folder: found.folder, word: found.word } : undefined;
  }

  /**
   * For a unit that no Makefile of its own folder or the folders above names, but another
   * folder's names with `../` (amdgpu's display and power files, kvm's virt/kvm files): that
   * folder and the word. kbuild builds such an object only as part of its folder: `make
   * dir/x.o` alone compiles it with the flags of the folder it lies in (its own
   * KBUILD_MODNAME, no -DMODULE, without the owner's include paths), not the module's.
   */
  namedOnlyFrom(unit: string): { folder: string; word: string } | undefined {
    const object = unit.replace(/\.[cS]$/, '.o');
    for (let at = parentOf(unit); ; at = parentOf(at)) {
      const lists = this.folderLists(at);
      const word = at === '' ? object : object.slice(at.length + 1);
      if (lists && (lists.builtIn.has(word) || lists.modules.has(word) || lists.namedOff.has(word))) return undefined;
      if (at === '') break;
    }
    return this.namingFolder(object);
  }

  private readElsewhere(): Map<string, { status: BuildStatus; folder: string; word: string }> {
    if (!this.elsewhere) {
      const found = new Map<string, { status: BuildStatus; folder: string; word: string }>();
      const seen = new Set<string>(['']);
      const queue = [''];
      for (let dir = queue.shift(); dir !== undefined; dir = queue.shift()) {
        const lists = this.folderLists(dir);
        if (!lists) continue;
        for (const sub of [...lists.dirsBuiltIn, ...lists.dirsModule]) {
          const child = posix.normalize(dir === '' ? sub : `${dir}/${sub}`);
          if (!seen.has(child) && !child.startsWith('..')) {
            seen.add(child);
            queue.push(child);
          }
        }
        for (const [words, own] of [[lists.builtIn, 'built-in'], [lists.modules, 'module']] as const) {
          for (const word of words) {
            if (!word.startsWith('../')) continue;
            const path = posix.normalize(`${dir}/${word}`);
            const status = combine(this.folder(dir), own);
            const before = found.get(path)?.status;
            if (!before || status === 'built-in' || (status === 'module' && before !== 'built-in')) found.set(path, { status, folder: dir, word });
          }
        }
      }
      this.elsewhere = found;
    }
    return this.elsewhere;
  }
}

function parentOf(path: string): string {
  const dir = posix.dirname(path);
  return dir === '.' ? '' : dir;
}

/** The build status of one unit; a KbuildReader answers many at the cost of one. */
export function buildStatus(treeDir: string, unit: string, config: ReadonlyMap<string, string> = readAutoConf(treeDir)): BuildStatus {
  return new KbuildReader(treeDir, config).unit(unit);
}
