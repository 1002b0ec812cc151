// PROTOCOL.md §5: a device rotates its key on d/D/k with a proof of possession of the new
// key; the gateway makes the new key active, keeps the old one retiring for the grace
// period, and answers with a signed `rotated` command (§6) carrying the new kid and a
// certificate for the new key.
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { startGateway } from '../helpers/gateway.js';
import { makeDevice, connectDevice, signedTelemetry, publishQos1 } from '../helpers/devices.js';
import {
  generateKeyPair,
  nobleSigner,
  signSign1,
  encodeTelemetryPayload,
  encodePopPayload,
  buildRotationBody,
  keyTopic,
  kidOf,
  decodeSign1,
  verifySign1Noble,
  parseCommandPayload,
} from '../../protocol/index.js';

const utf8 = new TextEncoder();

t.test('rotation with a valid proof makes the new key active and sends a signed rotated command', async (t) => {
  const gw = await startGateway(t, { keyGraceS: 3600 });
  const dev = await makeDevice(gw.registrar, 'rot-1', 'EdDSA');
  const client = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
  t.teardown(() => void client.end(true));
  const commands: { topic: string; payload: Buffer }[] = [];
  client.on('message', (topic, payload) => commands.push({ topic, payload }));
  await new Promise<void>((resolve, reject) => client.subscribe('d/rot-1/c/#', { qos: 1 }, (err) => (err ? reject(err) : resolve())));

  const m1 = signedTelemetry(dev, 1);
  await publishQos1(client, m1.topic, m1.payload);

  const next = generateKeyPair('ES256');
  const newSigner = nobleSigner('ES256', next.privateKey);
  const topic = keyTopic('rot-1');
  const seq = 2;
  const pop = signSign1(newSigner, encodePopPayload('rot-1', seq), utf8.encode(topic));
  const body = buildRotationBody({ alg: 'ES256', publicKey: next.publicKey, pop });
  const outer = signSign1(dev.signer, encodeTelemetryPayload({ seq, ts: Date.now(), body }), utf8.encode(topic));
  await publishQos1(client, topic, outer);

  const deadline = Date.now() + 5000;
  while (commands.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.equal(commands.length, 1, 'one command received');
  const cmd = commands[0]!;
  t.equal(cmd.topic, 'd/rot-1/c/rotated');
  const sign1 = decodeSign1(new Uint8Array(cmd.payload));
  t.ok(sign1.ok, 'the command is a tagged COSE_Sign1');
  if (!sign1.ok) return;
  const gwPub = new Uint8Array(Buffer.from(gw.ready.gatewayPublicKey, 'hex'));
  t.ok(verifySign1Noble(sign1.value, 'EdDSA', gwPub, utf8.encode(cmd.topic)).ok, "signed by the gateway's key over its topic");
  const payload = parseCommandPayload(sign1.value.payload);
  t.ok(payload.ok);
  if (!payload.ok) return;
  t.ok(payload.value.expiry > Date.now(), 'not expired');
  const rotated = payload.value.body as Map<number, Uint8Array>;
  t.same(Buffer.from(rotated.get(1)!), Buffer.from(kidOf(next.publicKey)), 'carries the new kid');
  const cert = new X509Certificate(Buffer.from(rotated.get(2)!));
  t.match(cert.subject, /CN=rot-1/, 'and a certificate for the device');
  const raw = cert.publicKey.export({ format: 'jwk' }) as { x: string; y: string };
  t.equal(Buffer.from(raw.x, 'base64url').toString('hex'), Buffer.from(next.publicKey.subarray(1, 33)).toString('hex'), 'for the new key');

  const keys = gw.gateway.store.registry.keysOf('rot-1');
  t.same(keys.map((k) => k.status), ['retiring', 'active']);

  // New key accepted; old key still accepted within the grace period.
  const m3 = signedTelemetry({ id: 'rot-1', signer: newSigner }, 3);
  await publishQos1(client, m3.topic, m3.payload);
  const m4 = signedTelemetry(dev, 4);
  await publishQos1(client, m4.topic, m4.payload);
  t.equal(gw.gateway.store.counters.get('accepted'), 4, 'both keys accepted during the grace period');
});

t.test('a rotation whose proof of possession does not verify changes nothing and is alerted', async (t) => {
  const gw = await startGateway(t);
  const dev = await makeDevice(gw.registrar, 'rot-2', 'EdDSA');
  const client = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
  t.teardown(() => void client.end(true));
  const next = generateKeyPair('EdDSA');
  const topic = keyTopic('rot-2');
  // The pop is signed by a third key, not the one being registered.
  const wrongPop = signSign1(nobleSigner('EdDSA', generateKeyPair('EdDSA').privateKey), encodePopPayload('rot-2', 1), utf8.encode(topic));
  const body = buildRotationBody({ alg: 'EdDSA', publicKey: next.publicKey, pop: wrongPop });
  await publishQos1(client, topic, signSign1(dev.signer, encodeTelemetryPayload({ seq: 1, ts: Date.now(), body }), utf8.encode(topic)));
  await new Promise((r) => setTimeout(r, 300));
  t.same(gw.gateway.store.registry.keysOf('rot-2').map((k) => k.status), ['active'], 'old key still the only one');
  t.ok(gw.gateway.alerts.recent().some((e) => e.kind === 'key_rotation_refused'), 'alerted');
});
