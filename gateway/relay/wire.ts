/**
 * The relay's bytes on the wire (PROTOCOL.md §8): a batch of outbox records as an encoded
 * CBOR array of maps with text keys, and the batch id sent as Idempotency-Key. The same body
 * travels over the MQTT bridge.
 */
import { createHash } from 'node:crypto';
import { encode } from '../../protocol/cbor.js';
import { EdgegwError } from '../../common/errors.js';
import type { OutboxRecord } from '../store/index.js';

/** One batch on its way out: the records of one lane, in outbox order. */
export interface Batch {
  /** Idempotency-Key: stable for the same records, so a batch re-sent after a crash is recognised. */
  readonly id: string;
  readonly records: readonly OutboxRecord[];
  /** The encoded §8 body. */
  readonly body: Uint8Array;
}

/**
 * The batch id depends only on the gateway id and the outbox ids it carries: the same rows
 * re-read after a restart get the same id. Ids of one outbox never repeat (store/outbox.ts lastOutboxId),
 * and the digest covers every id, since a lane's batch is not a contiguous id range.
 */
export function batchId(gatewayId: string, records: readonly OutboxRecord[]): string {
  const h = createHash('sha256').update(gatewayId).update('\0');
  const ids = new Float64Array(records.length);
  records.forEach((r, i) => (ids[i] = r.id));
  h.update(new Uint8Array(ids.buffer));
  const first = records[0]?.id ?? 0;
  const last = records[records.length - 1]?.id ?? 0;
  return `${first}-${last}-${h.digest('base64url').slice(0, 22)}`;
}

// The §8 record keys in deterministic order (RFC 8949 §4.2.1: sorted by their encoded bytes),
// each encoded once by protocol/cbor.ts.
const KEYS = ['gw', 'dev', 'kid', 'seq', 'ts', 'rx', 'topic', 'cose'] as const;
type Key = (typeof KEYS)[number];
const ORDERED: { key: Key; bytes: Uint8Array }[] = KEYS.map((key) => ({ key, bytes: encode(key) })).sort((a, b) => Buffer.compare(a.bytes, b.bytes));

/**
 * The §8 body: an array of record maps, deterministically encoded. This is the relay's hot
 * path (a backlog drain encodes every record once), so it writes the one fixed shape directly
 * instead of going through the generic encoder's per-map key sorting: the keys come
 * pre-encoded and pre-sorted, the values are text strings, unsigned integers and byte strings
 * with preferred (shortest) argument encoding. test/relay/the-batch-encoding-is-the-deterministic-cbor-of-protocol-cbor.test.ts
 * holds it byte for byte to `encode()` of protocol/cbor.ts.
 */
export function encodeBatch(gatewayId: string, records: readonly OutboxRecord[]): Uint8Array {
  const gw = utf8.encode(gatewayId);
  const parts: Uint8Array[] = [];
  let size = 9;
  const texts = records.map((r) => ({ dev: utf8.encode(r.deviceId), topic: utf8.encode(r.topic) }));
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    size += 1 + 8 * 9 + 40 + gw.length + texts[i]!.dev.length + texts[i]!.topic.length + r.kid.length + r.cose.length;
  }
  const out = new Uint8Array(size + ORDERED.reduce((n, k) => n + k.bytes.length, 0) * records.length);
  const view = new DataView(out.buffer);
  let at = head(out, view, 0, 4, records.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    out[at++] = 0xa8; // map of 8 pairs
    for (const k of ORDERED) {
      out.set(k.bytes, at);
      at += k.bytes.length;
      switch (k.key) {
        case 'gw':
          at = bytes(out, view, at, 3, gw);
          break;
        case 'dev':
          at = bytes(out, view, at, 3, texts[i]!.dev);
          break;
        case 'topic':
          at = bytes(out, view, at, 3, texts[i]!.topic);
          break;
        case 'kid':
          at = bytes(out, view, at, 2, r.kid);
          break;
        case 'cose':
          at = bytes(out, view, at, 2, r.cose);
          break;
        case 'seq':
          at = uint(out, view, at, r.seq);
          break;
        case 'ts':
          at = uint(out, view, at, r.ts);
          break;
        case 'rx':
          at = uint(out, view, at, r.rxMs);
          break;
      }
    }
  }
  return out.slice(0, at);
}

const utf8 = new TextEncoder();

/** RFC 8949 §3 head with the shortest argument (§4.2.1); returns the next offset. */
function head(out: Uint8Array, view: DataView, at: number, major: number, n: number): number {
  const m = major << 5;
  if (n < 24) {
    out[at] = m | n;
    return at + 1;
  }
  if (n < 0x100) {
    out[at] = m | 24;
    out[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    out[at] = m | 25;
    view.setUint16(at + 1, n);
    return at + 3;
  }
  if (n < 0x100000000) {
    out[at] = m | 26;
    view.setUint32(at + 1, n);
    return at + 5;
  }
  out[at] = m | 27;
  view.setBigUint64(at + 1, BigInt(n));
  return at + 9;
}

function uint(out: Uint8Array, view: DataView, at: number, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new EdgegwError('EDGEGW_CBOR_UNSUPPORTED', `record field ${n} is not an unsigned integer`);
  return head(out, view, at, 0, n);
}

function bytes(out: Uint8Array, view: DataView, at: number, major: 2 | 3, b: Uint8Array): number {
  const next = head(out, view, at, major, b.length);
  out.set(b, next);
  return next + b.length;
}

export function makeBatch(gatewayId: string, records: readonly OutboxRecord[]): Batch {
  return { id: batchId(gatewayId, records), records, body: encodeBatch(gatewayId, records) };
}
