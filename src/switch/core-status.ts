/**
 * The text protocol of the core module (kmod/): the command lines written to
 * /proc/tsplice/control and the records read from /proc/tsplice/status. Pure functions, so
 * that the format is tested without a kernel; docs/core-module.md describes it.
 */
import { HOOK_KINDS, type HookKind } from '../diff/hooks.js';
import { UserError } from '../host/errors.js';

export type UpdateState = 'staged' | 'applied' | 'reverted';

/** One replaced function, as the kernel holds it. */
export interface CoreFunction {
  name: string;
  oldAddress: bigint;
  oldSize: number;
  newAddress: bigint;
  newSize: number;
  /** The symbol at newAddress (the replacement's own name). */
  newName: string;
  /** Offset of the jmp in the old function: 5 after the __fentry__ nop, 0 without one. */
  site: number;
  fentry: boolean;
  /** Module holding the old function; undefined for vmlinux. */
  owner?: string;
  /** Module holding the new code; undefined for vmlinux. */
  newOwner?: string;
}

/**
 * A function of a loadable module, as the kernel holds it (kmod/late.c): bound to the module's
 * running copy while the module is loaded, waiting while it is not, refused when the copy
 * that came did not match the pre code (with the kernel's reason and fields).
 */
export interface CorePart {
  name: string;
  module: string;
  state: 'waiting' | 'bound' | 'refused';
  /** The running function while bound. */
  oldAddress?: bigint;
  /** Times it was bound (the module loaded, or loaded again). */
  loads: number;
  preSize: number;
  newAddress: bigint;
  /** Bound at insmod to the copy loaded at apply, which it keeps loaded (PartRequest.pinAt). */
  pinned: boolean;
  diagnostic?: CoreDiagnostic;
  error?: string;
}


/** A hook the kernel holds for an update: a function of its module, and how often it ran. */
export interface CoreHook {
  name: string;
  kind: HookKind;
  address: bigint;
  runs: number;
}

export interface CoreUpdate {
  id: string;
  state: UpdateState;
  functions: CoreFunction[];
  /** Functions of loadable modules; their bound ones are in `functions` too. */
  parts: CorePart[];
  /** The patch author's hooks, in the order they run. */
  hooks: CoreHook[];
  /** stop_machine runs of the last apply or undo. */
  attempts: number;
  /** When it was last applied (wall clock), if ever. */
  appliedAt?: Date;
  /** Pause of the last switch, measured on the patching CPU inside stop_machine. */
  pauseNs: number;
  /** The whole stop_machine call of the last switch, as the caller saw it. */
  callNs: number;
  /**
   * How long the first CPU in the stop_machine callback spun before the last one (the
   * patching CPU) arrived: the arrival skew, outside pauseNs, mostly host scheduling.
   */
  waitNs: number;
  /** Tasks checked in the last switch. */
  tasks: number;
  /**
   * Of those, the tasks whose stacks were read inside stop_machine; the others were checked
   * by the pre-scan before it and have not run since. Absent from older core modules.
   */
  scanned?: number;
  /** The pre-scan before stop_machine, outside the pause (0 when it did not run). */
  prescanNs?: number;
  /** Why the last command on it failed, in the kernel's words; undefined after a success. */
  error?: string;
  /** The same refusal as the kernel names it: a reason and its fields. */
  diagnostic?: CoreDiagnostic;
  /**
   * The live process that staged it, 0 once that process has exited (a staged update whose
   * stager is gone is a leftover); absent from older core modules.
   */
  ownerPid?: number;
}

export interface CoreMeasurement {
  /** empty: stop_machine with nothing inside; scan: the task check alone. */
  kind: 'empty' | 'scan';
  id?: string;
  result: 'ok' | 'busy' | 'error';
  tasks: number;
  cpus: number;
  pauseNs: number;
  callNs: number;
  /** Arrival skew of the CPUs in the callback, as in CoreUpdate. */
  waitNs: number;
  /** Stacks read inside stop_machine, as in CoreUpdate. */
  scanned?: number;
  /** The pre-scan before stop_machine, as in CoreUpdate. */
  prescanNs?: number;
  /** With result 'busy': the task found inside (reason 'busy', as for an abort). */
  diagnostic?: CoreDiagnostic;
}

/**
 * A refusal as the kernel reports it in its status: a stable reason name ('busy',
 * 'bytes-changed', 'too-short'...; docs/core-module.md lists them) and key=value fields.
 */
export interface CoreDiagnostic {
  reason: string;
  /** The other fields by key, unescaped; which ones depends on the reason. */
  fields: Readonly<Record<string, string>>;
}

/** The last command the kernel refused, whoever wrote it. */
export interface CoreRefusal {
  /** The process that wrote it, 0 once that process has exited. */
  pid: number;
  errno: number;
  /** The command's first word, and the id it named (undefined when it named none). */
  command: string;
  id?: string;
  diagnostic: CoreDiagnostic;
  /** The kernel's sentence, as the control file returned it. */
  error: string;
}

export interface CoreStatus {
  version: number;
  /** Updates applied now. */
  applied: number;
  lockedDown: boolean;
  measurement?: CoreMeasurement;
  /** The last refused command (absent from older core modules, and before any refusal). */
  refusal?: CoreRefusal;
  updates: CoreUpdate[];
  /** Shadow data entries the core module holds, of every id (absent from older core modules). */
  shadowEntries?: number;
}

/** What `stage` needs for one function. */
export interface StageRequest {
  name: string;
  oldAddress: bigint;
  oldSize: number;
  newAddress: bigint;
  newSize: number;
  /**
   * The bytes expected at the old function's entry, at least through the patch site (10
   * bytes with a __fentry__ nop, 5 without), at most 32; the 5 bytes of the __fentry__ site
   * are not compared (ftrace owns them).
   */
  expected: Uint8Array;
}

/** What `part` needs: a function of a loadable module, bound whenever the module is loaded. */
export interface PartRequest {
  name: string;
  module: string;
  newAddress: bigint;
  newSize: number;
  /** The whole pre code. */
  pre: Uint8Array;
  /** Byte ranges where the running copy may differ: relocation fields, load-time rewrite sites. */
  mask: readonly { offset: number; length: number }[];
  /**
   * Bind only to the copy whose function runs here, and keep that copy loaded until drop: the
   * new code's references into the module were bound at insmod (update-module.ts pinnedModules).
   */
  pinAt?: bigint;
}

/** What `late` needs: a relocation of the new code into a module, written at each load. */
export interface LateRequest {
  /** The module whose parts bind it. */
  module: string;
  /** The module defining `symbol`: `module` itself or a module it depends on. */
  target: string;
  symbol: string;
  /** Address of the field in the loaded update module. */
  field: bigint;
  type: 'pc32' | '32s' | '64';
  addend: bigint;
}

/** The most pre code a `part` may carry (kmod/tsplice.h TSPLICE_MAX_PRE). */
export const MAX_PART_PRE = 48 * 1024;

/** The `part` command line for one function of a module. */
export function partCommand(id: string, p: PartRequest): string {
  checkUpdateId(id);
  if (!MODULE_SYMBOL_NAME.test(p.name)) throw new UserError(`'${p.name}' is not a function name kallsyms could print (with #N for one of several).`, { kind: 'bad-argument' });
  if (!/^[A-Za-z0-9_-]{1,55}$/.test(p.module)) throw new UserError(`'${p.module}' is not a module name.`, { kind: 'bad-argument', function: p.name });
  if (p.pre.length < 10 || p.pre.length > MAX_PART_PRE) {
    throw new UserError(`${p.name}: its pre code is ${p.pre.length} bytes; a function of a module can be bound at load with 10 to ${MAX_PART_PRE}.`, {
      kind: 'too-large',
      object: p.module,
      function: p.name,
    });
  }
  const mask = p.mask.length === 0 ? '-' : p.mask.map((r) => `${r.offset}+${r.length}`).join(',');
  return `part ${id} ${p.name} ${p.module} ${hex(p.newAddress)} ${p.newSize} ${Buffer.from(p.pre).toString('hex')} ${mask}${p.pinAt !== undefined ? ` pin=${hex(p.pinAt)}` : ''}`;
}

/** The `late` command line for one relocation. */
export function lateCommand(id: string, l: LateRequest): string {
  checkUpdateId(id);
  if (!MODULE_SYMBOL_NAME.test(l.symbol)) throw new UserError(`'${l.symbol}' is not a symbol name kallsyms could print (with #N for one of several).`, { kind: 'bad-argument' });
  return `late ${id} ${l.module} ${hex(l.field)} ${l.type} ${l.target} ${l.symbol} ${l.addend}`;
}

/** A hook of the update module for the kernel to run (`hook`): its kind, name and code. */
export interface HookRequest {
  kind: HookKind;
  name: string;
  address: bigint;
  size: number;
}

/** The `hook` command line for one hook. */
export function hookCommand(id: string, h: HookRequest): string {
  checkUpdateId(id);
  if (!MODULE_SYMBOL_NAME.test(h.name) || h.name.includes('#')) throw new UserError(`'${h.name}' is not a function name kallsyms could print.`, { kind: 'bad-argument' });
  if (h.size <= 0) throw new UserError(`The hook ${h.name} has no code.`, { kind: 'bad-argument', function: h.name });
  return `hook ${id} ${h.kind} ${h.name} ${hex(h.address)} ${h.size}`;
}

export interface RetryOptions {
  /** stop_machine attempts while a task is inside the code (kernel default 5). */
  tries?: number;
  /** Milliseconds between attempts (kernel default 1000). */
  retryMs?: number;
}

const UPDATE_ID = /^[A-Za-z0-9_.:-]{1,63}$/;
const SYMBOL_NAME = /^[A-Za-z0-9_.$]{1,511}$/;
/**
 * A name a module's symbol is bound by at each load: the symbol's name, or `NAME#N` for the
 * N-th of several of that name in the module (kmod/late.c, tsplice_module_symbol).
 */
const MODULE_SYMBOL_NAME = /^[A-Za-z0-9_.$]{1,500}(#[1-9][0-9]{0,5})?$/;

export function checkUpdateId(id: string): void {
  if (!UPDATE_ID.test(id)) throw new UserError(`'${id}' is not a valid update id: 1 to 63 of A-Z a-z 0-9 _ . : -.`, { kind: 'bad-argument' });
}

function hex(value: bigint): string {
  return `0x${value.toString(16)}`;
}

/** The `stage` command line for one function. */
export function stageCommand(id: string, f: StageRequest): string {
  checkUpdateId(id);
  if (!SYMBOL_NAME.test(f.name)) throw new UserError(`'${f.name}' is not a function name kallsyms could print.`, { kind: 'bad-argument' });
  for (const [what, n] of [['old size', f.oldSize], ['new size', f.newSize]] as const) {
    if (!Number.isSafeInteger(n) || n <= 0) throw new UserError(`${f.name}: the ${what} ${n} is not a positive integer.`, { kind: 'bad-argument' });
  }
  if (f.expected.length < 5 || f.expected.length > 32) {
    throw new UserError(`${f.name}: ${f.expected.length} expected bytes; give 5 to 32 from the function's entry.`, { kind: 'bad-argument' });
  }
  const bytes = Buffer.from(f.expected).toString('hex');
  return `stage ${id} ${f.name} ${hex(f.oldAddress)} ${f.oldSize} ${hex(f.newAddress)} ${f.newSize} ${bytes}`;
}

/** `apply ID [TRIES [RETRY_MS]]`, `undo ...` or `drop ...`. */
export function switchCommand(verb: 'apply' | 'undo' | 'drop', id: string, options: RetryOptions = {}): string {
  checkUpdateId(id);
  const words: string[] = [verb, id];
  if (options.tries !== undefined || options.retryMs !== undefined) {
    const tries = options.tries ?? 5;
    if (!Number.isInteger(tries) || tries < 1 || tries > 1000) throw new UserError(`tries must be 1 to 1000, not ${tries}.`, { kind: 'bad-argument' });
    words.push(String(tries));
  }
  if (options.retryMs !== undefined) {
    if (!Number.isInteger(options.retryMs) || options.retryMs < 0 || options.retryMs > 60000) {
      throw new UserError(`retryMs must be 0 to 60000, not ${options.retryMs}.`, { kind: 'bad-argument' });
    }
    words.push(String(options.retryMs));
  }
  return words.join(' ');
}

/**
 * A field's value. The kernel writes each value as one word: a space, a control character, a
 * byte outside ASCII or a backslash is \xHH (a task's comm may hold any of them).
 */
function unescape(value: string): string {
  if (!value.includes('\\')) return value;
  const bytes = value.replace(/\\x([0-9a-f]{2})/g, (_, hh: string) => String.fromCharCode(parseInt(hh, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

/** key=value words of a status record. */
function fields(words: string[], line: string, source: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const word of words) {
    const at = word.indexOf('=');
    if (at <= 0) throw new UserError(`${source}: '${word}' is not key=value in the line '${line}'.`, { kind: 'bad-kernel-record', object: source });
    map.set(word.slice(0, at), unescape(word.slice(at + 1)));
  }
  return map;
}

/**
 * The parts of a record: its own words; from `reason=` on, the words of a refusal; and with
 * `withError`, the text of `error=`, which runs to the end of the line. A value never holds a
 * space, so the first ' error=' ends the words.
 */
function splitRecord(rest: string, line: string, source: string, withError: boolean): { words: string[]; diagnostic?: CoreDiagnostic; error?: string } {
  let head = rest;
  let error: string | undefined;
  if (withError) {
    const at = rest.indexOf(' error=');
    if (at < 0) throw new UserError(`${source}: the line '${line}' has no error=.`, { kind: 'bad-kernel-record', object: source });
    head = rest.slice(0, at);
    error = rest.slice(at + ' error='.length);
  }
  const words = head.split(' ');
  const from = words.findIndex((w) => w.startsWith('reason='));
  if (from < 0) return { words, ...(error !== undefined ? { error } : {}) };
  const refusal = fields(words.slice(from), line, source);
  const reason = need(refusal, 'reason', line, source);
  refusal.delete('reason');
  return { words: words.slice(0, from), diagnostic: { reason, fields: Object.fromEntries(refusal) }, ...(error !== undefined ? { error } : {}) };
}

function need(map: Map<string, string>, key: string, line: string, source: string): string {
  const value = map.get(key);
  if (value === undefined) throw new UserError(`${source}: the line '${line}' has no ${key}=.`, { kind: 'bad-kernel-record', object: source });
  return value;
}

function integer(map: Map<string, string>, key: string, line: string, source: string): number {
  const text = need(map, key, line, source);
  if (!/^\d+$/.test(text)) throw new UserError(`${source}: ${key}=${text} is not a number in the line '${line}'.`, { kind: 'bad-kernel-record', object: source });
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new UserError(`${source}: ${key}=${text} is too large in the line '${line}'.`, { kind: 'bad-kernel-record', object: source });
  return value;
}

function address(map: Map<string, string>, key: string, line: string, source: string): bigint {
  const text = need(map, key, line, source);
  if (!/^0x[0-9a-f]+$/.test(text)) throw new UserError(`${source}: ${key}=${text} is not a hex address in the line '${line}'.`, { kind: 'bad-kernel-record', object: source });
  return BigInt(text);
}

/** The pre-scan figures, which older core modules do not print. */
function prescanFields(map: Map<string, string>, line: string, source: string): { scanned?: number; prescanNs?: number } {
  return {
    ...(map.has('scanned') ? { scanned: integer(map, 'scanned', line, source) } : {}),
    ...(map.has('prescan_ns') ? { prescanNs: integer(map, 'prescan_ns', line, source) } : {}),
  };
}

function owner(text: string | undefined): string | undefined {
  return text === undefined || text === '-' ? undefined : text;
}

/** `refusal pid=PID errno=N command=WORD id=ID|- reason=NAME ... error=TEXT` */
function parseRefusal(rest: string, line: string, source: string): CoreRefusal {
  const parts = splitRecord(rest, line, source, true);
  if (!parts.diagnostic) throw new UserError(`${source}: the line '${line}' has no reason=.`, { kind: 'bad-kernel-record', object: source });
  const m = fields(parts.words, line, source);
  const id = need(m, 'id', line, source);
  return {
    pid: integer(m, 'pid', line, source),
    errno: integer(m, 'errno', line, source),
    command: need(m, 'command', line, source),
    ...(id !== '-' ? { id } : {}),
    diagnostic: parts.diagnostic,
    error: parts.error ?? '',
  };
}

/** Parses the text of /proc/tsplice/status. */
export function parseStatus(text: string, source = '/proc/tsplice/status'): CoreStatus {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const head = /^tsplice-core (\d+) applied=(\d+) lockdown=(yes|no)$/.exec(lines[0] ?? '');
  if (!head) throw new UserError(`${source}: the first line '${lines[0] ?? ''}' is not a tsplice-core header.`, { kind: 'bad-kernel-record', object: source });
  const status: CoreStatus = {
    version: Number(head[1]),
    applied: Number(head[2]),
    lockedDown: head[3] === 'yes',
    updates: [],
  };
  const byId = new Map<string, CoreUpdate>();
  for (const line of lines.slice(1)) {
    const [kind, ...rest] = line.split(' ');
    if (kind === 'measure') {
      const parts = splitRecord(rest.join(' '), line, source, false);
      const m = fields(parts.words, line, source);
      const measureKind = need(m, 'kind', line, source);
      const result = need(m, 'result', line, source);
      if ((measureKind !== 'empty' && measureKind !== 'scan') || (result !== 'ok' && result !== 'busy' && result !== 'error')) {
        throw new UserError(`${source}: the line '${line}' has an unknown kind or result.`, { kind: 'bad-kernel-record', object: source });
      }
      const id = need(m, 'id', line, source);
      status.measurement = {
        kind: measureKind,
        ...(id !== '-' ? { id } : {}),
        result,
        tasks: integer(m, 'tasks', line, source),
        cpus: integer(m, 'cpus', line, source),
        pauseNs: integer(m, 'pause_ns', line, source),
        callNs: integer(m, 'call_ns', line, source),
        waitNs: integer(m, 'wait_ns', line, source),
        ...prescanFields(m, line, source),
        ...(parts.diagnostic ? { diagnostic: parts.diagnostic } : {}),
      };
    } else if (kind === 'refusal') {
      status.refusal = parseRefusal(rest.join(' '), line, source);
    } else if (kind === 'update') {
      const parts = splitRecord(rest.join(' '), line, source, true);
      const [id, ...words] = parts.words;
      if (!id) throw new UserError(`${source}: the line '${line}' names no update.`, { kind: 'bad-kernel-record', object: source });
      const error = parts.error ?? '-';
      const m = fields(words, line, source);
      const state = need(m, 'state', line, source);
      if (state !== 'staged' && state !== 'applied' && state !== 'reverted') {
        throw new UserError(`${source}: state=${state} is not staged, applied or reverted in the line '${line}'.`, { kind: 'bad-kernel-record', object: source });
      }
      const appliedAt = integer(m, 'applied_at', line, source);
      const update: CoreUpdate = {
        id,
        state,
        functions: [],
        parts: [],
        hooks: [],
        attempts: integer(m, 'attempts', line, source),
        ...(appliedAt > 0 ? { appliedAt: new Date(appliedAt * 1000) } : {}),
        pauseNs: integer(m, 'pause_ns', line, source),
        callNs: integer(m, 'call_ns', line, source),
        waitNs: integer(m, 'wait_ns', line, source),
        tasks: integer(m, 'tasks', line, source),
        ...prescanFields(m, line, source),
        ...(error !== '-' ? { error } : {}),
        ...(parts.diagnostic ? { diagnostic: parts.diagnostic } : {}),
        ...(m.has('owner') ? { ownerPid: integer(m, 'owner', line, source) } : {}),
      };
      byId.set(id, update);
      status.updates.push(update);
    } else if (kind === 'function') {
      const [id, name, ...words] = rest;
      const update = id === undefined ? undefined : byId.get(id);
      if (!update || !name) throw new UserError(`${source}: the line '${line}' belongs to no update listed before it.`, { kind: 'bad-kernel-record', object: source });
      const m = fields(words, line, source);
      const site = integer(m, 'site', line, source);
      const oldOwner = owner(m.get('owner'));
      const newOwner = owner(m.get('new_owner'));
      update.functions.push({
        name,
        oldAddress: address(m, 'old', line, source),
        oldSize: integer(m, 'old_size', line, source),
        newAddress: address(m, 'new', line, source),
        newSize: integer(m, 'new_size', line, source),
        newName: need(m, 'new_name', line, source),
        site,
        fentry: need(m, 'fentry', line, source) === '1',
        ...(oldOwner ? { owner: oldOwner } : {}),
        ...(newOwner ? { newOwner } : {}),
      });
    } else if (kind === 'part') {
      const record = splitRecord(rest.join(' '), line, source, true);
      const [id, name, ...words] = record.words;
      const update = id === undefined ? undefined : byId.get(id);
      if (!update || !name) throw new UserError(`${source}: the line '${line}' belongs to no update listed before it.`, { kind: 'bad-kernel-record', object: source });
      const m = fields(words, line, source);
      const state = need(m, 'state', line, source);
      if (state !== 'waiting' && state !== 'bound' && state !== 'refused') {
        throw new UserError(`${source}: state=${state} is not waiting, bound or refused in the line '${line}'.`, { kind: 'bad-kernel-record', object: source });
      }
      const old = address(m, 'old', line, source);
      update.parts.push({
        name,
        module: need(m, 'module', line, source),
        state,
        ...(old !== 0n ? { oldAddress: old } : {}),
        loads: integer(m, 'loads', line, source),
        preSize: integer(m, 'pre_size', line, source),
        newAddress: address(m, 'new', line, source),
        pinned: m.get('pinned') === '1',
        ...(record.diagnostic ? { diagnostic: record.diagnostic } : {}),
        ...(record.error !== undefined && record.error !== '-' ? { error: record.error } : {}),
      });
    } else if (kind === 'hook') {
      const [id, name, ...words] = rest;
      const update = id === undefined ? undefined : byId.get(id);
      if (!update || !name) throw new UserError(`${source}: the line '${line}' belongs to no update listed before it.`, { kind: 'bad-kernel-record', object: source });
      const m = fields(words, line, source);
      const hookKind = HOOK_KINDS.find((k) => k === m.get('kind'));
      if (!hookKind) throw new UserError(`${source}: kind=${m.get('kind') ?? ''} is not a hook kind in the line '${line}'.`, { kind: 'bad-kernel-record', object: source });
      update.hooks.push({ name, kind: hookKind, address: address(m, 'addr', line, source), runs: integer(m, 'runs', line, source) });
    } else if (kind === 'shadow') {
      status.shadowEntries = integer(fields(rest, line, source), 'entries', line, source);
    } else {
      throw new UserError(`${source}: unknown record '${kind ?? ''}' in the line '${line}'.`, { kind: 'bad-kernel-record', object: source });
    }
  }
  return status;
}

/** What the kernel found when it gave up as busy: its fields, and a phrase built from them. */
export interface BusyReason {
  functionName: string;
  pid: number;
  comm: string;
  /** Where the word was: stack, saved-ip, graph, rethook, or rethook-many (too many to read). */
  source: string;
  /** The symbol the word points into, as %pS prints it without the module ("f+0x94/0xd0"). */
  symbol?: string;
  /** The module of that symbol; undefined for vmlinux. */
  module?: string;
  /** The word is in the update's new code (undo, drop). */
  newCode: boolean;
  /** The stop_machine runs tried and the pause between them (absent for a measurement). */
  attempts?: number;
  retryMs?: number;
  /** What was found, e.g. "target_wait+0x94/0xd0 [tsplice_target] is on its stack". */
  detail: string;
}

const BUSY_SOURCES: Readonly<Record<string, string>> = {
  stack: 'is on its stack',
  'saved-ip': 'is its saved instruction pointer',
  graph: 'is a return address the function-graph tracer keeps for it',
  rethook: 'is a return address a kretprobe keeps for it',
};

function count(text: string | undefined): number | undefined {
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
}

/** The fields of a busy refusal (reason=busy), or undefined for any other. */
export function busyReason(diagnostic: CoreDiagnostic | undefined): BusyReason | undefined {
  if (diagnostic?.reason !== 'busy') return undefined;
  const { function: functionName, task, comm, source, symbol, module, code, limit } = diagnostic.fields;
  const pid = count(task);
  if (!functionName || pid === undefined || comm === undefined || !source) return undefined;
  const newCode = code === 'new';
  const detail =
    source === 'rethook-many'
      ? `more than ${limit ?? 'the'} kretprobe returns are pending for it, too many to check`
      : `${symbol ?? '?'}${module ? ` [${module}]` : ''} ${BUSY_SOURCES[source] ?? `was found (${source})`}${newCode ? ' (the new code)' : ''}`;
  const attempts = count(diagnostic.fields.attempts);
  const retryMs = count(diagnostic.fields.retry_ms);
  return {
    functionName,
    pid,
    comm,
    source,
    ...(symbol !== undefined ? { symbol } : {}),
    ...(module !== undefined ? { module } : {}),
    newCode,
    ...(attempts !== undefined ? { attempts } : {}),
    ...(retryMs !== undefined ? { retryMs } : {}),
    detail,
  };
}
