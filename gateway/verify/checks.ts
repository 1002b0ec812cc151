/**
 * The checks of PROTOCOL.md §3, in its order, as pure functions: nothing here does I/O or
 * reads the clock. The first failing check is the recorded reason.
 *
 *   size -> CBOR/COSE structure -> alg -> kid known, bound to the topic's device, which is
 *   the connection's identity -> key active (or retiring in grace), device not revoked or
 *   quarantined -> signature -> payload -> replay window -> freshness
 *
 * The signature check sits in the middle but is the expensive one, so the stages are split
 * around it: `preVerify` (cheap, synchronous) yields the Sig_structure to verify, possibly on
 * a worker thread, and `postVerify` finishes with payload, replay and freshness.
 */
import { decodeSign1, type Sign1, type VerifyKey, type CoseAlg } from '../../protocol/index.js';
import { parseTelemetryPayload } from '../../protocol/index.js';
import { fail, ok, type ErrorCode, type Result } from '../../common/errors.js';
import { classifySeq, type ReplayState } from './replay.js';

/** An MQTT PUBLISH as the broker hands it over, before any check. */
export interface IncomingPublish {
  /** The connection's authenticated device id. */
  readonly identity: string;
  readonly topic: string;
  /** The topic's device segment (the broker's ACL has already matched it to the identity). */
  readonly topicDevice: string;
  readonly payload: Uint8Array;
  readonly qos: number;
  readonly rxMs: number;
  readonly address?: string;
}

export interface KeyEntry {
  readonly key: VerifyKey;
  readonly kidHex: string;
  readonly deviceId: string;
  readonly status: 'active' | 'retiring' | 'retired';
  readonly retireAtMs: number | null;
}

/** What the checks need to know of the registry: an in-memory snapshot. */
export interface RegistryView {
  key(kidHex: string): KeyEntry | undefined;
  deviceStatus(deviceId: string): 'active' | 'quarantined' | 'revoked' | undefined;
}

export interface VerifyPolicy {
  readonly maxPayloadBytes: number;
  readonly allowedAlgs: readonly CoseAlg[];
  /** PROTOCOL.md §3 freshness: |ts - now| must not exceed this (ts = 0 exempt). */
  readonly freshnessMs: number;
}

/** Passed the checks before the signature; carries what the signature check needs. */
export interface PreVerified {
  readonly msg: IncomingPublish;
  readonly sign1: Sign1;
  readonly key: KeyEntry;
  /**
   * The topic's UTF-8 bytes: the external_aad of the RFC 9052 §4.4 Sig_structure. Shared
   * between messages on one topic: read-only.
   */
  readonly aad: Uint8Array;
}

/** Passed every check: the payload fields the store and the replay window need. */
export interface Verified {
  readonly pre: PreVerified;
  readonly seq: number;
  readonly ts: number;
  readonly body: unknown;
}

const utf8 = new TextEncoder();

/**
 * Topics' UTF-8 bytes, encoded once per topic rather than once per message. A device has a
 * handful of topics; the bound only keeps a fleet's worth from growing without end.
 */
const topicBytes = new Map<string, Uint8Array>();
const MAX_CACHED_TOPICS = 65_536;

function aadOf(topic: string): Uint8Array {
  let bytes = topicBytes.get(topic);
  if (bytes === undefined) {
    bytes = utf8.encode(topic);
    if (topicBytes.size >= MAX_CACHED_TOPICS) topicBytes.clear();
    topicBytes.set(topic, bytes);
  }
  return bytes;
}

export function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function preVerify(msg: IncomingPublish, view: RegistryView, policy: VerifyPolicy, nowMs: number): Result<PreVerified> {
  if (msg.payload.length > policy.maxPayloadBytes) {
    return fail('EDGEGW_VERIFY_TOO_LARGE', `${msg.payload.length} > ${policy.maxPayloadBytes} bytes`);
  }
  const decoded = decodeSign1(msg.payload, { maxBytes: policy.maxPayloadBytes });
  if (!decoded.ok) return decoded;
  const sign1 = decoded.value;
  if (!policy.allowedAlgs.includes(sign1.alg)) return fail('EDGEGW_COSE_ALG_UNSUPPORTED', sign1.alg);
  if (sign1.kid === undefined) return fail('EDGEGW_VERIFY_UNKNOWN_KID', 'no kid');
  const kidHex = hexOf(sign1.kid);
  const key = view.key(kidHex);
  if (key === undefined) return fail('EDGEGW_VERIFY_UNKNOWN_KID', kidHex);
  if (key.deviceId !== msg.topicDevice) return fail('EDGEGW_VERIFY_KID_NOT_BOUND', `kid ${kidHex} is not ${msg.topicDevice}'s`);
  if (msg.topicDevice !== msg.identity) return fail('EDGEGW_VERIFY_IDENTITY_MISMATCH');
  const keyUsable = key.status === 'active' || (key.status === 'retiring' && key.retireAtMs !== null && nowMs < key.retireAtMs);
  if (!keyUsable) return fail('EDGEGW_VERIFY_KEY_INACTIVE', `key ${kidHex} is ${key.status}`);
  const status = view.deviceStatus(key.deviceId);
  if (status === 'revoked' || status === undefined) return fail('EDGEGW_VERIFY_DEVICE_REVOKED');
  if (status === 'quarantined') return fail('EDGEGW_VERIFY_DEVICE_QUARANTINED');
  if (sign1.alg !== key.key.alg) return fail('EDGEGW_COSE_ALG_KEY_MISMATCH');
  return ok({ msg, sign1, key, aad: aadOf(msg.topic) });
}

export type PostVerdict =
  | { ok: true; verdict: 'new' | 'duplicate'; value: Verified }
  | { ok: false; reason: ErrorCode; detail?: string };

/** Payload, replay window and freshness, after a valid signature. */
export function postVerify(pre: PreVerified, window: ReplayState, policy: VerifyPolicy, nowMs: number): PostVerdict {
  const parsed = parseTelemetryPayload(pre.sign1.payload);
  if (!parsed.ok) return parsed;
  const { seq, ts, body } = parsed.value;
  const verdict = classifySeq(window, seq);
  if (verdict === 'replay') return fail('EDGEGW_VERIFY_REPLAY', `seq ${seq} <= ${window.high} - 64`);
  if (ts !== 0 && Math.abs(ts - nowMs) > policy.freshnessMs) {
    return fail('EDGEGW_VERIFY_STALE', `ts off by ${Math.round((ts - nowMs) / 1000)} s`);
  }
  return { ok: true, verdict, value: { pre, seq, ts, body } };
}
