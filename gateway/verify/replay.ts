/**
 * The per-device replay window of PROTOCOL.md §3: the highest accepted seq H and a bitmap
 * of the last W = 64 seqs (bit i set = seq H - i was accepted). Pure: no I/O.
 */

export const REPLAY_WINDOW = 64;

export interface ReplayState {
  readonly high: number;
  /** Bit i set means seq (high - i) was accepted; bit 0 is `high` itself. */
  readonly bitmap: bigint;
}

export const EMPTY_REPLAY_STATE: ReplayState = Object.freeze({ high: 0, bitmap: 0n });

export type ReplayVerdict = 'new' | 'duplicate' | 'replay';

const MASK = (1n << BigInt(REPLAY_WINDOW)) - 1n;

/** Classifies `seq` against the window without changing it. */
export function classifySeq(state: ReplayState, seq: number): ReplayVerdict {
  if (seq > state.high) return 'new';
  const age = state.high - seq;
  if (age >= REPLAY_WINDOW) return 'replay';
  return (state.bitmap >> BigInt(age)) & 1n ? 'duplicate' : 'new';
}

/** The window after accepting `seq` (which `classifySeq` called 'new'). */
export function acceptSeq(state: ReplayState, seq: number): ReplayState {
  if (seq > state.high) {
    const shift = seq - state.high;
    const moved = shift >= REPLAY_WINDOW ? 0n : (state.bitmap << BigInt(shift)) & MASK;
    return { high: seq, bitmap: moved | 1n };
  }
  return { high: state.high, bitmap: state.bitmap | (1n << BigInt(state.high - seq)) };
}

export function bitmapToBytes(bitmap: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, bitmap & MASK);
  return out;
}

export function bitmapFromBytes(bytes: Uint8Array): bigint {
  if (bytes.length !== 8) return 0n;
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0);
}
