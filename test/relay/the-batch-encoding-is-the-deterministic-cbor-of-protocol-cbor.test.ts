// The relay writes §8 batches with a specialised encoder (its hot path). It must produce the
// very bytes protocol/cbor.ts's deterministic encoder (RFC 8949 §4.2.1) produces for the same
// array of maps, for any record: property-tested with fast-check over the whole value ranges
// (argument sizes 0 through 8 bytes, empty and long strings and byte strings, non-ASCII text).
import t from 'tap';
import fc from 'fast-check';
import { encode, decode } from '../../protocol/cbor.js';
import { encodeBatch } from '../../gateway/relay/index.js';
import type { OutboxRecord } from '../../gateway/store/index.js';

const uint = fc.oneof(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 70_000 }), fc.maxSafeNat());
const record: fc.Arbitrary<OutboxRecord> = fc.record({
  id: fc.nat(),
  deviceId: fc.string({ minLength: 1, maxLength: 64 }),
  kid: fc.uint8Array({ minLength: 0, maxLength: 8 }),
  seq: uint,
  ts: uint,
  rxMs: uint,
  topic: fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 40 })),
  cose: fc.uint8Array({ maxLength: 70_000 }),
});

const generic = (gw: string, records: readonly OutboxRecord[]) =>
  encode(records.map((r) => ({ gw, dev: r.deviceId, kid: r.kid, seq: r.seq, ts: r.ts, rx: r.rxMs, topic: r.topic, cose: r.cose })));

t.test('encodeBatch equals encode() of the same array of maps', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 64 }), fc.array(record, { maxLength: 30 }), (gw, records) => {
      const fast = encodeBatch(gw, records);
      const slow = generic(gw, records);
      return Buffer.from(fast).equals(Buffer.from(slow));
    }),
    { numRuns: 300 },
  );
  t.pass('300 random batches agree byte for byte');
});

t.test('a batch of 300 records (array head of 3 bytes) and the empty batch agree too', async (t) => {
  const r: OutboxRecord = { id: 1, deviceId: 'd', kid: new Uint8Array(8), seq: 2 ** 40, ts: 0, rxMs: 255, topic: 'd/d/t/x', cose: new Uint8Array(300) };
  const many = Array.from({ length: 300 }, () => r);
  t.same(encodeBatch('gw', many), generic('gw', many));
  t.same(encodeBatch('gw', []), generic('gw', []));
  t.equal((decode(encodeBatch('gw', many), { maxItems: 10_000, maxBytes: 1 << 20 }) as unknown[]).length, 300);
});

t.test('a value that is not an unsigned integer is refused, not mis-encoded', async (t) => {
  const bad = { id: 1, deviceId: 'd', kid: new Uint8Array(8), seq: -1, ts: 0, rxMs: 0, topic: 't', cose: new Uint8Array(1) };
  t.throws(() => encodeBatch('gw', [bad]), { code: 'EDGEGW_CBOR_UNSUPPORTED' });
});
