// The checks of PROTOCOL.md §3 and the ACL of §2, through a real broker and real clients:
// each bad message gets its own reason code, and the BOLA cases (one device acting as
// another) are refused.
import t from 'tap';
import { startGateway } from '../helpers/gateway.js';
import { makeDevice, connectDevice, signedTelemetry, publishQos1 } from '../helpers/devices.js';
import { encodeTelemetryPayload, nobleSigner, signSign1, telemetryTopic } from '../../protocol/index.js';

const utf8 = new TextEncoder();

function waitClose(client: { once(ev: 'close', fn: () => void): unknown }, ms = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    client.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

t.test('rejections by reason, duplicates and BOLA cases', async (t) => {
  // Every signature on worker threads, as the gateway checks them under load.
  const gw = await startGateway(t, { freshnessS: 300, verifyWorkers: 2, verifyInlineWhenIdle: false });
  const a = await makeDevice(gw.registrar, 'dev-a', 'EdDSA');
  const b = await makeDevice(gw.registrar, 'dev-b', 'ES256');
  const ca = await connectDevice(a, gw.ready.mqttsPort, gw.ready.caFile);
  t.teardown(() => void ca.end(true));
  const counters = gw.gateway.store.counters;
  const rejected = (code: string): number => counters.get(`rejected.${code}`);

  for (let seq = 1; seq <= 100; seq++) {
    const m = signedTelemetry(a, seq);
    await publishQos1(ca, m.topic, m.payload);
  }
  t.equal(counters.get('accepted'), 100);

  // A QoS 1 redelivery: acknowledged, not stored twice, not an alert.
  const dup = signedTelemetry(a, 100);
  await publishQos1(ca, dup.topic, dup.payload);
  t.equal(counters.get('duplicates'), 1, 'duplicate counted');
  t.equal(counters.get('accepted'), 100, 'duplicate not stored');

  // Reordering inside the window is fine; below H - 64 is a replay.
  const late = signedTelemetry(a, 101);
  await publishQos1(ca, late.topic, late.payload);
  const old = signedTelemetry(a, 30);
  await publishQos1(ca, old.topic, old.payload);
  t.equal(rejected('EDGEGW_VERIFY_REPLAY'), 1, 'seq <= H - 64 is a replay');
  t.ok(gw.gateway.alerts.recent().some((e) => e.code === 'EDGEGW_VERIFY_REPLAY'), 'a replay raises an alert');

  // Tampered payload: one flipped byte in the signed bytes.
  const tampered = signedTelemetry(a, 102);
  tampered.payload[tampered.payload.length - 70]! ^= 0x01;
  await publishQos1(ca, tampered.topic, tampered.payload);
  t.equal(rejected('EDGEGW_COSE_BAD_SIGNATURE'), 1, 'tampered message fails its signature');

  // Copied to another of A's own topics: the topic is the external_aad.
  const moved = signedTelemetry(a, 103, { stream: 'temp' });
  await publishQos1(ca, telemetryTopic('dev-a', 'humidity'), moved.payload);
  t.equal(rejected('EDGEGW_COSE_BAD_SIGNATURE'), 2, 'a message moved to another topic fails');

  // A signature of the wrong length (here 300 bytes): refused by the signature check, and
  // the gateway (its verification workers included) goes on.
  const longSig = { ...a.signer, sign: () => new Uint8Array(300).fill(9) };
  const topicL = telemetryTopic('dev-a', 'temp');
  await publishQos1(ca, topicL, signSign1(longSig, encodeTelemetryPayload({ seq: 103, ts: Date.now(), body: 1 }), utf8.encode(topicL)));
  t.equal(rejected('EDGEGW_COSE_BAD_SIGNATURE'), 3, 'a 300-byte signature fails its signature check');

  // Clock skew beyond the freshness window.
  const stale = signedTelemetry(a, 104, { ts: Date.now() - 3_600_000 });
  await publishQos1(ca, stale.topic, stale.payload);
  t.equal(rejected('EDGEGW_VERIFY_STALE'), 1, 'stale timestamp');

  // Malformed and oversized payloads.
  await publishQos1(ca, telemetryTopic('dev-a', 'temp'), Buffer.from([0xd2, 0x84, 0x40]));
  t.equal(rejected('EDGEGW_CBOR_MALFORMED'), 1, 'truncated CBOR');
  const big = Buffer.alloc(16 * 1024 + 100, 0x41);
  await publishQos1(ca, telemetryTopic('dev-a', 'temp'), big);
  t.equal(rejected('EDGEGW_VERIFY_TOO_LARGE'), 1, 'payload over 16 KiB');

  // Untagged COSE_Sign1 is invalid on the wire.
  const topic = telemetryTopic('dev-a', 'temp');
  const untagged = signSign1(a.signer, encodeTelemetryPayload({ seq: 105, ts: Date.now(), body: 1 }), utf8.encode(topic), { tagged: false });
  await publishQos1(ca, topic, untagged);
  t.equal(rejected('EDGEGW_COSE_NOT_TAGGED'), 1, 'untagged Sign1');

  // BOLA: B's key used on A's topic (A's connection): kid not bound to dev-a.
  const bOnA = signedTelemetry(b, 1, { topic });
  await publishQos1(ca, topic, bOnA.payload);
  t.equal(rejected('EDGEGW_VERIFY_KID_NOT_BOUND'), 1, "B's key on A's topic");

  // An unknown key.
  const strangerKey = signedTelemetry({ id: 'dev-a', signer: nobleSigner('EdDSA', new Uint8Array(32).fill(7)) }, 106);
  await publishQos1(ca, strangerKey.topic, strangerKey.payload);
  t.equal(rejected('EDGEGW_VERIFY_UNKNOWN_KID'), 1, 'unregistered key');

  // A subscribing to d/# or to B's commands: SUBACK failure, recorded.
  const subscribe = (filter: string): Promise<string> =>
    new Promise((resolve) => ca.subscribe(filter, { qos: 1 }, (err, g) => resolve(err ? 'refused' : `granted ${g?.[0]?.qos}`)));
  t.equal(await subscribe('d/#'), 'refused', 'd/# refused (SUBACK 0x80)');
  t.equal(await subscribe('d/dev-b/c/#'), 'refused', "B's commands refused");
  t.equal(await subscribe('d/dev-a/c/#'), 'granted 1', 'its own command subtree granted');
  t.equal(counters.get('refused.EDGEGW_BROKER_ACL_SUBSCRIBE'), 2);

  t.equal(counters.get('accepted'), 101, 'nothing bad was stored');

  // A publishing under B's prefix: refused, connection closed.
  const closed = waitClose(ca);
  ca.publish(telemetryTopic('dev-b', 'temp'), signedTelemetry(a, 107).payload, { qos: 1 }, () => undefined);
  t.ok(await closed, 'the connection is closed on an ACL violation');
  t.equal(counters.get('refused.EDGEGW_BROKER_ACL_PUBLISH'), 1);
  t.ok(gw.gateway.alerts.recent().some((e) => e.code === 'EDGEGW_BROKER_ACL_PUBLISH' && e.severity === 'critical'));
});

t.test("A's certificate with B's client id, retain, and QoS 2 are refused", async (t) => {
  const gw = await startGateway(t);
  const a = await makeDevice(gw.registrar, 'dev-a', 'EdDSA');
  await makeDevice(gw.registrar, 'dev-b', 'EdDSA');
  await t.rejects(connectDevice({ ...a, id: 'dev-b' }, gw.ready.mqttsPort, gw.ready.caFile), /Identifier rejected|refused/i);
  t.equal(gw.gateway.store.counters.get('refused.EDGEGW_BROKER_CLIENT_ID_MISMATCH'), 1);
  await t.rejects(connectDevice({ ...a, id: '' }, gw.ready.mqttsPort, gw.ready.caFile), 'empty client id refused');

  const ca = await connectDevice(a, gw.ready.mqttsPort, gw.ready.caFile);
  const closed = waitClose(ca);
  const m = signedTelemetry(a, 1);
  ca.publish(m.topic, m.payload, { qos: 1, retain: true }, () => undefined);
  t.ok(await closed);
  t.equal(gw.gateway.store.counters.get('refused.EDGEGW_BROKER_RETAIN_REFUSED'), 1);

  const ca2 = await connectDevice(a, gw.ready.mqttsPort, gw.ready.caFile);
  const closed2 = waitClose(ca2);
  ca2.publish(m.topic, m.payload, { qos: 2 }, () => undefined);
  t.ok(await closed2);
  t.equal(gw.gateway.store.counters.get('refused.EDGEGW_BROKER_QOS_REFUSED'), 1);
});

t.test('revoking or quarantining a device closes its live session and refuses it afterwards', async (t) => {
  const gw = await startGateway(t);
  const a = await makeDevice(gw.registrar, 'dev-a', 'EdDSA');
  const b = await makeDevice(gw.registrar, 'dev-b', 'EdDSA');
  const ca = await connectDevice(a, gw.ready.mqttsPort, gw.ready.caFile);
  const cb = await connectDevice(b, gw.ready.mqttsPort, gw.ready.caFile);
  t.teardown(() => void cb.end(true));
  const closed = waitClose(ca, 5000);
  // Another connection (as the CLI would) changes the registry.
  gw.registrar.store.registry.setStatus('dev-a', 'revoked');
  t.ok(await closed, 'session closed without a restart');
  await t.rejects(connectDevice(a, gw.ready.mqttsPort, gw.ready.caFile), /Not authorized/i);
  t.ok(gw.gateway.store.counters.get('refused.EDGEGW_BROKER_CERT_REVOKED') >= 1, 'revoked certificate refused');

  const closedB = waitClose(cb, 5000);
  gw.registrar.store.registry.setStatus('dev-b', 'quarantined');
  t.ok(await closedB, 'quarantined session closed');
  await t.rejects(connectDevice(b, gw.ready.mqttsPort, gw.ready.caFile), /Not authorized/i);
  t.ok(gw.gateway.store.counters.get('refused.EDGEGW_BROKER_DEVICE_NOT_ACTIVE') >= 1);
});
