/**
 * The payload of an update module: a relocatable object holding the post code of every carried
 * function, the new data, and the special-section entries of that code, cut out of the post
 * objects. kbuild links it with a small stub into the update's kernel module, so the kernel's
 * module loader gives the new code exception tables, ORC unwinding, kallsyms names, ftrace
 * sites and boot-time patching (alternatives, paravirt, retpolines, return thunks) as its own.
 *
 * Every reference the new code makes to something the update does not carry (an unchanged
 * static function, a global variable, an exported function) becomes an undefined symbol;
 * `apply` gives each one its running address (learned by run-pre matching, or from
 * /proc/kallsyms) before loading the module.
 */
import {
  definingSection,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHF_MERGE,
  SHF_STRINGS,
  SHF_WRITE,
  SHN_UNDEF,
  SHT_NOBITS,
  SHT_PROGBITS,
  STB_GLOBAL,
  STB_LOCAL,
  STT_FUNC,
  STT_NOTYPE,
  STT_SECTION,
  STV_DEFAULT,
  type ElfSymbol,
  type ModelRela,
  type ModelSection,
  type ModelSymbol,
  type ObjectModel,
  type Rela,
  type Section,
} from '../elf/index.js';
import { UserError } from '../host/errors.js';
import { DYNDBG_SECTION, isDescriptor, type DiffObject, type ObjectPiece } from '../diff/object.js';
import type { DiffState } from '../diff/pipeline.js';
import { SPECIAL_SECTIONS, type SpecialEntry } from '../diff/special-sections.js';

/** An undefined symbol of the payload and what it stands for, for apply to resolve. */
export interface ExternalReference {
  /** The name in the module's symbol table. */
  symbol: string;
  /** The name in the running kernel (kallsyms, or learned by matching). */
  name: string;
  unit: string;
  /** A static of the unit: its name may occur more than once in the kernel. */
  local: boolean;
  /**
   * The loadable module of the referring unit, absent for vmlinux: its statics and its
   * `__this_module` are that module's (`name [module]` in /proc/kallsyms), and a global it
   * names may be another part of it.
   */
  module?: string;
}

export interface Payload {
  model: ObjectModel;
  externals: ExternalReference[];
  /**
   * The module's symbol for each carried function whose name another carried function also has
   * (a static of two units, e.g. elf_core_dump of binfmt_elf.c and of compat_binfmt_elf.c):
   * apply finds the new code in /proc/kallsyms by this name.
   */
  renamedFunctions: { unit: string; name: string; symbol: string }[];
}

/** Sections copied whole when carried code refers to them: constant, and shared by their users. */
function copiedWhole(section: Section): boolean {
  return (
    ((section.flags & (SHF_STRINGS | SHF_MERGE)) !== 0n && (section.flags & SHF_WRITE) === 0n) ||
    section.name === '.altinstr_replacement' ||
    section.name === '.altinstr_aux'
  );
}

class PayloadBuilder {
  readonly sections: ModelSection[] = [];
  readonly symbols: ModelSymbol[] = [];
  readonly externals = new Map<string, ExternalReference>();
  private readonly externalSymbols = new Map<string, ModelSymbol>();
  /** Per unit: carried piece -> its section and symbol in the payload. */
  private readonly placed = new Map<ObjectPiece, { section: ModelSection; symbol: ModelSymbol }>();
  private readonly wholeSections = new Map<string, { section: ModelSection; symbol: ModelSymbol }>();
  /** Names a unit of the update turns from a static into a global, and the unit: the running kernel has its static. */
  readonly madeGlobal = new Map<string, string>();
  /** Global functions and objects the payload defines, by name: other units' references bind to them. */
  private readonly carriedGlobals = new Map<string, ModelSymbol>();
  /** Copies of `.altinstr_replacement` whose relocations wait for the carried alternatives. */
  private readonly pendingReplacements: { object: DiffObject; section: Section; unit: string; copy: ModelSection; symbol: ModelSymbol }[] = [];

  constructor(
    private readonly unitSlug: (unit: string) => string,
    /** The loadable module of a unit, undefined for vmlinux. */
    private readonly moduleOf: (unit: string) => string | undefined = () => undefined,
  ) {}

  private sectionSymbol(section: ModelSection): ModelSymbol {
    const symbol: ModelSymbol = { name: '', value: 0n, size: 0, bind: STB_LOCAL, type: STT_SECTION, visibility: STV_DEFAULT, section };
    this.symbols.push(symbol);
    return symbol;
  }

  /** Post pieces -> the pre piece they are a version of: the running kernel knows the pre name. */
  runningName = new Map<ObjectPiece, string>();

  /** The module's symbol for a placed piece. */
  placedSymbol(piece: ObjectPiece): ModelSymbol | undefined {
    return this.placed.get(piece)?.symbol;
  }

  slugOf(unit: string): string {
    return this.unitSlug(unit);
  }

  private kernelName(piece: ObjectPiece): string {
    return this.runningName.get(piece) ?? piece.symbol.name;
  }

  /**
   * Places a function or data object in a section of its own. A new `pr_debug` descriptor goes
   * in a section named `__dyndbg` (the linker joins them into one), where the module loader
   * finds it and registers it with dynamic debug under the update module's name, so that
   * `echo 'func NAME +p' > <debugfs>/dynamic_debug/control` turns on the new message too.
   */
  place(object: DiffObject, piece: ObjectPiece, unit: string): void {
    const isCode = (piece.section.flags & SHF_EXECINSTR) !== 0n;
    const prefix = isCode ? '.text' : piece.section.type === SHT_NOBITS ? '.bss' : (piece.section.flags & SHF_WRITE) !== 0n ? '.data' : '.rodata';
    const size = piece.end - piece.start;
    const section: ModelSection = {
      name: isDescriptor(piece) ? DYNDBG_SECTION : `${prefix}.tsplice.${this.unitSlug(unit)}.${piece.symbol.name}`,
      type: piece.section.type,
      flags: piece.section.flags & (SHF_ALLOC | SHF_WRITE | SHF_EXECINSTR),
      addralign: Math.max(1, piece.section.addralign),
      ...(piece.section.type === SHT_NOBITS ? { size } : { data: object.bytes(piece).slice() }),
      relocations: [],
    };
    this.sections.push(section);
    const symbol: ModelSymbol = {
      name: piece.symbol.name,
      value: 0n,
      size,
      bind: piece.symbol.bind === STB_LOCAL ? STB_LOCAL : STB_GLOBAL,
      type: piece.symbol.type,
      visibility: STV_DEFAULT,
      section,
    };
    this.symbols.push(symbol);
    this.placed.set(piece, { section, symbol });
    if (symbol.bind !== STB_LOCAL) this.carriedGlobals.set(symbol.name, symbol);
  }

  /**
   * An undefined symbol standing for `name` in the running kernel. Statics get a module name of
   * their own (two units may each have a static `count`), and so does every name a unit of a
   * loadable module refers to: the update module defines `__this_module`, `init_module` and
   * `cleanup_module` itself, and the link must not bind the unit's references to those.
   */
  private external(name: string, unit: string, local: boolean): ModelSymbol {
    const module = this.moduleOf(unit);
    const symbolName = local || module !== undefined ? `${name}.tsplice.${this.unitSlug(unit)}` : name;
    let symbol = this.externalSymbols.get(symbolName);
    if (!symbol) {
      symbol = { name: symbolName, value: 0n, size: 0, bind: STB_GLOBAL, type: STT_NOTYPE, visibility: STV_DEFAULT, section: SHN_UNDEF };
      this.externalSymbols.set(symbolName, symbol);
      this.symbols.push(symbol);
      this.externals.set(symbolName, { symbol: symbolName, name, unit, local, ...(module !== undefined ? { module } : {}) });
    }
    return symbol;
  }

  private whole(object: DiffObject, section: Section, unit: string): { section: ModelSection; symbol: ModelSymbol } {
    const key = `${unit}\0${section.name}`;
    let placed = this.wholeSections.get(key);
    if (!placed) {
      const copy: ModelSection = {
        name: section.name === '.altinstr_replacement' || section.name === '.altinstr_aux' ? section.name : `${section.name}.tsplice.${this.unitSlug(unit)}`,
        type: section.type,
        flags: section.flags,
        addralign: Math.max(1, section.addralign),
        entsize: section.entsize,
        data: section.data.slice(),
        relocations: [],
      };
      this.sections.push(copy);
      placed = { section: copy, symbol: this.sectionSymbol(copy) };
      this.wholeSections.set(key, placed);
      if (section.name === ALT_REPLACEMENT || section.name === ALT_AUX) this.pendingReplacements.push({ object, section, unit, copy, symbol: placed.symbol });
      else copy.relocations = object.elf.relaFor(section).map((r) => this.relocation(object, r, 0, unit, undefined));
    }
    return placed;
  }

  /**
   * Relocates the alternative code of the carried functions only. `.altinstr_replacement` and
   * `.altinstr_aux` are copied whole, but most of their code belongs to functions the update
   * does not carry; those bytes are dead in the module (nothing reaches them), and the jumps
   * they make back into their own function (`jmp .text.__nr_to_section+0x3d`) would otherwise
   * have to be resolved in the running kernel, where a static of that name may exist many times.
   */
  relocateAlternativeCode(): void {
    const entries = this.sections.find((s) => s.name === '.altinstructions');
    for (const { object, section, unit, copy, symbol } of this.pendingReplacements) {
      if (section.name === ALT_AUX) {
        // static_cpu_has() blocks: testb, then jnz/jmp back into the function that owns the
        // block. A jump into a function the update does not carry is in a dead block.
        copy.relocations = object.elf
          .relaFor(section)
          .filter((r) => !this.jumpsIntoUncarriedCode(object, r))
          .map((r) => this.relocation(object, r, 0, unit, undefined));
        continue;
      }
      // Replacements: the ranges the carried .altinstructions entries point at.
      const live: [number, number][] = [];
      for (const r of entries?.relocations ?? []) {
        if (r.offset % ALT_INSTR_SIZE !== ALT_REPL_OFFSET_FIELD || r.symbol !== symbol) continue;
        // PC32 at the field: the replacement is at the section symbol + addend.
        const start = Number(r.addend);
        const length = entries?.data?.[r.offset - ALT_REPL_OFFSET_FIELD + ALT_REPLACEMENTLEN_FIELD] ?? 0;
        live.push([start, start + length]);
      }
      copy.relocations = object.elf
        .relaFor(section)
        .filter((r) => live.some(([from, to]) => r.offset >= from && r.offset < to))
        .map((r) => this.relocation(object, r, 0, unit, undefined));
    }
  }

  /** A relocation to a section symbol of code none of whose functions the payload carries. */
  private jumpsIntoUncarriedCode(object: DiffObject, rela: Rela): boolean {
    const symbol = object.elf.symbols[rela.symbolIndex];
    if (!symbol || symbol.type !== STT_SECTION) return false;
    const target = definingSection(object.elf, symbol);
    if (!target || (target.flags & SHF_EXECINSTR) === 0n || copiedWhole(target)) return false;
    return !object.functions.some((f) => f.section === target && this.placed.has(f));
  }

  /**
   * A post-object relocation re-aimed for the payload, at `offset - base` of its new section.
   * `inPiece` is the code or data it belongs to (for reading instruction boundaries).
   */
  relocation(object: DiffObject, rela: Rela, base: number, unit: string, inPiece: ObjectPiece | undefined): ModelRela {
    const symbol = object.elf.symbols[rela.symbolIndex] as ElfSymbol;
    const offset = rela.offset - base;
    const symbolSection = definingSection(object.elf, symbol);
    if (symbol.type !== STT_SECTION && symbolSection && copiedWhole(symbolSection)) {
      // A label in a string section (`.LC0`): the copy of the section, at the label's place.
      return { offset, type: rela.type, symbol: this.whole(object, symbolSection, unit).symbol, addend: rela.addend + symbol.value };
    }
    if (symbol.type !== STT_SECTION) {
      const piece = object.pieceOf(symbol);
      const placed = piece ? this.placed.get(piece) : undefined;
      if (placed) return { offset, type: rela.type, symbol: placed.symbol, addend: rela.addend };
      const copy = piece ? this.constantLabelCopy(object, piece, unit) : undefined;
      if (copy) return { offset, type: rela.type, symbol: copy.symbol, addend: rela.addend };
      if (symbol.shndx === SHN_UNDEF && symbol.bind !== STB_LOCAL) {
        // A global that another unit of this update carries (kernel/module/main.c calling the
        // module_destroy_params that kernel/params.c's part of the fix adds): the new copy.
        const sibling = this.carriedGlobals.get(symbol.name);
        if (sibling) return { offset, type: rela.type, symbol: sibling, addend: rela.addend };
        // A global another unit of this update makes of a static (fs/notify/fsnotify.c exporting
        // fsnotify_next_mark for fs/notify/mark.c): the running kernel has that unit's static.
        const madeGlobalBy = this.madeGlobal.get(symbol.name);
        if (madeGlobalBy) return { offset, type: rela.type, symbol: this.external(symbol.name, madeGlobalBy, true), addend: rela.addend };
      }
      if (symbol.shndx === SHN_UNDEF || !piece) {
        return { offset, type: rela.type, symbol: this.external(symbol.name, unit, symbol.bind === STB_LOCAL && symbol.shndx !== SHN_UNDEF), addend: rela.addend };
      }
      return { offset, type: rela.type, symbol: this.external(this.kernelName(piece), unit, symbol.bind === STB_LOCAL), addend: rela.addend };
    }
    const section = symbolSection;
    if (!section) {
      throw UserError.of({ kind: 'malformed-elf', unit, offset: rela.offset, reason: `a relocation names section symbol ${rela.symbolIndex}, which names no section (index ${symbol.shndx})` });
    }
    if (copiedWhole(section)) return { offset, type: rela.type, symbol: this.whole(object, section, unit).symbol, addend: rela.addend };
    // A section symbol plus an addend: find the function or object meant, and refer to it.
    const meant = inPiece ? object.target(inPiece, rela) : undefined;
    const place = meant?.kind === 'piece' ? meant.piece : object.pieceAt(section, Number(rela.addend));
    if (!place && (section.flags & SHF_WRITE) === 0n && section.type !== SHT_NOBITS) {
      // Unnamed constant data (a string table the compiler did not make mergeable): a copy
      // is as good as the original.
      return { offset, type: rela.type, symbol: this.whole(object, section, unit).symbol, addend: rela.addend };
    }
    if (!place) {
      const at = rela.addend < 0n ? `-0x${(-rela.addend).toString(16)}` : `+0x${rela.addend.toString(16)}`;
      throw new UserError(`The new code refers to unnamed data at ${section.name}${at} in ${unit}, which tsplice cannot resolve in the running kernel.`, {
        kind: 'unnamed-data-reference',
        unit,
        ...(inPiece ? { function: inPiece.symbol.name } : {}),
        section: section.name,
        ...(rela.addend >= 0n ? { offset: Number(rela.addend) } : {}),
        reason: 'the new code refers to unnamed data, which tsplice cannot resolve in the running kernel',
      });
    }
    const addend = rela.addend - BigInt(place.start);
    const placed = this.placed.get(place) ?? this.constantLabelCopy(object, place, unit);
    if (placed) return { offset, type: rela.type, symbol: placed.symbol, addend };
    return { offset, type: rela.type, symbol: this.external(this.kernelName(place), unit, place.symbol.bind === STB_LOCAL), addend };
  }

  /**
   * A copy of a numbered constant (DiffObject.isNumberedConstant: `__func__.2`, `CSWTCH.5`),
   * placed in the payload with its relocations. The running kernel holds hundreds of
   * `__func__.2`, one per unit, and kallsyms cannot tell them apart; a copy is as good.
   * Undefined for anything else.
   */
  private constantLabelCopy(object: DiffObject, piece: ObjectPiece, unit: string): { section: ModelSection; symbol: ModelSymbol } | undefined {
    if (!object.isNumberedConstant(piece)) return undefined;
    this.place(object, piece, unit);
    const placed = this.placed.get(piece);
    if (placed) placed.section.relocations = piece.relocations.map((r) => this.relocation(object, r, piece.start, unit, piece));
    return placed;
  }

  /** Fills in the relocations of every placed piece (after all are placed, so they can refer to each other). */
  relocatePieces(object: DiffObject, unit: string, pieces: readonly ObjectPiece[]): void {
    for (const piece of pieces) {
      const placed = this.placed.get(piece);
      if (!placed) continue;
      placed.section.relocations = piece.relocations.map((r) => this.relocation(object, r, piece.start, unit, piece));
    }
  }

  /** The special-section entries of the carried code, one payload section per kind. */
  addSpecialEntries(object: DiffObject, unit: string, entries: readonly SpecialEntry[]): void {
    const layouts = new Map(SPECIAL_SECTIONS.map((l) => [l.name, l]));
    const orcUnwind = object.elf.sectionByName('.orc_unwind');
    const bySection = new Map<string, SpecialEntry[]>();
    for (const e of entries) bySection.set(e.section, [...(bySection.get(e.section) ?? []), e]);
    for (const [name, list] of bySection) {
      const layout = layouts.get(name);
      const original = object.elf.sectionByName(name);
      if (!layout || !original) continue;
      const section = this.specialSection(name, original);
      const data: number[] = [...(section.data ?? [])];
      const startIndex = data.length / layout.entrySize;
      list.forEach((entry, k) => {
        data.push(...entry.bytes);
        const base = entry.index * layout.entrySize - (startIndex + k) * layout.entrySize;
        const originalRelas = object.elf.relaFor(original).filter((r) => Math.floor(r.offset / layout.entrySize) === entry.index);
        for (const r of originalRelas) section.relocations?.push(this.relocation(object, r, base, unit, undefined));
      });
      section.data = Uint8Array.from(data);
      if (name === '.orc_unwind_ip' && orcUnwind) {
        // .orc_unwind is the parallel array: entry i describes .orc_unwind_ip entry i.
        const unwind = this.specialSection('.orc_unwind', orcUnwind);
        const unwindData = [...(unwind.data ?? [])];
        for (const entry of list) unwindData.push(...orcUnwind.data.subarray(entry.index * 6, entry.index * 6 + 6));
        unwind.data = Uint8Array.from(unwindData);
      }
    }
  }

  private specialSection(name: string, original: Section): ModelSection {
    let section = this.sections.find((s) => s.name === name);
    if (!section) {
      section = { name, type: SHT_PROGBITS, flags: original.flags, addralign: Math.max(1, original.addralign), entsize: original.entsize, data: new Uint8Array(), relocations: [] };
      this.sections.push(section);
    }
    return section;
  }
}

const ALT_REPLACEMENT = '.altinstr_replacement';
const ALT_AUX = '.altinstr_aux';
/** struct alt_instr (arch/x86/include/asm/alternative.h): s32 instr_offset, s32 repl_offset, u16 cpuid, u8 instrlen, u8 replacementlen. */
const ALT_INSTR_SIZE = 12;
const ALT_REPL_OFFSET_FIELD = 4;
const ALT_REPLACEMENTLEN_FIELD = 11;

/** Builds the payload object for the carried code of every unit; `module` is a unit's loadable module, absent for vmlinux. */
export function buildPayload(units: readonly { unit: string; state: DiffState; module?: string }[]): Payload {
  const slugs = new Map(units.map((u, i) => [u.unit, `u${i}`]));
  const modules = new Map(units.map((u) => [u.unit, u.module]));
  const builder = new PayloadBuilder((unit) => slugs.get(unit) ?? 'u', (unit) => modules.get(unit));
  for (const { unit, state } of units) {
    for (const [pre, post] of state.correlation.preToPost) {
      builder.runningName.set(post, pre.symbol.name);
      if (pre.symbol.bind === STB_LOCAL && post.symbol.bind !== STB_LOCAL) builder.madeGlobal.set(post.symbol.name, unit);
    }
  }
  for (const { unit, state } of units) {
    for (const f of state.functions) builder.place(state.post, f.post, unit);
    for (const d of state.data) if (d.post) builder.place(state.post, d.post, unit);
  }
  for (const { unit, state } of units) {
    builder.relocatePieces(state.post, unit, [...state.functions.map((f) => f.post), ...state.data.flatMap((d) => (d.post ? [d.post] : []))]);
    builder.addSpecialEntries(state.post, unit, state.specialEntries);
  }
  builder.relocateAlternativeCode();
  const functions = builder.symbols.filter((s) => s.type === STT_FUNC).length;
  if (functions === 0) throw new UserError('The update carries no function to put in a module.', { kind: 'nothing-to-carry' });
  return { model: { sections: builder.sections, symbols: builder.symbols }, externals: [...builder.externals.values()], renamedFunctions: renameSharedFunctionNames(units, builder) };
}

/**
 * Gives each carried function whose name is carried twice a name of its own in the module, so
 * that /proc/kallsyms shows one function per name in it. References inside the module are by
 * symbol, not by name: the rename changes nothing but what kallsyms and backtraces show.
 */
function renameSharedFunctionNames(units: readonly { unit: string; state: DiffState }[], builder: PayloadBuilder): Payload['renamedFunctions'] {
  const carried = units.flatMap(({ unit, state }) => state.functions.map((f) => ({ unit, piece: f.post })));
  const count = new Map<string, number>();
  for (const { piece } of carried) count.set(piece.symbol.name, (count.get(piece.symbol.name) ?? 0) + 1);
  const renamed: Payload['renamedFunctions'] = [];
  for (const { unit, piece } of carried) {
    if ((count.get(piece.symbol.name) ?? 0) < 2) continue;
    const symbol = builder.placedSymbol(piece);
    if (!symbol) continue;
    symbol.name = `${piece.symbol.name}.tsplice.${builder.slugOf(unit)}`;
    renamed.push({ unit, name: piece.symbol.name, symbol: symbol.name });
  }
  return renamed;
}
