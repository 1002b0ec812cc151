/**
 * What the cloud does with `POST /v1/ingest` (PROTOCOL.md §8): decode the batch strictly,
 * re-verify every record end to end (the original COSE_Sign1 against the device's key from
 * the export, external_aad = the topic, and the signed seq/ts against the record's), then
 * store. A malformed batch is the gateway's bug and is refused as a whole (400); a record
 * that fails verification is a security finding about that record, kept apart with its
 * reason while the rest of the batch is accepted. The checks are split around the signature,
 * the expensive one, so it can run on worker threads: `precheck` does the rest.
 */
import { decode } from '../protocol/cbor.js';
import { decodeSign1, sigStructure, verifySignatureBytes, parseTelemetryPayload, parseTopic, isDeviceId, type VerifyKey } from '../protocol/index.js';
import { EdgegwError, fail, ok, type ErrorCode, type Result } from '../common/errors.js';
import type { IngestRecord } from './db.js';
import type { DeviceSet } from './devices.js';

const RECORD_KEYS = ['gw', 'dev', 'kid', 'seq', 'ts', 'rx', 'topic', 'cose'] as const;
/** Largest batch, in records; the gateway's own cap is lower (batchMaxRecords ≤ 50,000). */
export const MAX_BATCH_RECORDS = 50_000;

function bad(detail: string): EdgegwError {
  return new EdgegwError('EDGEGW_CLOUDSIM_BAD_REQUEST', detail);
}

const isUint = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;

/** Decodes a §8 body; throws EDGEGW_CLOUDSIM_BAD_REQUEST for anything out of contract. */
export function decodeBatch(body: Uint8Array): IngestRecord[] {
  let top: unknown;
  try {
    top = decode(body, { maxBytes: body.length, maxDepth: 4, maxItems: 1 + MAX_BATCH_RECORDS * 17, floats: 'wrapped' });
  } catch (err) {
    throw bad(`body is not CBOR: ${(err as EdgegwError).code}`);
  }
  if (!Array.isArray(top) || top.length === 0 || top.length > MAX_BATCH_RECORDS) throw bad(`body must be an array of 1..${MAX_BATCH_RECORDS} records`);
  return top.map((item, i) => {
    if (!(item instanceof Map) || item.size !== RECORD_KEYS.length || !RECORD_KEYS.every((k) => item.has(k))) {
      throw bad(`record ${i}: must be a map with exactly the keys ${RECORD_KEYS.join(', ')}`);
    }
    const r = Object.fromEntries(item) as Record<(typeof RECORD_KEYS)[number], unknown>;
    if (typeof r.gw !== 'string' || r.gw.length === 0 || r.gw.length > 64) throw bad(`record ${i}: gw`);
    if (!isDeviceId(r.dev)) throw bad(`record ${i}: dev`);
    if (!(r.kid instanceof Uint8Array) || r.kid.length !== 8) throw bad(`record ${i}: kid must be 8 bytes`);
    if (!isUint(r.seq, 1) || !isUint(r.ts, 0) || !isUint(r.rx, 0)) throw bad(`record ${i}: seq, ts and rx must be unsigned integers (seq ≥ 1)`);
    if (typeof r.topic !== 'string' || r.topic.length > 256) throw bad(`record ${i}: topic`);
    if (!(r.cose instanceof Uint8Array) || r.cose.length === 0) throw bad(`record ${i}: cose must be a bstr`);
    return { gw: r.gw, dev: r.dev, kid: r.kid, seq: r.seq, ts: r.ts, rx: r.rx, topic: r.topic, cose: r.cose };
  });
}

const utf8 = new TextEncoder();

/** A record that passed every check but the signature: what the signature check needs. */
export interface SignatureJob {
  key: VerifyKey;
  toBeSigned: Uint8Array;
  signature: Uint8Array;
  /** The signed payload's seq and ts equal the record's (compared after the signature). */
  payloadMatches: Result<void>;
}

/** Every check of one record except the signature itself (cheap, synchronous). */
export function precheck(r: IngestRecord, devices: DeviceSet): Result<SignatureJob> {
  const topic = parseTopic(r.topic);
  if (!topic.ok) return topic;
  if (topic.value.deviceId !== r.dev || topic.value.kind === 'command') {
    return fail('EDGEGW_VERIFY_IDENTITY_MISMATCH', `topic ${r.topic} is not a device-to-gateway topic of ${r.dev}`);
  }
  const known = devices.byKid.get(Buffer.from(r.kid).toString('hex'));
  if (known === undefined) return fail('EDGEGW_VERIFY_UNKNOWN_KID');
  if (known.deviceId !== r.dev) return fail('EDGEGW_VERIFY_KID_NOT_BOUND', `kid belongs to ${known.deviceId}`);
  const msg = decodeSign1(r.cose);
  if (!msg.ok) return msg;
  if (msg.value.kid === undefined || !Buffer.from(msg.value.kid).equals(r.kid)) return fail('EDGEGW_COSE_KID_MISMATCH', 'the record kid is not the signed kid');
  if (msg.value.alg !== known.key.alg) return fail('EDGEGW_COSE_ALG_KEY_MISMATCH', `message alg ${msg.value.alg}, key alg ${known.key.alg}`);
  const payload = parseTelemetryPayload(msg.value.payload);
  const payloadMatches: Result<void> = !payload.ok
    ? payload
    : payload.value.seq !== r.seq || payload.value.ts !== r.ts
      ? fail('EDGEGW_CLOUDSIM_BAD_REQUEST', 'the record seq/ts differ from the signed payload')
      : ok(undefined);
  return ok({ key: known.key, toBeSigned: sigStructure(msg.value.protectedBytes, utf8.encode(r.topic), msg.value.payload), signature: msg.value.signature, payloadMatches });
}

function finish(job: SignatureJob, valid: boolean): Result<void> {
  return valid ? job.payloadMatches : fail('EDGEGW_COSE_BAD_SIGNATURE');
}

/** Re-verifies one record end to end against the device export, on this thread. */
export function verifyRecord(r: IngestRecord, devices: DeviceSet): Result<void> {
  const job = precheck(r, devices);
  if (!job.ok) return job;
  return finish(job.value, verifySignatureBytes(job.value.key, job.value.toBeSigned, job.value.signature));
}

export interface Verified {
  good: IngestRecord[];
  bad: { r: IngestRecord; reason: ErrorCode; detail?: string }[];
}

/** Signature checks on worker threads (the gateway's verifier pool), or inline when absent. */
export type SignatureChecker = (job: SignatureJob) => Promise<boolean>;

export async function verifyBatch(records: readonly IngestRecord[], devices: DeviceSet, check?: SignatureChecker): Promise<Verified> {
  const jobs = records.map((r) => precheck(r, devices));
  const valid = await Promise.all(
    jobs.map((j) => (!j.ok ? false : check ? check(j.value) : verifySignatureBytes(j.value.key, j.value.toBeSigned, j.value.signature))),
  );
  const out: Verified = { good: [], bad: [] };
  records.forEach((r, i) => {
    const j = jobs[i]!;
    const v = j.ok ? finish(j.value, valid[i]!) : j;
    if (v.ok) out.good.push(r);
    else out.bad.push({ r, reason: v.reason, ...(v.detail === undefined ? {} : { detail: v.detail }) });
  });
  return out;
}
