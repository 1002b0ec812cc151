/**
 * The payloads carried inside COSE_Sign1 messages: the signed message payload of telemetry
 * and events (PROTOCOL.md §3), the key rotation body and its proof-of-possession payload (§5)
 * and the command payload (§6). Parsers take untrusted bytes and return a typed value or an
 * EDGEGW_PAYLOAD_INVALID rejection (never a throw); encoders take values the caller built and
 * throw EDGEGW_PAYLOAD_INVALID when one is out of contract, so a bad message is never sent.
 *
 * Integers must be safe JavaScript integers (at most 2^53 − 1): a seq beyond that cannot be
 * compared exactly, and no device lives long enough to need one.
 */
import { EdgegwError, fail, isEdgegwError, ok, type Result } from '../common/errors.js';
import { decode, DEFAULT_DECODE_LIMITS, encode, Tagged, type DecodeLimits, type DecodeOptions } from './cbor.js';
import { isDeviceId } from './ids.js';
import { checkRawPublicKey, COSE_ALG_ID, coseAlgFromId, type CoseAlg } from './keys.js';

/** CBOR tag of COSE_Encrypt0 (RFC 9052 §2): a body the gateway relays without reading. */
export const COSE_ENCRYPT0_TAG = 16;

export interface TelemetryPayload {
  /** ≥ 1, strictly increasing over the device's lifetime (PROTOCOL.md §3). */
  seq: number;
  /** Milliseconds since the Unix epoch by the device's clock; 0 = the device has no clock. */
  ts: number;
  body: unknown;
  /** The body is a tagged COSE_Encrypt0: end-to-end encrypted for the cloud. */
  bodyIsEncrypted: boolean;
}

export interface CommandPayload {
  /** Per device, increasing (PROTOCOL.md §6). */
  seq: number;
  /** Milliseconds since the Unix epoch by the gateway's clock. */
  ts: number;
  body: unknown;
  /** Milliseconds since the Unix epoch after which the device drops the command. */
  expiry: number;
}

export interface RotationBody {
  alg: CoseAlg;
  /** The new raw public key (PROTOCOL.md §1), checked to be a valid point of `alg`. */
  publicKey: Uint8Array;
  /** The encoded tagged COSE_Sign1 made with the new key over encodePopPayload(deviceId, seq). */
  pop: Uint8Array;
}

export interface PopPayload {
  deviceId: string;
  seq: number;
}

const SEQ = 1;
const TS = 2;
const BODY = 3;
const EXPIRY = 4;
const R_ALG = 1;
const R_KEY = 2;
const R_POP = 3;

type Invalid = { ok: false; reason: 'EDGEGW_PAYLOAD_INVALID'; detail?: string };

function invalid(detail: string): Invalid {
  return fail('EDGEGW_PAYLOAD_INVALID', detail);
}

// Floats stay floats: a uint field given as 1.0 is refused, not read as 1. The default
// options are built once: the gateway parses every message's payload with them.
const WRAPPED_DEFAULTS: DecodeOptions = Object.freeze({ ...DEFAULT_DECODE_LIMITS, floats: 'wrapped' });

function decodeBytes(bytes: Uint8Array, limits: Partial<DecodeLimits>): Result<unknown> {
  try {
    return ok(decode(bytes, limits === DEFAULT_DECODE_LIMITS ? WRAPPED_DEFAULTS : { ...limits, floats: 'wrapped' }));
  } catch (err) {
    // decode throws only EdgegwError; its code stays visible in the detail.
    return invalid(isEdgegwError(err) ? `${err.code}: ${err.message}` : 'undecodable');
  }
}

function isUint(v: unknown, min: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
}

/** A map holding exactly `keys`: a missing key and an extra key are both refused. */
function exactMap(v: unknown, keys: readonly number[], what: string): Result<Map<unknown, unknown>> {
  if (!(v instanceof Map)) return invalid(`${what} is not a map`);
  if (v.size !== keys.length || !keys.every((k) => v.has(k))) return invalid(`${what} must have exactly the keys ${keys.join(', ')}`);
  return ok(v);
}

// The integer fields of the §3 and §6 payloads: key, name, least value.
type UintField = readonly [key: number, name: string, min: number];
const MESSAGE_UINTS: readonly UintField[] = [
  [SEQ, 'seq', 1],
  [TS, 'ts', 0],
];
const COMMAND_UINTS: readonly UintField[] = [...MESSAGE_UINTS, [EXPIRY, 'expiry', 0]];
// Computed once: the message parser runs for every message the gateway receives.
const MESSAGE_KEYS = [SEQ, TS, BODY];
const COMMAND_KEYS = [SEQ, TS, BODY, EXPIRY];

/** The first integer field out of range, as a detail; undefined when all hold. */
function uintProblem(fields: readonly UintField[], get: (key: number, name: string) => unknown): string | undefined {
  for (const [key, name, min] of fields) if (!isUint(get(key, name), min)) return `${name} must be an integer in ${min}..2^53-1`;
  return undefined;
}

/** Decodes a map of exactly `fields` plus the body, with its integers in range. */
function parseMessageMap(
  bytes: Uint8Array,
  limits: Partial<DecodeLimits>,
  fields: readonly UintField[],
  keys: readonly number[],
  what: string,
): Result<Map<unknown, unknown>> {
  const decoded = decodeBytes(bytes, limits);
  if (!decoded.ok) return decoded;
  const m = exactMap(decoded.value, keys, what);
  if (!m.ok) return m;
  const problem = uintProblem(fields, (key) => m.value.get(key));
  return problem === undefined ? m : invalid(problem);
}

function encodeMessageMap(p: object, fields: readonly UintField[]): Uint8Array {
  const values = p as Record<string, unknown>;
  const problem = uintProblem(fields, (_key, name) => values[name]);
  if (problem !== undefined) throw new EdgegwError('EDGEGW_PAYLOAD_INVALID', problem);
  return encode(new Map<number, unknown>([...fields.map(([key, name]): [number, unknown] => [key, values[name]]), [BODY, values.body]]));
}

/** PROTOCOL.md §3 payload `{1: seq, 2: ts, 3: body}`. */
export function parseTelemetryPayload(bytes: Uint8Array, limits: Partial<DecodeLimits> = DEFAULT_DECODE_LIMITS): Result<TelemetryPayload> {
  const m = parseMessageMap(bytes, limits, MESSAGE_UINTS, MESSAGE_KEYS, 'payload');
  if (!m.ok) return m;
  const body = m.value.get(BODY);
  return ok({ seq: m.value.get(SEQ) as number, ts: m.value.get(TS) as number, body, bodyIsEncrypted: body instanceof Tagged && body.tag === COSE_ENCRYPT0_TAG });
}

export function encodeTelemetryPayload(p: { seq: number; ts: number; body: unknown }): Uint8Array {
  return encodeMessageMap(p, MESSAGE_UINTS);
}

/** PROTOCOL.md §6 payload `{1: seq, 2: ts, 3: body, 4: expiry}`. */
export function parseCommandPayload(bytes: Uint8Array, limits: Partial<DecodeLimits> = DEFAULT_DECODE_LIMITS): Result<CommandPayload> {
  const m = parseMessageMap(bytes, limits, COMMAND_UINTS, COMMAND_KEYS, 'command payload');
  if (!m.ok) return m;
  return ok({ seq: m.value.get(SEQ) as number, ts: m.value.get(TS) as number, body: m.value.get(BODY), expiry: m.value.get(EXPIRY) as number });
}

export function encodeCommandPayload(p: CommandPayload): Uint8Array {
  return encodeMessageMap(p, COMMAND_UINTS);
}

function mustBe(cond: boolean, detail: string): void {
  if (!cond) throw new EdgegwError('EDGEGW_PAYLOAD_INVALID', detail);
}

/**
 * PROTOCOL.md §5 rotation body `{1: new alg, 2: new raw public key, 3: pop}`, taken from the
 * already decoded body of a §3 message on `d/D/k`. The key is checked to be a valid point
 * (keys.ts) so a rotation to an unusable key is refused before anything is stored. The pop
 * stays opaque bytes here: the caller decodes and verifies it with the new key.
 */
export function parseRotationBody(body: unknown): Result<RotationBody> {
  const m = exactMap(body, [R_ALG, R_KEY, R_POP], 'rotation body');
  if (!m.ok) return m;
  const alg = coseAlgFromId(m.value.get(R_ALG));
  if (alg === undefined) return invalid('rotation alg must be -8 (EdDSA) or -7 (ES256)');
  const publicKey = m.value.get(R_KEY);
  if (!(publicKey instanceof Uint8Array)) return invalid('rotation public key must be a bstr');
  const keyCheck = checkRawPublicKey(alg, publicKey);
  if (!keyCheck.ok) return invalid(`rotation public key: ${keyCheck.detail ?? keyCheck.reason}`);
  const pop = m.value.get(R_POP);
  if (!(pop instanceof Uint8Array) || pop.length === 0) return invalid('rotation pop must be a non-empty bstr');
  return ok({ alg, publicKey, pop });
}

/** The rotation body as a map, to pass as `body` to encodeTelemetryPayload. */
export function buildRotationBody(r: RotationBody): Map<number, unknown> {
  const keyCheck = checkRawPublicKey(r.alg, r.publicKey);
  mustBe(keyCheck.ok, 'rotation public key does not match its alg');
  mustBe(r.pop instanceof Uint8Array && r.pop.length > 0, 'rotation pop must be non-empty bytes');
  return new Map<number, unknown>([
    [R_ALG, COSE_ALG_ID[r.alg]],
    [R_KEY, r.publicKey],
    [R_POP, r.pop],
  ]);
}

/** PROTOCOL.md §5: the pop's payload, the encoded array `[deviceId, seq]`. */
export function encodePopPayload(deviceId: string, seq: number): Uint8Array {
  mustBe(isDeviceId(deviceId), 'pop deviceId is not a deviceId');
  mustBe(isUint(seq, 1), 'pop seq must be an integer in 1..2^53-1');
  return encode([deviceId, seq]);
}

export function parsePopPayload(bytes: Uint8Array): Result<PopPayload> {
  const decoded = decodeBytes(bytes, DEFAULT_DECODE_LIMITS);
  if (!decoded.ok) return decoded;
  const v = decoded.value;
  if (!Array.isArray(v) || v.length !== 2) return invalid('pop payload must be an array of 2');
  const [deviceId, seq] = v as unknown[];
  if (!isDeviceId(deviceId)) return invalid('pop payload deviceId is not a deviceId');
  if (!isUint(seq, 1)) return invalid('pop payload seq must be an integer in 1..2^53-1');
  return ok({ deviceId, seq });
}
