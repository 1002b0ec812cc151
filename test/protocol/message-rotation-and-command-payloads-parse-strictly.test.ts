// PROTOCOL.md §3 message payload {1 seq, 2 ts, 3 body}, §5 rotation body {1 alg, 2 key, 3 pop}
// and pop payload [deviceId, seq], §6 command payload {1 seq, 2 ts, 3 body, 4 expiry}: what
// parses, what is refused (EDGEGW_PAYLOAD_INVALID, never a throw), and byte-exact encodings.
import t from 'tap';
import fc from 'fast-check';
import { encode, Tagged } from '../../protocol/cbor.js';
import {
  buildRotationBody,
  decodeSign1,
  encodeCommandPayload,
  encodePopPayload,
  encodeTelemetryPayload,
  generateKeyPair,
  importPublicKey,
  nobleSigner,
  parseCommandPayload,
  parsePopPayload,
  parseRotationBody,
  parseTelemetryPayload,
  signSign1,
  verifySign1,
  keyTopic,
} from '../../protocol/index.js';
import { hex, toHex } from './_vectors.js';
import { cborValue, sameCbor } from './_cbor-arb.js';
import { holds } from './_property.js';

const m = (entries: [unknown, unknown][]): Map<unknown, unknown> => new Map(entries);

t.test('a telemetry payload encodes byte-exactly and parses back', async (t) => {
  // {1: 7, 2: 1700000000000, 3: {"t": 21.5}} in deterministic CBOR (RFC 8949 §4.2.1).
  const bytes = encodeTelemetryPayload({ seq: 7, ts: 1_700_000_000_000, body: { t: 21.5 } });
  t.equal(toHex(bytes), 'a3' + '0107' + '021b0000018bcfe56800' + '03a16174f94d60');
  const r = parseTelemetryPayload(bytes);
  t.ok(r.ok);
  if (r.ok) {
    t.equal(r.value.seq, 7);
    t.equal(r.value.ts, 1_700_000_000_000);
    t.ok(sameCbor(r.value.body, m([['t', 21.5]])));
    t.equal(r.value.bodyIsEncrypted, false);
  }
  const clockless = parseTelemetryPayload(encodeTelemetryPayload({ seq: 1, ts: 0, body: null }));
  t.ok(clockless.ok && clockless.value.ts === 0 && clockless.value.body === null, 'ts 0 = no clock; body may be null');
});

t.test('a tagged COSE_Encrypt0 body is flagged as end-to-end encrypted', async (t) => {
  const enc0 = new Tagged(16, [encode(m([[1, 1]])), m([[5, new Uint8Array(12)]]), new Uint8Array(20)]);
  const r = parseTelemetryPayload(encodeTelemetryPayload({ seq: 2, ts: 5, body: enc0 }));
  t.ok(r.ok && r.value.bodyIsEncrypted, 'tag 16');
  const other = parseTelemetryPayload(encodeTelemetryPayload({ seq: 2, ts: 5, body: new Tagged(18, []) }));
  t.ok(other.ok && !other.value.bodyIsEncrypted, 'another tag is just a value');
});

t.test('a telemetry payload outside the contract is EDGEGW_PAYLOAD_INVALID', async (t) => {
  const bad: [string, Uint8Array][] = [
    ['not CBOR', hex('ff')],
    ['trailing bytes', hex('a3010102010300' + '00')],
    ['an array', encode([1, 2, 3])],
    ['missing body', encode(m([[1, 1], [2, 0]]))],
    ['missing seq', encode(m([[2, 0], [3, 0]]))],
    ['an extra key', encode(m([[1, 1], [2, 0], [3, 0], [4, 0]]))],
    ['text keys', encode(m([['1', 1], ['2', 0], ['3', 0]]))],
    ['seq 0', encode(m([[1, 0], [2, 0], [3, 0]]))],
    ['seq negative', encode(m([[1, -1], [2, 0], [3, 0]]))],
    ['seq beyond 2^53-1', encode(m([[1, 2n ** 53n], [2, 0], [3, 0]]))],
    ['seq a float', encode(m([[1, 1.5], [2, 0], [3, 0]]))],
    // An integral float is still a float: 1.0 is not the uint 1 (a JS number cannot tell them apart).
    ['seq the float 1.0', hex('a301f93c00020003 00'.replace(/ /g, ''))],
    ['seq a float64 7.0', hex('a301fb401c000000000000020003 00'.replace(/ /g, ''))],
    ['ts the float 0.0', hex('a3010102f9000003 00'.replace(/ /g, ''))],
    ['seq text', encode(m([[1, '1'], [2, 0], [3, 0]]))],
    ['ts negative', encode(m([[1, 1], [2, -5], [3, 0]]))],
    ['ts a float', encode(m([[1, 1], [2, 0.5], [3, 0]]))],
    ['ts beyond 2^53-1', encode(m([[1, 1], [2, 2n ** 60n], [3, 0]]))],
  ];
  for (const [what, bytes] of bad) {
    const r = parseTelemetryPayload(bytes);
    t.equal(r.ok ? 'ok' : r.reason, 'EDGEGW_PAYLOAD_INVALID', what);
  }
  // The body is any CBOR value: floats, even as map keys, are kept as they were.
  const floaty = parseTelemetryPayload(hex('a30101020003a1f93e00f93c00'));
  t.equal(floaty.ok ? toHex(encode(floaty.value.body)) : floaty.reason, 'a1f93e00f93c00', 'a body {1.5: 1.0} parses and re-encodes byte for byte');
  const limited = parseTelemetryPayload(encodeTelemetryPayload({ seq: 1, ts: 0, body: 'x'.repeat(200) }), { maxBytes: 100 });
  t.ok(!limited.ok && limited.detail?.startsWith('EDGEGW_CBOR_LIMIT'), 'the CBOR code stays visible in the detail');
  t.throws(() => encodeTelemetryPayload({ seq: 0, ts: 0, body: null }), { code: 'EDGEGW_PAYLOAD_INVALID' }, 'encoder refuses seq 0');
  t.throws(() => encodeTelemetryPayload({ seq: 1, ts: -1, body: null }), { code: 'EDGEGW_PAYLOAD_INVALID' }, 'encoder refuses ts < 0');
  t.throws(() => encodeTelemetryPayload({ seq: 2 ** 53, ts: 0, body: null }), { code: 'EDGEGW_PAYLOAD_INVALID' }, 'encoder refuses unsafe seq');
});

t.test('every payload decoder returns a value or a typed refusal on any input', async (t) => {
  const parsers = [parseTelemetryPayload, parseCommandPayload, parsePopPayload];
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    cborValue().map((v) => encode(v)),
    fc.tuple(cborValue(), cborValue(), cborValue()).map(([a, b, c]) => encode(m([[1, a], [2, b], [3, c]]))),
  );
  holds(
    t,
    'no throw, only EDGEGW_PAYLOAD_INVALID',
    fc.property(input, (bytes) => parsers.every((p) => {
      const r = p(bytes);
      return r.ok || r.reason === 'EDGEGW_PAYLOAD_INVALID';
    })),
    { numRuns: 3000 },
  );
  holds(
    t,
    'rotation bodies: no throw, only EDGEGW_PAYLOAD_INVALID',
    fc.property(fc.oneof(cborValue(), fc.tuple(cborValue(), cborValue(), cborValue()).map(([a, b, c]) => m([[1, a], [2, b], [3, c]]))), (body) => {
      const r = parseRotationBody(body);
      return r.ok || r.reason === 'EDGEGW_PAYLOAD_INVALID';
    }),
    { numRuns: 3000 },
  );
});

t.test('telemetry and command payloads round-trip for any seq, ts, expiry and body', async (t) => {
  const uint = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
  holds(
    t,
    'telemetry',
    fc.property(uint.filter((s) => s >= 1), uint, cborValue(), (seq, ts, body) => {
      const r = parseTelemetryPayload(encodeTelemetryPayload({ seq, ts, body }), { maxDepth: 64 });
      return r.ok && r.value.seq === seq && r.value.ts === ts && sameCbor(r.value.body, body);
    }),
    { numRuns: 500 },
  );
  holds(
    t,
    'command',
    fc.property(uint.filter((s) => s >= 1), uint, uint, cborValue(), (seq, ts, expiry, body) => {
      const r = parseCommandPayload(encodeCommandPayload({ seq, ts, body, expiry }), { maxDepth: 64 });
      return r.ok && r.value.seq === seq && r.value.ts === ts && r.value.expiry === expiry && sameCbor(r.value.body, body);
    }),
    { numRuns: 500 },
  );
});

t.test('a command payload encodes byte-exactly and refuses what the contract does not allow', async (t) => {
  const bytes = encodeCommandPayload({ seq: 3, ts: 1000, body: 'reboot', expiry: 61000 });
  t.equal(toHex(bytes), 'a4' + '0103' + '021903e8' + '0366' + Buffer.from('reboot').toString('hex') + '0419ee48');
  const bad: [string, Uint8Array][] = [
    ['no expiry', encodeTelemetryPayload({ seq: 1, ts: 0, body: 0 })],
    ['negative expiry', encode(m([[1, 1], [2, 0], [3, 0], [4, -1]]))],
    ['expiry text', encode(m([[1, 1], [2, 0], [3, 0], [4, 'soon']]))],
    ['seq 0', encode(m([[1, 0], [2, 0], [3, 0], [4, 0]]))],
    ['an extra key', encode(m([[1, 1], [2, 0], [3, 0], [4, 0], [5, 0]]))],
  ];
  for (const [what, b] of bad) {
    const r = parseCommandPayload(b);
    t.equal(r.ok ? 'ok' : r.reason, 'EDGEGW_PAYLOAD_INVALID', what);
  }
  t.throws(() => encodeCommandPayload({ seq: 1, ts: 0, body: 0, expiry: -1 }), { code: 'EDGEGW_PAYLOAD_INVALID' });
});

t.test('a key rotation body carries a valid new key and a pop signed over [deviceId, seq]', async (t) => {
  // The whole §5 flow at the payload level: the device signs the pop with its new key and
  // the rotation message with its current key; the gateway unwraps both.
  const deviceId = 'SN-0001';
  const seq = 42;
  const topic = keyTopic(deviceId);
  const aad = new TextEncoder().encode(topic);
  const current = nobleSigner('EdDSA', generateKeyPair('EdDSA').privateKey);
  const next = nobleSigner('ES256', generateKeyPair('ES256').privateKey);

  const popPayload = encodePopPayload(deviceId, seq);
  t.equal(toHex(popPayload), '82' + '67' + Buffer.from(deviceId).toString('hex') + '182a', 'pop payload is the encoded [deviceId, seq]');
  const pop = signSign1(next, popPayload, aad);
  const outer = signSign1(current, encodeTelemetryPayload({ seq, ts: 0, body: buildRotationBody({ alg: 'ES256', publicKey: next.publicKey, pop }) }), aad);

  const outerMsg = decodeSign1(outer);
  t.ok(outerMsg.ok);
  if (!outerMsg.ok) return;
  const payload = parseTelemetryPayload(outerMsg.value.payload);
  t.ok(payload.ok);
  if (!payload.ok) return;
  const rotation = parseRotationBody(payload.value.body);
  t.ok(rotation.ok, 'rotation body parses');
  if (!rotation.ok) return;
  t.equal(rotation.value.alg, 'ES256');
  t.equal(toHex(rotation.value.publicKey), toHex(next.publicKey));
  const newKey = importPublicKey(rotation.value.alg, rotation.value.publicKey);
  const popMsg = decodeSign1(rotation.value.pop);
  t.ok(newKey.ok && popMsg.ok);
  if (!newKey.ok || !popMsg.ok) return;
  t.ok(verifySign1(popMsg.value, newKey.value, aad).ok, 'pop verifies with the new key');
  t.same(parsePopPayload(popMsg.value.payload), { ok: true, value: { deviceId, seq } }, 'pop payload names the device and the outer seq');
});

t.test('a rotation body or pop payload outside the contract is EDGEGW_PAYLOAD_INVALID', async (t) => {
  const ed = generateKeyPair('EdDSA').publicKey;
  const p256 = generateKeyPair('ES256').publicKey;
  const pop = new Uint8Array([0xd2, 0x84]);
  const offCurve = p256.slice();
  offCurve[64] = offCurve[64]! ^ 1;
  const bad: [string, unknown][] = [
    ['not a map', [-8, ed, pop]],
    ['unknown alg', m([[1, -35], [2, ed], [3, pop]])],
    ['alg as text', m([[1, 'EdDSA'], [2, ed], [3, pop]])],
    ['Ed25519 key of 31 bytes', m([[1, -8], [2, ed.subarray(0, 31)], [3, pop]])],
    ['P-256 key with an Ed25519 alg', m([[1, -8], [2, p256], [3, pop]])],
    ['Ed25519 key with an ES256 alg', m([[1, -7], [2, ed], [3, pop]])],
    ['P-256 key off the curve', m([[1, -7], [2, offCurve], [3, pop]])],
    ['compressed P-256 key', m([[1, -7], [2, new Uint8Array([2, ...p256.subarray(1, 33)])], [3, pop]])],
    ['key as text', m([[1, -8], [2, 'key'], [3, pop]])],
    ['empty pop', m([[1, -8], [2, ed], [3, new Uint8Array(0)]])],
    ['pop as an embedded array', m([[1, -8], [2, ed], [3, new Tagged(18, [])]])],
    ['an extra key', m([[1, -8], [2, ed], [3, pop], [4, 0]])],
  ];
  for (const [what, body] of bad) {
    const r = parseRotationBody(body);
    t.equal(r.ok ? 'ok' : r.reason, 'EDGEGW_PAYLOAD_INVALID', what);
  }
  t.ok(parseRotationBody(m([[1, -8], [2, ed], [3, pop]])).ok, 'the same body with a valid key parses');
  t.throws(() => buildRotationBody({ alg: 'EdDSA', publicKey: p256, pop }), { code: 'EDGEGW_PAYLOAD_INVALID' });

  const badPops: [string, Uint8Array][] = [
    ['three elements', encode(['D', 1, 2])],
    ['a map', encode(m([[0, 'D'], [1, 1]]))],
    ['bad deviceId', encode(['D/1', 1])],
    ['seq 0', encode(['D', 0])],
    ['seq as text', encode(['D', '1'])],
    ['not CBOR', hex('82')],
  ];
  for (const [what, b] of badPops) {
    const r = parsePopPayload(b);
    t.equal(r.ok ? 'ok' : r.reason, 'EDGEGW_PAYLOAD_INVALID', what);
  }
  t.throws(() => encodePopPayload('a b', 1), { code: 'EDGEGW_PAYLOAD_INVALID' });
  t.throws(() => encodePopPayload('D', 0), { code: 'EDGEGW_PAYLOAD_INVALID' });
});
