// The pure checks of gateway/verify against registry snapshots built in the test (data,
// not a mock): key and device states, identity binding, algorithm policy, and the replay
// window against a simple model.
import t from 'tap';
import fc from 'fast-check';
import { preVerify, postVerify, hexOf, type RegistryView, type KeyEntry, type IncomingPublish, type VerifyPolicy } from '../../gateway/verify/checks.js';
import { acceptSeq, classifySeq, EMPTY_REPLAY_STATE, REPLAY_WINDOW, bitmapFromBytes, bitmapToBytes, type ReplayState } from '../../gateway/verify/replay.js';
import { generateKeyPair, importPublicKey, nobleSigner, signSign1, encodeTelemetryPayload, telemetryTopic, verifySign1 } from '../../protocol/index.js';
import { CborFloat, encode } from '../../protocol/cbor.js';

const NOW = 1_800_000_000_000;
const policy: VerifyPolicy = { maxPayloadBytes: 16384, allowedAlgs: ['EdDSA', 'ES256'], freshnessMs: 300_000 };
const utf8 = new TextEncoder();

function setup(keyStatus: KeyEntry['status'], retireAtMs: number | null, deviceStatus: 'active' | 'quarantined' | 'revoked' | undefined) {
  const { privateKey, publicKey } = generateKeyPair('EdDSA');
  const imported = importPublicKey('EdDSA', publicKey);
  if (!imported.ok) throw new Error('key');
  const entry: KeyEntry = { key: imported.value, kidHex: hexOf(imported.value.kid), deviceId: 'dev', status: keyStatus, retireAtMs };
  const view: RegistryView = { key: (k) => (k === entry.kidHex ? entry : undefined), deviceStatus: () => deviceStatus };
  const signer = nobleSigner('EdDSA', privateKey);
  const msg = (seq: number, over: Partial<IncomingPublish> = {}): IncomingPublish => {
    const topic = telemetryTopic('dev', 'temp');
    const payload = signSign1(signer, encodeTelemetryPayload({ seq, ts: NOW, body: 1 }), utf8.encode(topic));
    return { identity: 'dev', topic, topicDevice: 'dev', payload, qos: 1, rxMs: NOW, ...over };
  };
  return { view, msg };
}

t.test('key and device states decide, in order', async (t) => {
  const cases: [KeyEntry['status'], number | null, 'active' | 'quarantined' | 'revoked' | undefined, string][] = [
    ['active', null, 'active', 'ok'],
    ['retiring', NOW + 1000, 'active', 'ok'],
    ['retiring', NOW, 'active', 'EDGEGW_VERIFY_KEY_INACTIVE'],
    ['retired', null, 'active', 'EDGEGW_VERIFY_KEY_INACTIVE'],
    ['active', null, 'revoked', 'EDGEGW_VERIFY_DEVICE_REVOKED'],
    ['active', null, undefined, 'EDGEGW_VERIFY_DEVICE_REVOKED'],
    ['active', null, 'quarantined', 'EDGEGW_VERIFY_DEVICE_QUARANTINED'],
    ['retired', null, 'revoked', 'EDGEGW_VERIFY_KEY_INACTIVE'],
  ];
  for (const [keyStatus, retireAt, devStatus, expected] of cases) {
    const { view, msg } = setup(keyStatus, retireAt, devStatus);
    const res = preVerify(msg(1), view, policy, NOW);
    t.equal(res.ok ? 'ok' : res.reason, expected, `${keyStatus}/${retireAt}/${devStatus}`);
    if (res.ok) t.ok(verifySign1(res.value.sign1, res.value.key.key, res.value.aad).ok, 'the signature verifies over the topic as external_aad');
  }
});

t.test('identity, topic binding and algorithm policy', async (t) => {
  const { view, msg } = setup('active', null, 'active');
  const other = msg(1, { identity: 'intruder' });
  t.equal((preVerify(other, view, policy, NOW) as { reason: string }).reason, 'EDGEGW_VERIFY_IDENTITY_MISMATCH', 'the connection is not the topic device');
  const moved = msg(1, { topicDevice: 'someone' });
  t.equal((preVerify(moved, view, policy, NOW) as { reason: string }).reason, 'EDGEGW_VERIFY_KID_NOT_BOUND');
  const edOnly = { ...policy, allowedAlgs: ['ES256' as const] };
  t.equal((preVerify(msg(1), view, edOnly, NOW) as { reason: string }).reason, 'EDGEGW_COSE_ALG_UNSUPPORTED', 'alg outside the configured set');
  const small = { ...policy, maxPayloadBytes: 50 };
  t.equal((preVerify(msg(1), view, small, NOW) as { reason: string }).reason, 'EDGEGW_VERIFY_TOO_LARGE', 'size is checked first');
});

t.test('postVerify: duplicate, replay and freshness', async (t) => {
  const { view, msg } = setup('active', null, 'active');
  const pre = preVerify(msg(100), view, policy, NOW);
  if (!pre.ok) throw new Error('pre');
  let w: ReplayState = EMPTY_REPLAY_STATE;
  const first = postVerify(pre.value, w, policy, NOW);
  t.ok(first.ok && first.verdict === 'new');
  w = acceptSeq(w, 100);
  const again = postVerify(pre.value, w, policy, NOW);
  t.ok(again.ok && again.verdict === 'duplicate', 'same seq again is a duplicate');
  w = acceptSeq(w, 200);
  const replay = postVerify(pre.value, w, policy, NOW);
  t.equal(replay.ok ? 'ok' : replay.reason, 'EDGEGW_VERIFY_REPLAY', 'seq <= H - 64');
  const late = postVerify(pre.value, EMPTY_REPLAY_STATE, policy, NOW + 301_000);
  t.equal(late.ok ? 'ok' : late.reason, 'EDGEGW_VERIFY_STALE', 'older than 300 s');
  const edge = postVerify(pre.value, EMPTY_REPLAY_STATE, policy, NOW + 300_000);
  t.ok(edge.ok, 'exactly 300 s is still fresh');
});

t.test('a correctly signed payload whose seq is the float 1.0 is refused as a malformed payload', async (t) => {
  const { privateKey, publicKey } = generateKeyPair('EdDSA');
  const imported = importPublicKey('EdDSA', publicKey);
  if (!imported.ok) throw new Error('key');
  const entry: KeyEntry = { key: imported.value, kidHex: hexOf(imported.value.kid), deviceId: 'dev', status: 'active', retireAtMs: null };
  const view: RegistryView = { key: (k) => (k === entry.kidHex ? entry : undefined), deviceStatus: () => 'active' };
  const topic = telemetryTopic('dev', 'temp');
  // {1: 1.0, 2: NOW, 3: 1}: the uint seq written as a half-precision float.
  const payload = encode(new Map<number, unknown>([[1, new CborFloat(1)], [2, NOW], [3, 1]]));
  const cose = signSign1(nobleSigner('EdDSA', privateKey), payload, utf8.encode(topic));
  const pre = preVerify({ identity: 'dev', topic, topicDevice: 'dev', payload: cose, qos: 1, rxMs: NOW }, view, policy, NOW);
  if (!pre.ok) throw new Error(pre.reason);
  t.ok(verifySign1(pre.value.sign1, pre.value.key.key, pre.value.aad).ok, 'the signature is valid');
  const post = postVerify(pre.value, EMPTY_REPLAY_STATE, policy, NOW);
  t.equal(post.ok ? 'ok' : post.reason, 'EDGEGW_PAYLOAD_INVALID', 'seq 1.0 is not the uint 1');
});

t.test('the replay window agrees with a set-based model (PROTOCOL.md §3)', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 400 }), { maxLength: 300 }), (seqs) => {
      let w: ReplayState = EMPTY_REPLAY_STATE;
      const seen = new Set<number>();
      let high = 0;
      for (const s of seqs) {
        const expected = s > high ? 'new' : s <= high - REPLAY_WINDOW ? 'replay' : seen.has(s) ? 'duplicate' : 'new';
        const got = classifySeq(w, s);
        if (got !== expected) return false;
        if (got === 'new') {
          w = acceptSeq(w, s);
          seen.add(s);
          high = Math.max(high, s);
        }
        if (bitmapFromBytes(bitmapToBytes(w.bitmap)) !== w.bitmap) return false;
      }
      return true;
    }),
    { numRuns: 500 },
  );
  t.pass('500 random sequences classified as the model does');
});
