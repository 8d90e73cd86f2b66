/**
 * One side (pre or post) of a differencing run: the parsed object with the views the
 * differ needs — every function and data object as a byte range of its section with the
 * relocations that fall inside it, and what a relocation target "is" independent of symbol
 * indices and section numbering.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../host/errors.js';
import {
  definingSection,
  parseElf,
  relocationInfo,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHF_MERGE,
  SHF_STRINGS,
  SHF_WRITE,
  SHT_NOBITS,
  SHT_PROGBITS,
  STB_LOCAL,
  STT_FUNC,
  STT_OBJECT,
  STT_SECTION,
  type ElfFile,
  type ElfSymbol,
  type Rela,
  type Section,
} from '../elf/index.js';
import { decodeInstructions, instructionAt, type Instruction } from '../x86/decode.js';
import { canonicalName, isNumberedLabel } from './names.js';

/** A function or data object: a symbol and the bytes and relocations it covers. */
export interface ObjectPiece {
  symbol: ElfSymbol;
  section: Section;
  /** Offsets in the section. */
  start: number;
  end: number;
  canonical: string;
  /** Relocations inside [start, end), in offset order. */
  relocations: Rela[];
}

/**
 * What a relocation points at, described so that a pre and a post description are equal
 * exactly when the targets are the same thing.
 */
export type RelocationTarget =
  | { kind: 'symbol'; symbol: ElfSymbol; addend: bigint }
  /** Inside a function or object reached through a section symbol: the piece and the offset in it. */
  | { kind: 'piece'; piece: ObjectPiece; offset: bigint }
  /** A string literal in a mergeable string section. */
  | { kind: 'string'; text: string }
  /** Anything else in a section: its name and the offset. */
  | { kind: 'section'; section: string; offset: bigint };

export function isCodeSection(section: Section): boolean {
  return (section.flags & SHF_EXECINSTR) !== 0n;
}

export function isWritable(section: Section): boolean {
  return (section.flags & SHF_WRITE) !== 0n;
}

const INIT_SECTION = /^\.(init|meminit|cpuinit|ref)\./;

/** Init code or data: ran at boot (or at the module's load) and was freed. */
export function isInit(piece: { section: Pick<Section, 'name'> }): boolean {
  return INIT_SECTION.test(piece.section.name);
}

export function isAllocated(section: Section): boolean {
  return (section.flags & SHF_ALLOC) !== 0n;
}

/**
 * The sections <linux/tsplice.h> puts a patch author's hooks and declarations in: what the
 * update is told, not data of the unit (src/diff/hooks.ts).
 */
export const AUTHOR_SECTION_PREFIX = '.tsplice.';

export function isAuthorSection(section: Pick<Section, 'name'>): boolean {
  return section.name.startsWith(AUTHOR_SECTION_PREFIX);
}

export class DiffObject {
  readonly functions: ObjectPiece[] = [];
  readonly dataObjects: ObjectPiece[] = [];
  /** The hook pointers and declarations of <linux/tsplice.h>, kept apart from the data. */
  readonly authorEntries: ObjectPiece[] = [];
  private readonly pieceBySymbol = new Map<number, ObjectPiece>();
  private readonly piecesBySection = new Map<number, ObjectPiece[]>();
  private readonly decoded = new Map<number, Instruction[]>();

  constructor(
    readonly elf: ElfFile,
    readonly path: string,
  ) {
    for (const symbol of elf.symbols) {
      if (symbol.index === 0) continue;
      if (symbol.type !== STT_FUNC && symbol.type !== STT_OBJECT) continue;
      const section = definingSection(elf, symbol);
      if (!section || !isAllocated(section)) continue;
      const start = Number(symbol.value);
      const piece: ObjectPiece = {
        symbol,
        section,
        start,
        end: start + symbol.size,
        canonical: canonicalName(symbol.name),
        relocations: [],
      };
      (symbol.type === STT_FUNC ? this.functions : isAuthorSection(section) ? this.authorEntries : this.dataObjects).push(piece);
      this.pieceBySymbol.set(symbol.index, piece);
      const list = this.piecesBySection.get(section.index) ?? [];
      list.push(piece);
      this.piecesBySection.set(section.index, list);
    }
    this.foldModuleEntryAliases();
    for (const [sectionIndex, pieces] of this.piecesBySection) {
      pieces.sort((a, b) => a.start - b.start);
      const section = elf.sections[sectionIndex] as Section;
      const relas = [...elf.relaFor(section)].sort((a, b) => a.offset - b.offset);
      for (const rela of relas) {
        for (const piece of pieces) if (rela.offset >= piece.start && rela.offset < piece.end) piece.relocations.push(rela);
      }
    }
  }

  /**
   * `module_init(fn)` and `module_exit(fn)` make `init_module` and `cleanup_module` global
   * aliases of the unit's own function: one function under two names. It is compared, carried
   * and matched under its own name (the loader and kallsyms know both); the alias names the
   * same piece. Carried as well, the alias would clash with the update module's own
   * `cleanup_module` (a fix to a module's exit function: iptable_filter_fini).
   */
  private foldModuleEntryAliases(): void {
    for (const alias of [...this.functions]) {
      if (alias.symbol.name !== 'init_module' && alias.symbol.name !== 'cleanup_module') continue;
      const own = this.functions.find((p) => p !== alias && p.section === alias.section && p.start === alias.start && p.end === alias.end);
      if (!own) continue;
      this.functions.splice(this.functions.indexOf(alias), 1);
      const inSection = this.piecesBySection.get(alias.section.index) ?? [];
      inSection.splice(inSection.indexOf(alias), 1);
      this.pieceBySymbol.set(alias.symbol.index, own);
    }
  }

  static load(path: string): DiffObject {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      throw new UserError(`Cannot read the object ${path}: ${(e as Error).message}.`, { kind: 'cannot-read', object: path, reason: (e as Error).message });
    }
    return new DiffObject(parseElf(bytes, path), path);
  }

  pieceOf(symbol: ElfSymbol): ObjectPiece | undefined {
    return this.pieceBySymbol.get(symbol.index);
  }

  /**
   * The function or object covering `offset` of a section (the innermost, smallest one); else
   * one that ends exactly there, since loops compare against a pointer one past an array.
   */
  pieceAt(section: Section, offset: number): ObjectPiece | undefined {
    let best: ObjectPiece | undefined;
    let endingHere: ObjectPiece | undefined;
    for (const piece of this.piecesBySection.get(section.index) ?? []) {
      const covers = offset >= piece.start && (offset < piece.end || (piece.start === piece.end && offset === piece.start));
      if (covers && (!best || piece.end - piece.start < best.end - best.start)) best = piece;
      if (offset === piece.end) endingHere = piece;
    }
    return best ?? endingHere;
  }

  bytes(piece: ObjectPiece): Uint8Array {
    if (piece.section.type === SHT_NOBITS) return new Uint8Array(piece.end - piece.start);
    return piece.section.data.subarray(piece.start, piece.end);
  }

  /** The instructions of a function, decoded once. */
  instructions(piece: ObjectPiece): Instruction[] {
    let list = this.decoded.get(piece.symbol.index);
    if (!list) {
      list = decodeInstructions(this.bytes(piece));
      this.decoded.set(piece.symbol.index, list);
    }
    return list;
  }

  /**
   * What a relocation in `piece` points at. For a PC-relative field inside an instruction
   * the CPU adds the displacement to the end of the instruction, not of the field, so the
   * place meant in a section is addend + (instruction end - field offset).
   */
  target(piece: ObjectPiece, rela: Rela): RelocationTarget {
    const symbol = this.elf.symbols[rela.symbolIndex] as ElfSymbol;
    const section = definingSection(this.elf, symbol);
    // A label in a mergeable section (gcc's `.LC0` for a string or a `.rodata.cst16` constant)
    // is a literal like a section-relative reference: compare its contents, never its
    // compiler-made name.
    const inMergeable = section !== undefined && (section.flags & SHF_MERGE) !== 0n;
    if (symbol.type !== STT_SECTION && !inMergeable) return { kind: 'symbol', symbol, addend: rela.addend };
    if (!section) return { kind: 'symbol', symbol, addend: rela.addend };
    const offset = this.offsetMeant(piece, rela, symbol);
    if ((section.flags & SHF_STRINGS) !== 0n && section.type !== SHT_NOBITS) {
      return { kind: 'string', text: readString(section.data, Number(offset)) };
    }
    const inside = this.pieceAt(section, Number(offset));
    if (inside) return { kind: 'piece', piece: inside, offset: offset - BigInt(inside.start) };
    if ((section.flags & SHF_MERGE) !== 0n && section.entsize > 0 && section.type !== SHT_NOBITS) {
      // A merged constant: what matters is its value, wherever the linker put it.
      const at = Number(offset);
      const value = Buffer.from(section.data.subarray(at, at + section.entsize)).toString('hex');
      return { kind: 'section', section: `${section.name.replace(/\.\d+$/, '')}:${value}`, offset: 0n };
    }
    return { kind: 'section', section: section.name, offset };
  }

  /**
   * The function or object a relocation in `piece` reaches and the offset in it, whether it
   * names a section (`.text.foo - 4`) or a symbol (`foo - 4`): the same place either way.
   * Undefined for symbols outside the object.
   */
  placeOf(piece: ObjectPiece, rela: Rela): { piece: ObjectPiece; offset: bigint } | undefined {
    const symbol = this.elf.symbols[rela.symbolIndex];
    const section = symbol && definingSection(this.elf, symbol);
    if (!symbol || !section) return undefined;
    const offset = this.offsetMeant(piece, rela, symbol);
    const inside = this.pieceAt(section, Number(offset));
    return inside ? { piece: inside, offset: offset - BigInt(inside.start) } : undefined;
  }

  /**
   * The offset in the symbol's section that a relocation in `piece` means: symbol value plus
   * addend, and for a PC-relative field inside an instruction the distance from the field to
   * the instruction's end (the CPU adds the displacement there, not at the field).
   */
  private offsetMeant(piece: ObjectPiece, rela: Rela, symbol: ElfSymbol): bigint {
    let offset = rela.addend + (symbol.type === STT_SECTION ? 0n : symbol.value);
    if (relocationInfo(rela.type)?.pcRelative && isCodeSection(piece.section)) {
      const instruction = instructionAt(this.instructions(piece), rela.offset - piece.start);
      if (instruction) offset += BigInt(instruction.offset + instruction.length - (rela.offset - piece.start));
    }
    return offset;
  }

  isLocal(piece: ObjectPiece): boolean {
    return piece.symbol.bind === STB_LOCAL;
  }

  /**
   * Constant data the compiler named with a counter: `__func__.3`, `__msg.9` (NL_SET_ERR_MSG's
   * static string), `CSWTCH.5`, a `static const` table `names.2`. Its contents are known and
   * nothing compares its address, so new code can use a copy of it.
   */
  isNumberedConstant(piece: ObjectPiece): boolean {
    const section = piece.section;
    return (
      section.type === SHT_PROGBITS &&
      (section.flags & (SHF_WRITE | SHF_EXECINSTR)) === 0n &&
      piece.symbol.bind === STB_LOCAL &&
      isNumberedLabel(piece.symbol.name)
    );
  }

  /**
   * A numbered constant that points nowhere: like a `.LC0` string it is a literal, and two
   * are the same when their bytes are, whatever their numbers.
   */
  isConstantLabel(piece: ObjectPiece): boolean {
    return this.isNumberedConstant(piece) && piece.relocations.length === 0;
  }
}

/** The section of dynamic debug descriptors (`struct _ddebug`, include/linux/dynamic_debug.h). */
export const DYNDBG_SECTION = '__dyndbg';

/** A `pr_debug` call site's descriptor. */
export function isDescriptor(piece: ObjectPiece): boolean {
  return piece.section.name === DYNDBG_SECTION;
}

function readString(data: Uint8Array, offset: number): string {
  let end = offset;
  while (end < data.length && data[end] !== 0) end++;
  return Buffer.from(data.subarray(offset, end)).toString('latin1');
}
