/**
 * The simulated device's flash: everything a provisioned device keeps across power cycles
 * (its id, signing key, certificate, the gateway's key and broker URLs) plus the two
 * counters that must survive a power cut: the seq reservation and the highest accepted
 * command seq. One file per device, CBOR-encoded as firmware would store it, written
 * atomically with mode 0600 (it holds the private key).
 *
 * seq block reservation: firmware cannot afford a flash write per message, so it writes
 * `reservedUpTo = seq + BLOCK - 1` before using any seq of a new block and, on boot, starts
 * from `reservedUpTo + 1`. A power cut skips at most one block and never reuses a seq
 * (PROTOCOL.md §3: seq strictly increasing over the device's lifetime).
 */
import { existsSync, readFileSync } from 'node:fs';
import { EdgegwError } from '../common/errors.js';
import { writeFileAtomic } from '../common/files.js';
import { decode, encode } from '../protocol/cbor.js';
import { checkRawPublicKey, isDeviceId, type CoseAlg } from '../protocol/index.js';

/** Seqs reserved per flash write. */
export const SEQ_BLOCK = 1000;

const FLASH_VERSION = 1;
// A flash image is a few KiB (two PEMs); anything larger is not ours.
const FLASH_MAX_BYTES = 64 * 1024;

export interface FlashState {
  readonly deviceId: string;
  readonly alg: CoseAlg;
  /** Raw private key (Ed25519 seed or P-256 scalar, 32 bytes). */
  readonly privateKey: Uint8Array;
  /** Device certificate (PEM) for the mqtts listener; empty when the device has none. */
  readonly certPem: string;
  /** CA certificate (PEM) that signed the broker's server certificate. */
  readonly caPem: string;
  readonly gatewayId: string;
  /** Raw Ed25519 public key of the gateway, to verify commands (PROTOCOL.md §6). */
  readonly gatewayPublicKey: Uint8Array;
  /** `mqtts://host:port` and/or `mqtt://host:port`. */
  readonly brokerUrls: readonly string[];
  /** Highest seq the device may use before it writes a new reservation. 0 = none yet. */
  readonly reservedUpTo: number;
  /** Highest command seq accepted; commands at or below it are dropped. */
  readonly commandSeq: number;
}

/** Where a device's flash lives: a file, or memory for devices that never reboot. */
export interface FlashStore {
  load(): FlashState | undefined;
  save(state: FlashState): void;
}

function corrupt(path: string, detail: string, cause?: unknown): EdgegwError {
  return new EdgegwError('EDGEGW_SIM_FLASH_CORRUPT', `${path}: ${detail}`, cause === undefined ? undefined : { cause });
}

function toImage(s: FlashState): Uint8Array {
  return encode(
    new Map<string, unknown>([
      ['v', FLASH_VERSION],
      ['id', s.deviceId],
      ['alg', s.alg],
      ['sk', s.privateKey],
      ['cert', s.certPem],
      ['ca', s.caPem],
      ['gw', s.gatewayId],
      ['gwpk', s.gatewayPublicKey],
      ['urls', [...s.brokerUrls]],
      ['seq', s.reservedUpTo],
      ['cmd', s.commandSeq],
    ]),
  );
}

function fromImage(path: string, bytes: Uint8Array): FlashState {
  let m: unknown;
  try {
    m = decode(bytes, { maxBytes: FLASH_MAX_BYTES });
  } catch (err) {
    throw corrupt(path, 'not CBOR', err);
  }
  if (!(m instanceof Map) || m.get('v') !== FLASH_VERSION) throw corrupt(path, 'not a version 1 flash image');
  const get = <T>(key: string, check: (v: unknown) => boolean): T => {
    const v = m.get(key);
    if (!check(v)) throw corrupt(path, `field ${key} is missing or invalid`);
    return v as T;
  };
  const isUint = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const isBytes32 = (v: unknown): boolean => v instanceof Uint8Array && v.length === 32;
  const alg = get<CoseAlg>('alg', (v) => v === 'EdDSA' || v === 'ES256');
  const gatewayPublicKey = get<Uint8Array>('gwpk', (v) => v instanceof Uint8Array && checkRawPublicKey('EdDSA', v).ok);
  return {
    deviceId: get<string>('id', isDeviceId),
    alg,
    privateKey: get<Uint8Array>('sk', isBytes32).slice(),
    certPem: get<string>('cert', (v) => typeof v === 'string'),
    caPem: get<string>('ca', (v) => typeof v === 'string'),
    gatewayId: get<string>('gw', (v) => typeof v === 'string' && v.length > 0),
    gatewayPublicKey: gatewayPublicKey.slice(),
    brokerUrls: get<string[]>('urls', (v) => Array.isArray(v) && v.length > 0 && v.every((u) => typeof u === 'string')),
    reservedUpTo: get<number>('seq', isUint),
    commandSeq: get<number>('cmd', isUint),
  };
}

/** A flash file at `path`; every save is atomic (temp file, fsync, rename) and mode 0600. */
export function fileFlash(path: string): FlashStore {
  return {
    load() {
      if (!existsSync(path)) return undefined;
      let bytes: Buffer;
      try {
        bytes = readFileSync(path);
      } catch (err) {
        throw corrupt(path, 'unreadable', err);
      }
      return fromImage(path, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    },
    save(state) {
      writeFileAtomic(path, toImage(state), 0o600);
    },
  };
}

/** Flash in memory, encoded and decoded like the file so that both paths are the same. */
export function memoryFlash(initial?: FlashState): FlashStore & { writes: number } {
  let image = initial === undefined ? undefined : toImage(initial);
  const store = {
    writes: 0,
    load: () => (image === undefined ? undefined : fromImage('memory', image)),
    save: (state: FlashState) => {
      image = toImage(state);
      store.writes += 1;
    },
  };
  return store;
}

/**
 * Hands out seqs under block reservation. `next()` persists a new reservation before it
 * returns the first seq of a block, so a seq is never used unless a reboot would skip it.
 */
export interface SeqAllocator {
  next(): number;
  /** Moves past `n` seqs without using them (hostile profiles; a gap is legal, §3). */
  skip(n: number): void;
  /** The seq the next call would return. */
  peek(): number;
}

export function createSeqAllocator(flash: FlashStore, state: { current: FlashState }): SeqAllocator {
  let next = state.current.reservedUpTo + 1;
  const reserveThrough = (seq: number): void => {
    if (seq <= state.current.reservedUpTo) return;
    const reservedUpTo = seq + SEQ_BLOCK - 1;
    const updated = { ...state.current, reservedUpTo };
    // Persist first: if the write throws, the seq is not handed out.
    flash.save(updated);
    state.current = updated;
  };
  return {
    next() {
      reserveThrough(next);
      return next++;
    },
    skip(n) {
      if (!Number.isSafeInteger(n) || n < 0) throw new EdgegwError('EDGEGW_USAGE', 'skip needs a non-negative integer');
      next += n;
    },
    peek: () => next,
  };
}
