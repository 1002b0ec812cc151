/**
 * Provisioning frames over serial / USB (PROTOCOL.md §7): the typed messages of the table,
 * their CBOR maps (key 0 = type), the CRC-32 trailer, the streaming decoder for bytes from a
 * serial port, and the proof-of-possession message and credentials digest both ends compute.
 *
 * Frame content = encoded CBOR map ‖ CRC-32 (IEEE 802.3, big-endian) of those CBOR bytes;
 * on the line it is SLIP-encoded (slip.ts) with an END byte before and after it.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { crc32 } from 'node:zlib';
import { EdgegwError, fail, isEdgegwError, ok, type ErrorCode, type Result } from '../common/errors.js';
import { decode, diagnose, encode } from './cbor.js';
import { isDeviceId } from './ids.js';
import { SLIP_TOO_LARGE, SlipReader, slipEncode } from './slip.js';
import { checkRawPublicKey, COSE_ALG_ID, coseAlgFromId, nobleSigner, type CoseAlg } from './keys.js';

export const FRAME_TYPE = Object.freeze({ HELLO: 1, IDENTITY: 2, CREDENTIALS: 3, COMMIT: 4, DONE: 5, ERROR: 15 } as const);

/** PROTOCOL.md §7 ERROR frame codes. */
export const FRAME_ERROR = Object.freeze({ BAD_FRAME: 1, BAD_MESSAGE: 2, POP_FAILED: 3, REFUSED: 4, TIMEOUT: 5, INTERNAL: 6 } as const);

/** Largest frame content (CBOR ‖ CRC-32) accepted or sent, bytes. */
export const DEFAULT_MAX_FRAME_BYTES = 4096;

export interface HelloFrame {
  type: typeof FRAME_TYPE.HELLO;
  /** 16 random bytes. */
  nonce: Uint8Array;
  gatewayId: string;
}

export interface IdentityFrame {
  type: typeof FRAME_TYPE.IDENTITY;
  /** The proposed deviceId, e.g. from the serial number. */
  deviceId: string;
  alg: CoseAlg;
  /** Raw public key (PROTOCOL.md §1). */
  publicKey: Uint8Array;
  /** 64-byte signature by the device key over popMessage(nonce, publicKey). */
  pop: Uint8Array;
  firmwareVersion: string;
  hardwareModel: string;
}

export interface CredentialsFrame {
  type: typeof FRAME_TYPE.CREDENTIALS;
  deviceId: string;
  /** Device certificate, DER. */
  deviceCert: Uint8Array;
  /** The CA certificate that signed the broker's server certificate, DER. */
  caCert: Uint8Array;
  /** The gateway's Ed25519 signing public key, raw 32 bytes. */
  gatewayPublicKey: Uint8Array;
  brokerUrls: string[];
  config: Map<unknown, unknown>;
}

export interface CommitFrame {
  type: typeof FRAME_TYPE.COMMIT;
  /** SHA-256 of the CREDENTIALS frame's CBOR bytes. */
  credentialsDigest: Uint8Array;
}

export interface DoneFrame {
  type: typeof FRAME_TYPE.DONE;
  deviceId: string;
}

export interface ErrorFrame {
  type: typeof FRAME_TYPE.ERROR;
  code: number;
  message: string;
}

export type Frame = HelloFrame | IdentityFrame | CredentialsFrame | CommitFrame | DoneFrame | ErrorFrame;

/** A frame as it arrived, with its CBOR bytes (a COMMIT hashes the CREDENTIALS bytes as received). */
export interface ReceivedFrame {
  frame: Frame;
  cbor: Uint8Array;
}

export interface FrameOptions {
  /** Largest frame content (CBOR ‖ CRC-32), bytes. Default DEFAULT_MAX_FRAME_BYTES. */
  maxFrameBytes?: number;
}

// ---------------------------------------------------------------------------------------
// Field tables: one row per field of the §7 table, read on decode and written on encode.

interface FieldSpec {
  key: number;
  name: string;
  /** What the wire value must be, for the rejection detail. */
  what: string;
  /** The frame value of a wire value, or undefined when the wire value is not allowed. */
  read(v: unknown): unknown;
  /** The wire value of a frame value; identity unless the two differ. */
  write?(v: unknown): unknown;
}

const text = (v: unknown): unknown => (typeof v === 'string' ? v : undefined);
const nonEmptyText = (v: unknown): unknown => (typeof v === 'string' && v.length > 0 ? v : undefined);
const deviceId = (v: unknown): unknown => (isDeviceId(v) ? v : undefined);
const bytes = (v: unknown): unknown => (v instanceof Uint8Array && v.length > 0 ? v : undefined);
const bytesOf = (n: number) => (v: unknown): unknown => (v instanceof Uint8Array && v.length === n ? v : undefined);
const uint = (v: unknown): unknown => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);
const textArray = (v: unknown): unknown => (Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string' && s.length > 0) ? v : undefined);
const map = (v: unknown): unknown => (v instanceof Map ? v : undefined);

const DEVICE_ID_FIELD: FieldSpec = { key: 1, name: 'deviceId', what: 'a deviceId', read: deviceId };

const FIELDS: Readonly<Record<Frame['type'], readonly FieldSpec[]>> = {
  [FRAME_TYPE.HELLO]: [
    { key: 1, name: 'nonce', what: '16 bytes', read: bytesOf(16) },
    { key: 2, name: 'gatewayId', what: 'a non-empty tstr', read: nonEmptyText },
  ],
  [FRAME_TYPE.IDENTITY]: [
    DEVICE_ID_FIELD,
    { key: 2, name: 'alg', what: '-8 (EdDSA) or -7 (ES256)', read: coseAlgFromId, write: (a) => COSE_ALG_ID[a as CoseAlg] },
    { key: 3, name: 'publicKey', what: 'a raw public key', read: bytes },
    { key: 4, name: 'pop', what: 'a 64-byte signature', read: bytesOf(64) },
    { key: 5, name: 'firmwareVersion', what: 'a tstr', read: text },
    { key: 6, name: 'hardwareModel', what: 'a tstr', read: text },
  ],
  [FRAME_TYPE.CREDENTIALS]: [
    DEVICE_ID_FIELD,
    { key: 2, name: 'deviceCert', what: 'non-empty DER bytes', read: bytes },
    { key: 3, name: 'caCert', what: 'non-empty DER bytes', read: bytes },
    { key: 4, name: 'gatewayPublicKey', what: 'a 32-byte Ed25519 key', read: bytesOf(32) },
    { key: 5, name: 'brokerUrls', what: 'a non-empty array of non-empty tstr', read: textArray },
    { key: 6, name: 'config', what: 'a map', read: map },
  ],
  [FRAME_TYPE.COMMIT]: [{ key: 1, name: 'credentialsDigest', what: '32 bytes', read: bytesOf(32) }],
  [FRAME_TYPE.DONE]: [DEVICE_ID_FIELD],
  [FRAME_TYPE.ERROR]: [
    { key: 1, name: 'code', what: 'a uint', read: uint },
    { key: 2, name: 'message', what: 'a tstr', read: text },
  ],
};

/** Checks that span fields: the keys must be valid points of their algorithms. */
function checkKeys(frame: Frame): string | undefined {
  if (frame.type === FRAME_TYPE.IDENTITY) {
    const r = checkRawPublicKey(frame.alg, frame.publicKey);
    if (!r.ok) return `publicKey: ${r.detail ?? r.reason}`;
  }
  if (frame.type === FRAME_TYPE.CREDENTIALS) {
    const r = checkRawPublicKey('EdDSA', frame.gatewayPublicKey);
    if (!r.ok) return `gatewayPublicKey: ${r.detail ?? r.reason}`;
  }
  return undefined;
}

function isFrameType(v: unknown): v is Frame['type'] {
  return typeof v === 'number' && Object.hasOwn(FIELDS, v);
}

function malformed(detail: string): { ok: false; reason: 'EDGEGW_FRAME_MALFORMED'; detail: string } {
  return { ok: false, reason: 'EDGEGW_FRAME_MALFORMED', detail };
}

function frameFromMap(m: unknown): Result<Frame> {
  if (!(m instanceof Map)) return malformed('frame is not a CBOR map');
  const type = m.get(0);
  if (!isFrameType(type)) return malformed('key 0 is not a known frame type');
  const fields = FIELDS[type];
  if (m.size !== fields.length + 1) return malformed(`frame type ${type} must have exactly the keys 0..${fields.length}`);
  const out: Record<string, unknown> = { type };
  for (const f of fields) {
    const v = f.read(m.get(f.key));
    if (v === undefined) return malformed(`frame type ${type} field ${f.key} (${f.name}) must be ${f.what}`);
    out[f.name] = v;
  }
  const frame = out as unknown as Frame;
  const keyProblem = checkKeys(frame);
  return keyProblem === undefined ? ok(frame) : malformed(keyProblem);
}

function mapFromFrame(frame: Frame): Map<number, unknown> {
  if (!isFrameType(frame.type)) throw new EdgegwError('EDGEGW_FRAME_MALFORMED', 'unknown frame type');
  const m = new Map<number, unknown>([[0, frame.type]]);
  const values = frame as unknown as Record<string, unknown>;
  for (const f of FIELDS[frame.type]) {
    const wire = f.write ? f.write(values[f.name]) : values[f.name];
    if (f.read(wire) === undefined) throw new EdgegwError('EDGEGW_FRAME_MALFORMED', `frame type ${frame.type} field ${f.name} must be ${f.what}`);
    m.set(f.key, wire);
  }
  const keyProblem = checkKeys(frame);
  if (keyProblem !== undefined) throw new EdgegwError('EDGEGW_FRAME_MALFORMED', keyProblem);
  return m;
}

// ---------------------------------------------------------------------------------------
// Encoding

/** The deterministic CBOR of a frame (what the CRC and a COMMIT digest cover). Throws EDGEGW_FRAME_MALFORMED for an invalid frame. */
export function encodeFrameCbor(frame: Frame): Uint8Array {
  return encode(mapFromFrame(frame));
}

/** Frame content: CBOR ‖ CRC-32 (IEEE 802.3, big-endian) of the CBOR. */
export function frameContent(cbor: Uint8Array): Uint8Array {
  const out = new Uint8Array(cbor.length + 4);
  out.set(cbor);
  new DataView(out.buffer).setUint32(cbor.length, crc32(cbor));
  return out;
}

/**
 * A frame as it goes on the line: SLIP-encoded content with END at both ends. Throws
 * EDGEGW_FRAME_MALFORMED for an invalid frame and EDGEGW_FRAME_TOO_LARGE when the peer would refuse it.
 */
export function encodeFrame(frame: Frame, opts: FrameOptions = {}): Uint8Array {
  const content = frameContent(encodeFrameCbor(frame));
  const max = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  if (content.length > max) throw new EdgegwError('EDGEGW_FRAME_TOO_LARGE', `frame content of ${content.length} bytes exceeds ${max}`);
  return slipEncode(content);
}

// ---------------------------------------------------------------------------------------
// Decoding

function decodeReceived(content: Uint8Array, max: number): Result<ReceivedFrame> {
  if (content.length > max) return fail('EDGEGW_FRAME_TOO_LARGE', `frame content of ${content.length} bytes exceeds ${max}`);
  // Shorter than one CBOR byte and a CRC: line noise, a "bad frame" (ERROR code 1) like a bad CRC.
  if (content.length < 5) return fail('EDGEGW_FRAME_BAD_CRC', 'frame too short to hold CBOR and a CRC-32');
  const cbor = content.subarray(0, content.length - 4);
  const view = new DataView(content.buffer, content.byteOffset, content.byteLength);
  if (crc32(cbor) !== view.getUint32(content.length - 4)) return fail('EDGEGW_FRAME_BAD_CRC');
  let decoded: unknown;
  try {
    decoded = decode(cbor, { maxBytes: max, floats: 'wrapped' });
  } catch (err) {
    return malformed(isEdgegwError(err) ? `${err.code}: ${err.message}` : 'undecodable CBOR');
  }
  const frame = frameFromMap(decoded);
  return frame.ok ? ok({ frame: frame.value, cbor }) : frame;
}

/** Decodes one frame's content (SLIP already removed). Never throws. Byte strings in the frame are views into `content`. */
export function decodeFrameContent(content: Uint8Array, opts: FrameOptions = {}): Result<Frame> {
  const r = decodeReceived(content, opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
  return r.ok ? ok(r.value.frame) : r;
}

/** Turns bytes from a serial line into frame results, in order (SlipReader + decodeFrameContent). */
export class FrameReader {
  readonly #slip: SlipReader;

  constructor(opts: FrameOptions = {}) {
    this.#slip = new SlipReader(opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
  }

  push(chunk: Uint8Array): Result<ReceivedFrame>[] {
    return this.#slip
      .push(chunk)
      .map((p) => (p === SLIP_TOO_LARGE ? fail('EDGEGW_FRAME_TOO_LARGE', `frame content exceeds ${this.#slip.maxBytes} bytes`) : decodeReceived(p, this.#slip.maxBytes)));
  }
}

/** A Transform for `serialPort.pipe(...)`: bytes in, `Result<ReceivedFrame>` objects out. */
export function createFrameDecoder(opts: FrameOptions = {}): Transform {
  const reader = new FrameReader(opts);
  return new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer, _encoding, callback) {
      for (const r of reader.push(chunk)) this.push(r);
      callback();
    },
  });
}

// ---------------------------------------------------------------------------------------
// What both ends compute

const POP_CONTEXT = new TextEncoder().encode('edgegw-provision-v1');

/** PROTOCOL.md §7: the IDENTITY pop is a signature over "edgegw-provision-v1" ‖ nonce ‖ raw public key. */
export function popMessage(nonce: Uint8Array, rawPublicKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(POP_CONTEXT.length + nonce.length + rawPublicKey.length);
  out.set(POP_CONTEXT);
  out.set(nonce, POP_CONTEXT.length);
  out.set(rawPublicKey, POP_CONTEXT.length + nonce.length);
  return out;
}

/** PROTOCOL.md §7: a COMMIT carries SHA-256 of the CREDENTIALS frame's CBOR bytes. */
export function credentialsDigest(cborBytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(cborBytes).digest());
}

/** The ERROR frame code a station or device sends back for a frame decoding rejection. */
export function frameErrorFor(reason: ErrorCode): number {
  if (reason === 'EDGEGW_FRAME_BAD_CRC' || reason === 'EDGEGW_FRAME_TOO_LARGE') return FRAME_ERROR.BAD_FRAME;
  if (reason === 'EDGEGW_FRAME_MALFORMED') return FRAME_ERROR.BAD_MESSAGE;
  return FRAME_ERROR.INTERNAL;
}

// ---------------------------------------------------------------------------------------
// Worked examples for the provisioning docs

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

/**
 * One frame of each type from fixed inputs, as line bytes (hex) and CBOR diagnostic notation.
 * The device key is RFC 8032 §7.1 TEST 1 and the gateway key TEST 2 (public test keys); the
 * certificates are a stand-in DER SEQUENCE { INTEGER 1 }, not real certificates.
 */
export function exampleFrames(): { name: string; hex: string; diag: string }[] {
  const nonce = hex('000102030405060708090a0b0c0d0e0f');
  const device = nobleSigner('EdDSA', hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'));
  const standInDer = hex('3003020101');
  const credentials: CredentialsFrame = {
    type: FRAME_TYPE.CREDENTIALS,
    deviceId: 'SN-0001',
    deviceCert: standInDer,
    caCert: standInDer,
    gatewayPublicKey: hex('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c'),
    brokerUrls: ['mqtts://gateway.local:8883'],
    config: new Map<unknown, unknown>([['telemetryIntervalS', 60]]),
  };
  const frames: [string, Frame][] = [
    ['HELLO', { type: FRAME_TYPE.HELLO, nonce, gatewayId: 'gw-example' }],
    [
      'IDENTITY',
      {
        type: FRAME_TYPE.IDENTITY,
        deviceId: 'SN-0001',
        alg: 'EdDSA',
        publicKey: device.publicKey,
        pop: device.sign(popMessage(nonce, device.publicKey)),
        firmwareVersion: '1.4.2',
        hardwareModel: 'edge-sensor-r2',
      },
    ],
    ['CREDENTIALS', credentials],
    ['COMMIT', { type: FRAME_TYPE.COMMIT, credentialsDigest: credentialsDigest(encodeFrameCbor(credentials)) }],
    ['DONE', { type: FRAME_TYPE.DONE, deviceId: 'SN-0001' }],
    ['ERROR', { type: FRAME_TYPE.ERROR, code: FRAME_ERROR.POP_FAILED, message: 'proof of possession failed' }],
  ];
  return frames.map(([name, frame]) => ({
    name,
    hex: Buffer.from(encodeFrame(frame)).toString('hex'),
    diag: diagnose(decode(encodeFrameCbor(frame))),
  }));
}
