/**
 * x86-64 instruction boundaries and the few properties the differ and the matcher ask about,
 * through iced-x86. The wasm objects iced hands out are freed here, so callers see plain data.
 */
import { Decoder, DecoderOptions, Mnemonic, OpKind, Register } from 'iced-x86';

export interface Instruction {
  /** Offset of the first byte, relative to the start of the decoded bytes. */
  offset: number;
  length: number;
  /** `mov $imm, %reg`: the form a `__LINE__` argument takes. */
  movesImmediateToRegister: boolean;
  /** For `mov $imm, %reg` (32- or 64-bit), the register (iced's name, `ESI`) and the value. */
  immediate?: { register: string; value: bigint };
  isCall: boolean;
  /** Not a decodable instruction (data or padding). */
  invalid: boolean;
}

export function decodeInstructions(bytes: Uint8Array): Instruction[] {
  const decoder = new Decoder(64, bytes, DecoderOptions.None);
  decoder.ip = 0n;
  const out: Instruction[] = [];
  try {
    while (decoder.canDecode) {
      const offset = Number(decoder.ip);
      const instruction = decoder.decode();
      try {
        const movesImmediate =
          instruction.mnemonic === Mnemonic.Mov &&
          instruction.op0Kind === OpKind.Register &&
          (instruction.op1Kind === OpKind.Immediate32 || instruction.op1Kind === OpKind.Immediate32to64 || instruction.op1Kind === OpKind.Immediate64);
        out.push({
          offset,
          length: instruction.length,
          movesImmediateToRegister: movesImmediate && instruction.op1Kind !== OpKind.Immediate64,
          ...(movesImmediate ? { immediate: { register: Register[instruction.op0Register] ?? '', value: instruction.immediate(1) } } : {}),
          isCall: instruction.mnemonic === Mnemonic.Call,
          invalid: instruction.isInvalid,
        });
      } finally {
        instruction.free();
      }
    }
  } finally {
    decoder.free();
  }
  return out;
}

/** The instruction that contains byte `offset`, by binary search. */
export function instructionAt(instructions: readonly Instruction[], offset: number): Instruction | undefined {
  let lo = 0;
  let hi = instructions.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const i = instructions[mid] as Instruction;
    if (offset < i.offset) hi = mid - 1;
    else if (offset >= i.offset + i.length) lo = mid + 1;
    else return i;
  }
  return undefined;
}
