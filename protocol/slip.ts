/**
 * SLIP framing (RFC 1055) for the provisioning line of PROTOCOL.md §7: an encoder that puts an
 * END byte before and after each packet, and a receiver with a size limit.
 *
 * Encoding uses @serialport/parser-slip-encoder's SlipEncoder. Receiving does not use its
 * SlipDecoder: it buffers without limit until an END arrives and copies its whole buffer for
 * every byte (measured on this machine: 256 KiB without an END took 4.4 s of CPU), while a
 * serial port is untrusted input whose size limit must apply before anything more is
 * buffered. SlipReader is the bounded, linear receiver; the tests check it against
 * SlipDecoder on well-formed streams.
 */
import { SlipEncoder } from '@serialport/parser-slip-encoder';
import { EdgegwError } from '../common/errors.js';

// RFC 1055 special bytes.
const END = 0xc0;
const ESC = 0xdb;
const ESC_END = 0xdc;
const ESC_ESC = 0xdd;

/** The mark SlipReader yields for a packet that outgrew its limit. */
export const SLIP_TOO_LARGE = Symbol('SLIP packet too large');
/** What SlipReader yields: a packet's bytes, or SLIP_TOO_LARGE. */
export type SlipPacket = Uint8Array | typeof SLIP_TOO_LARGE;

/**
 * RFC 1055 receiver with a size limit. Memory is one buffer of maxBytes, reused; a packet that
 * grows past it is reported at once (SLIP_TOO_LARGE) and the rest of it, up to the next END,
 * is dropped without being stored. Empty packets (the leading END) are ignored. An ESC
 * followed by anything but ESC_END or ESC_ESC keeps that byte, as RFC 1055's reference
 * receiver does (the frame's CRC then fails), except END, which still ends the packet so that
 * a corrupted frame never swallows the next one.
 */
export class SlipReader {
  readonly #buf: Uint8Array;
  #len = 0;
  #escaped = false;
  #dropping = false;

  constructor(readonly maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new EdgegwError('EDGEGW_USAGE', 'maxBytes must be a positive integer');
    this.#buf = new Uint8Array(maxBytes);
  }

  /** Feeds bytes; returns the packets they complete, in order. */
  push(chunk: Uint8Array): SlipPacket[] {
    const out: SlipPacket[] = [];
    for (let i = 0; i < chunk.length; i++) {
      let b = chunk[i]!;
      if (b === END) {
        if (!this.#dropping && this.#len > 0) out.push(this.#buf.slice(0, this.#len));
        this.#len = 0;
        this.#escaped = false;
        this.#dropping = false;
        continue;
      }
      if (this.#dropping) continue;
      if (this.#escaped) {
        this.#escaped = false;
        if (b === ESC_END) b = END;
        else if (b === ESC_ESC) b = ESC;
      } else if (b === ESC) {
        this.#escaped = true;
        continue;
      }
      if (this.#len === this.maxBytes) {
        out.push(SLIP_TOO_LARGE);
        this.#dropping = true;
        this.#len = 0;
        continue;
      }
      this.#buf[this.#len++] = b;
    }
    return out;
  }
}

/**
 * One packet as line bytes. bluetoothQuirk adds the leading END (RFC 1055 allows it and
 * recommends it, to flush line noise into an empty packet the receiver ignores); without it
 * SlipEncoder writes only the trailing END. A fresh encoder transforms synchronously, so
 * read() right after write() returns the whole packet.
 */
export function slipEncode(packet: Uint8Array): Uint8Array {
  if (packet.length === 0) throw new EdgegwError('EDGEGW_USAGE', 'an empty SLIP packet is ignored by receivers; there is nothing to send');
  const encoder = new SlipEncoder({ bluetoothQuirk: true });
  encoder.write(packet);
  const out = encoder.read() as Buffer | null;
  if (out === null) throw new EdgegwError('EDGEGW_INTERNAL', 'SLIP encoder produced no output');
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
