// The broker judges a client certificate itself, once the TLS handshake is done, so that it
// can tell the two apart:
//   - a certificate it does not trust, or none at all: EDGEGW_BROKER_AUTH_FAILED, with the
//     reason in the audit trail (a security event);
//   - a handshake cut short (a device losing power or giving up mid-handshake, a port scan):
//     EDGEGW_BROKER_HANDSHAKE_FAILED, which raises no authentication alarm.
// Before, Node refused the certificate inside the handshake, the server saw only the client's
// reset, and every reset was counted as an authentication failure. Real TLS on 127.0.0.1.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { startGateway } from '../helpers/gateway.js';
import { connectDevice, makeDevice, signedTelemetry, publishQos1, tlsKeyPem } from '../helpers/devices.js';
import { createPki } from '../../provisioning/pki/index.js';
import { generateKeyPair } from '../../protocol/index.js';
import { silentLogger } from '../../common/log.js';
import { systemClock } from '../../common/clock.js';

/** Opens a TLS connection, sends an MQTT CONNECT once secure; resolves with what came back before the close. */
function tryTls(options: ConnectionOptions): Promise<{ secure: boolean; bytes: number }> {
  return new Promise((resolve) => {
    let secure = false;
    let bytes = 0;
    const s = tlsConnect({ host: '127.0.0.1', servername: 'localhost', allowPartialTrustChain: true, ...options } as ConnectionOptions);
    s.on('secureConnect', () => {
      secure = true;
      s.write(Buffer.from('101000044d5154540402001e0004616263', 'hex').subarray(0, 18));
    });
    s.on('data', (d: Buffer) => (bytes += d.length));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ secure, bytes }));
  });
}

async function until(cond: () => boolean, ms = 5_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

t.test('a foreign certificate and a missing one are authentication failures; a cut handshake is not', async (t) => {
  const gw = await startGateway(t);
  const port = gw.ready.mqttsPort;
  const ca = readFileSync(gw.ready.caFile, 'utf8');
  const counters = gw.gateway.store.counters;
  const auth = () => counters.get('refused.EDGEGW_BROKER_AUTH_FAILED');
  const handshake = () => counters.get('refused.EDGEGW_BROKER_HANDSHAKE_FAILED');

  // A certificate for a real device id, issued by a CA the gateway never trusted.
  const honest = await makeDevice(gw.registrar, 'sensor-1', 'EdDSA');
  const rogue = createPki({ log: silentLogger(), clock: systemClock }, { dir: join(t.testdir(), 'rogue-pki'), caName: 'rogue' });
  await rogue.ensure();
  for (const [alg, maxVersion] of [['EdDSA', 'TLSv1.3'], ['ES256', 'TLSv1.2']] as const) {
    const k = generateKeyPair(alg);
    const forged = await rogue.issueDeviceCert({ deviceId: 'sensor-1', alg, publicKeyRaw: k.publicKey });
    const before = auth();
    const res = await tryTls({ port, ca, cert: forged.pem, key: tlsKeyPem(alg, k.privateKey, k.publicKey), maxVersion });
    t.equal(res.bytes, 0, `${maxVersion}: a client of a foreign CA gets no CONNACK`);
    t.ok(await until(() => auth() === before + 1), `${maxVersion}: the foreign certificate is one authentication failure (${auth() - before})`);
  }
  const rows = gw.gateway.store.recentAudit(100).filter((e) => e.code === 'EDGEGW_BROKER_AUTH_FAILED');
  t.ok(rows.length >= 2 && rows.every((r) => /^client certificate refused: [A-Z_]+, claims CN "sensor-1"$/.test(r.detail ?? '') && r.deviceId === undefined), `the audit says why: ${rows[0]?.detail}`);

  // No certificate at all.
  const before = auth();
  const none = await tryTls({ port, ca });
  t.equal(none.bytes, 0, 'a client without a certificate gets no CONNACK');
  t.ok(await until(() => auth() === before + 1), 'a missing certificate is an authentication failure');
  t.equal(gw.gateway.store.recentAudit(1)[0]?.detail, 'no client certificate');

  // Twenty handshakes with the honest device's own certificate, cut before they can finish:
  // half as the TCP connection opens, half once the ClientHello is out.
  const authBefore = auth();
  const handshakeBefore = handshake();
  for (let i = 0; i < 20; i++) {
    await new Promise<void>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca, cert: honest.certPem, key: honest.keyPem, allowPartialTrustChain: true } as ConnectionOptions);
      s.on('error', () => undefined);
      s.on('close', () => resolve());
      s.once('connect', () => (i % 2 === 0 ? s.destroy() : setImmediate(() => s.destroy())));
    });
  }
  const cut = await until(() => handshake() - handshakeBefore >= 20, 5_000);
  t.ok(cut, `the cut handshakes are handshake failures (${handshake() - handshakeBefore} of 20)`);
  t.equal(auth(), authBefore, 'and not one is counted as an authentication failure');
  const raised = gw.gateway.alerts.recent();
  t.ok(raised.filter((e) => e.code === 'EDGEGW_BROKER_HANDSHAKE_FAILED').every((e) => e.severity === 'info'), 'a cut handshake is recorded at info level');
  t.ok(raised.filter((e) => e.code === 'EDGEGW_BROKER_AUTH_FAILED').every((e) => e.severity === 'warning'), 'a refused certificate is a warning');
  t.ok(raised.some((e) => e.code === 'EDGEGW_BROKER_HANDSHAKE_FAILED') && raised.some((e) => e.code === 'EDGEGW_BROKER_AUTH_FAILED'), 'both were raised');

  // The honest device is not disturbed by any of it.
  const client = await connectDevice(honest, port, gw.ready.caFile);
  const m = signedTelemetry(honest, 1);
  await publishQos1(client, m.topic, m.payload);
  client.end(true);
  t.equal(counters.get('accepted'), 1, 'the device with the trusted certificate connects and publishes');
});
