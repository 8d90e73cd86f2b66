// The types of this package's interface: the input sections, and the results (type
// layouts, per-function type use, layout changes).

/** The sections a caller passes in, already relocated (the library does not read ELF). */
export interface DwarfSections {
  info: Uint8Array;
  abbrev: Uint8Array;
  str?: Uint8Array;
  lineStr?: Uint8Array;
  strOffsets?: Uint8Array;
  /** Accepted for completeness: addresses are never needed to find layouts or type use. */
  addr?: Uint8Array;
}


/** 'class' only appears in C++ objects; the kernel is C. */
export type LayoutKind = 'struct' | 'union' | 'class' | 'enum' | 'typedef';

export interface MemberLayout {
  /** '' for an unnamed member (a C11 anonymous struct or union). */
  readonly name: string;
  /** Byte offset from the start of the containing type; NaN if DWARF gives an expression we cannot fold. */
  readonly offset: number;
  /** Bit-fields only: bits past `offset` (0-7, counted from the least significant bit, as on x86). */
  readonly bitOffset?: number;
  /** Bit-fields only: width in bits. */
  readonly bitSize?: number;
  /** Canonical C spelling of the member's type, e.g. `struct list_head *`, `unsigned int[4]`. */
  readonly type: string;
}

export interface EnumeratorLayout {
  readonly name: string;
  readonly value: bigint;
}

export interface TypeLayout {
  /** `struct device`, `enum cpuhp_state`, a typedef name, or a key made from context for anonymous types (see keys.ts). */
  readonly key: string;
  readonly kind: LayoutKind;
  /** DW_AT_name; undefined for anonymous types. */
  readonly name: string | undefined;
  /** DW_AT_byte_size (for a typedef: the size of what it names); undefined if unknown. */
  readonly size: number | undefined;
  /** Structs and unions, in DWARF order. */
  readonly members: readonly MemberLayout[];
  /** Enums, in DWARF order. */
  readonly enumerators: readonly EnumeratorLayout[];
  /** Enums: the underlying integer type; typedefs: the aliased type. */
  readonly target: string | undefined;
  /** Name of the unit where this definition was first seen. */
  readonly unit: string;
}

/** A type that is only declared (DW_AT_declaration, an incomplete type) in some unit. */
export interface TypeDeclaration {
  readonly key: string;
  readonly kind: LayoutKind;
  readonly name: string | undefined;
  readonly units: readonly string[];
}

/** One key defined differently by two units of the same input (each difference as a LayoutChange message). */
export interface LayoutConflict {
  readonly key: string;
  readonly units: readonly [string, string];
  readonly differences: readonly string[];
}

export interface TypeLayouts {
  /** Definitions by key. When units disagree, the first definition is kept and the others are in `conflicts`. */
  readonly types: ReadonlyMap<string, TypeLayout>;
  /** Declarations by key, kept whether or not a definition exists elsewhere. */
  readonly declarations: ReadonlyMap<string, TypeDeclaration>;
  readonly conflicts: readonly LayoutConflict[];
}

export interface FunctionTypeUse {
  /** DW_AT_name (through DW_AT_abstract_origin / DW_AT_specification for out-of-line copies). */
  readonly name: string;
  /** DW_AT_linkage_name values seen, if any (C functions normally have none). */
  readonly linkageNames: readonly string[];
  /** Units holding a definition with code under this name (several for static functions of the same name). */
  readonly units: readonly string[];
  /**
   * Keys of the types the function's DWARF refers to, transitively: parameters, return
   * type, locals, lexical blocks, inlined subroutines (their parameters, locals and return
   * types), through pointers, typedefs, qualifiers, arrays, function types and every member
   * of every struct or union reached (pointer members included: conservative).
   */
  readonly types: ReadonlySet<string>;
  /**
   * Every enum of the function's unit(s). Enumerator constants are folded into code and
   * DWARF does not record which function used which constant, so every enum the compiler
   * emitted for the unit has to be assumed used by every function of it.
   */
  readonly enumsInScope: ReadonlySet<string>;
}

export type ChangeKind =
  | 'type removed'
  | 'definition lost'
  | 'definition gained'
  | 'kind changed'
  | 'size changed'
  | 'target changed'
  | 'member removed'
  | 'member added'
  | 'member moved'
  | 'member renamed'
  | 'member type changed'
  | 'enumerator removed'
  | 'enumerator added'
  | 'enumerator value changed';

export interface LayoutChange {
  readonly key: string;
  readonly change: ChangeKind;
  readonly member?: string;
  readonly enumerator?: string;
  /** The old and new value of what changed (size, offset, type, value), as text. */
  readonly before?: string;
  readonly after?: string;
  /**
   * Whether code built from the new source would misread data or constants laid out by the
   * old code. False only for changes that leave every existing layout and value alone:
   * an enumerator appended with a value no old enumerator had, a type gone from the new
   * unit, a type that was only declared before, a member renamed in place.
   */
  readonly shiftsExisting: boolean;
  /** e.g. `struct device: member 'links' offset 568 -> 576`. */
  readonly message: string;
}
