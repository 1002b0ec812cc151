// Abuse from the network: connection floods from one address, garbage bytes, half-open
// connections, keepalive outside bounds, publish floods. The gateway stays up and an honest
// device keeps working. Attackers use 127.0.0.2 (loopback) so the honest device on
// 127.0.0.1 is a different address.
import t from 'tap';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { startGateway } from '../helpers/gateway.js';
import { makeDevice, connectDevice, signedTelemetry, publishQos1 } from '../helpers/devices.js';
import { createConnectToken, nobleSigner } from '../../protocol/index.js';
import mqtt from 'mqtt';

function openAndWait(port: number, localAddress: string, data?: Buffer): Promise<'closed' | 'open'> {
  return new Promise((resolve) => {
    const s: Socket = netConnect({ host: '127.0.0.1', port, localAddress });
    s.on('error', () => undefined);
    s.on('connect', () => {
      if (data) s.write(data);
    });
    const timer = setTimeout(() => {
      s.destroy();
      resolve('open');
    }, 3000);
    s.on('close', () => {
      clearTimeout(timer);
      resolve('closed');
    });
  });
}

t.test('5,000 connection attempts from one address get it banned while an honest device keeps publishing', async (t) => {
  const gw = await startGateway(t, { limits: { maxConnectsPerWindow: 50, connectWindowMs: 60_000, banMs: 60_000 } });
  const honest = await makeDevice(gw.registrar, 'honest', 'EdDSA');
  const client = await connectDevice(honest, gw.ready.mqttsPort, gw.ready.caFile);
  t.teardown(() => void client.end(true));
  let seq = 0;
  const attempts: Promise<unknown>[] = [];
  for (let i = 0; i < 5000; i++) {
    attempts.push(openAndWait(gw.ready.mqttsPort, '127.0.0.2'));
    if (i % 250 === 0) {
      const m = signedTelemetry(honest, ++seq);
      await publishQos1(client, m.topic, m.payload);
      await Promise.all(attempts.splice(0));
    }
  }
  await Promise.all(attempts);
  const m = signedTelemetry(honest, ++seq);
  await publishQos1(client, m.topic, m.payload);
  const c = gw.gateway.store.counters;
  t.equal(c.get('accepted'), seq, 'every honest message accepted during the flood');
  t.ok(c.get('refused.EDGEGW_BROKER_CONN_RATE_LIMITED') >= 4900, `flood refused (${c.get('refused.EDGEGW_BROKER_CONN_RATE_LIMITED')})`);
  // Counted exactly, but recorded a few at a time: the flood does not become 5,000 audit rows.
  await new Promise((r) => setTimeout(r, 50));
  const floodRows = gw.gateway.store.recentAudit(10_000).filter((e) => e.address === '127.0.0.2');
  t.ok(floodRows.length > 0 && floodRows.length <= 20, `${floodRows.length} audit rows for the flooding address`);
  // A fresh honest connection from the other address still works.
  const again = await connectDevice(honest, gw.ready.mqttsPort, gw.ready.caFile);
  again.end(true);
});

t.test('global and per-address connection caps', async (t) => {
  const gw = await startGateway(t, { limits: { maxConnectionsPerAddress: 3 } });
  const sockets = await Promise.all(
    Array.from({ length: 3 }, () => new Promise<Socket>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port: gw.ready.mqttsPort, localAddress: '127.0.0.3' }, () => resolve(s));
      s.on('error', () => undefined);
    })),
  );
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  t.equal(await openAndWait(gw.ready.mqttsPort, '127.0.0.3'), 'closed', 'a fourth connection from the address is refused');
  t.ok(gw.gateway.store.counters.get('refused.EDGEGW_BROKER_CONN_LIMIT') >= 1);
});

t.test('garbage and half-open connections are dropped', async (t) => {
  const gw = await startGateway(t, { mqttPort: 0, limits: { connectTimeoutMs: 500 } });
  const plain = gw.ready.mqttPort!;
  t.equal(await openAndWait(plain, '127.0.0.4', Buffer.from('GET / HTTP/1.1\r\n\r\n')), 'closed', 'HTTP on the MQTT port');
  t.equal(await openAndWait(plain, '127.0.0.4', Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f])), 'closed', 'a 256 MB packet header is refused before buffering');
  t.equal(await openAndWait(plain, '127.0.0.4'), 'closed', 'a connection that never sends CONNECT times out');
  t.equal(await openAndWait(gw.ready.mqttsPort, '127.0.0.4', Buffer.from('not a TLS hello')), 'closed', 'garbage instead of a TLS handshake');
  const noCert = await new Promise<string>((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port: gw.ready.mqttsPort, rejectUnauthorized: false });
    s.on('error', (e) => resolve(e.message));
    s.on('close', () => resolve('closed'));
  });
  t.ok(noCert.length > 0, `a TLS client without a certificate is refused (${noCert})`);
  t.ok(gw.gateway.store.counters.get('refused.EDGEGW_BROKER_AUTH_FAILED') >= 1, 'a missing certificate is an authentication failure');
  t.ok(gw.gateway.store.counters.get('refused.EDGEGW_BROKER_HANDSHAKE_FAILED') >= 1, 'garbage instead of TLS is a handshake failure, not an authentication one');
  t.ok(gw.gateway.store.counters.get('refused.EDGEGW_VERIFY_TOO_LARGE') >= 1, 'oversized packet recorded');
});

t.test('keepalive bounds and the per-device publish rate', async (t) => {
  const gw = await startGateway(t, { limits: { keepaliveMinS: 10, publishRatePerSec: 5, publishBurst: 10 } });
  const dev = await makeDevice(gw.registrar, 'chatty', 'EdDSA');
  await t.rejects(connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile, { keepalive: 1 }));
  t.equal(gw.gateway.store.counters.get('refused.EDGEGW_BROKER_KEEPALIVE'), 1, 'keepalive below the minimum refused');
  const client = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  for (let seq = 1; seq <= 30; seq++) {
    const m = signedTelemetry(dev, seq);
    client.publish(m.topic, m.payload, { qos: 1 }, () => undefined);
  }
  await closed;
  t.equal(gw.gateway.store.counters.get('refused.EDGEGW_BROKER_RATE_LIMITED'), 1, 'the flood closes the connection');
  t.ok(gw.gateway.store.counters.get('accepted') <= 10, 'no more than the burst was accepted');
});

t.test('the plain listener takes CWT connect tokens (PROTOCOL.md §4)', async (t) => {
  const gw = await startGateway(t, { mqttPort: 0 });
  const dev = await makeDevice(gw.registrar, 'no-tls', 'ES256');
  const token = (iat: number, cti: Uint8Array) =>
    Buffer.from(createConnectToken(dev.signer, { iss: 'no-tls', aud: gw.ready.gatewayId, iat, cti }));
  const connectPlain = (password: Buffer, username = 'no-tls') =>
    new Promise<mqtt.MqttClient>((resolve, reject) => {
      const c = mqtt.connect({ host: '127.0.0.1', port: gw.ready.mqttPort!, clientId: 'no-tls', username, password, reconnectPeriod: 0, protocolVersion: 4 });
      c.once('connect', () => resolve(c));
      c.once('error', (e) => {
        c.end(true);
        reject(e);
      });
    });
  const now = Math.floor(Date.now() / 1000);
  const cti = new Uint8Array(12).fill(1);
  const client = await connectPlain(token(now, cti));
  const m = signedTelemetry(dev, 1);
  await publishQos1(client, m.topic, m.payload);
  client.end(true);
  t.equal(gw.gateway.store.counters.get('accepted'), 1, 'a device without TLS publishes with a token');
  await t.rejects(connectPlain(token(now, cti)), 'a reused cti is refused');
  await t.rejects(connectPlain(token(now - 3600, new Uint8Array(12).fill(2))), 'an old token is refused');
  await t.rejects(connectPlain(token(now, new Uint8Array(12).fill(3)), 'someone-else'), 'username must equal the client id');
  const forged = Buffer.from(createConnectToken(nobleSigner('ES256', new Uint8Array(32).fill(9)), { iss: 'no-tls', aud: gw.ready.gatewayId, iat: now, cti: new Uint8Array(12).fill(4) }));
  await t.rejects(connectPlain(forged), 'a token signed by another key is refused');
  t.ok(gw.gateway.store.counters.get('refused.EDGEGW_BROKER_AUTH_FAILED') >= 3);
});
