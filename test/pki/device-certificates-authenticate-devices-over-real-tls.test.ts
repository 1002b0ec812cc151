// A broker-style mutual-TLS server built from serverTls() accepts devices whose certificates
// the PKI issued for their raw Ed25519 and P-256 keys (PROTOCOL.md §1, §2), sees CN =
// deviceId, and refuses a certificate from another CA. Real node:tls on 127.0.0.1 port 0.
import t from 'tap';
import { join } from 'node:path';
import { normalizeSerialHex, parseCert } from '../../provisioning/pki/index.js';
import { closeServer, deviceKey, newPki, startTlsServer, tryConnect } from './_helpers.js';

t.test('devices with Ed25519 and P-256 certificates connect; a foreign CA is refused', async (t) => {
  const dir = t.testdir();
  const pki = newPki(join(dir, 'gateway-pki'));
  await pki.ensure();
  const tlsOptions = pki.serverTls();
  t.ok(tlsOptions.ca.includes(pki.issuingCaPem) && tlsOptions.ca.includes(pki.rootCaPem), 'client certificates must chain to this PKI');

  const server = await startTlsServer({ ...tlsOptions, minVersion: 'TLSv1.2' });
  t.teardown(() => closeServer(server));

  // The device side: trusts only caBundlePem (what provisioning hands over, §7 field 3).
  const deviceTrust = { ca: pki.caBundlePem, servername: 'localhost', allowPartialTrustChain: true, port: server.port };

  let n = 0;
  for (const alg of ['EdDSA', 'ES256'] as const) {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const key = deviceKey(alg);
      const deviceId = `dev-${alg}-${maxVersion.replace('.', '')}`;
      const issued = await pki.issueDeviceCert({ deviceId, alg, publicKeyRaw: key.publicKeyRaw });
      const res = await tryConnect({ ...deviceTrust, key: key.keyPem, cert: issued.pem, maxVersion });
      t.same(res, { reply: 'ok' }, `${alg} device over ${maxVersion} is accepted`);
      n += 1;
      t.equal(server.acceptedCns.length, n);
      t.equal(server.acceptedCns.at(-1), `CN=${deviceId}`, 'the server sees CN = deviceId');
      // The broker compares node's serial with the registry's; both normalise to the same string.
      t.equal(normalizeSerialHex(server.acceptedSerials.at(-1)!), issued.serialHex);
    }
  }

  // The P-256 device also verifies the server by its IP SAN (no SNI for IP literals).
  const p256 = deviceKey('ES256');
  const byIp = await pki.issueDeviceCert({ deviceId: 'by-ip', alg: 'ES256', publicKeyRaw: p256.publicKeyRaw });
  t.same(
    await tryConnect({ ca: pki.caBundlePem, allowPartialTrustChain: true, port: server.port, key: p256.keyPem, cert: byIp.pem }),
    { reply: 'ok' },
    'server identity checks against the 127.0.0.1 SAN',
  );

  // A different PKI (another data dir) issues a certificate for the same deviceId.
  const other = newPki(join(dir, 'other-pki'));
  await other.ensure();
  t.not(parseCert(other.issuingCaPem).fingerprint256, parseCert(pki.issuingCaPem).fingerprint256);
  const intruder = deviceKey('EdDSA');
  const forged = await other.issueDeviceCert({ deviceId: 'dev-EdDSA-TLSv13', alg: 'EdDSA', publicKeyRaw: intruder.publicKeyRaw });
  const accepted = server.acceptedCns.length;
  const refusals = server.refusals.length;
  const refused = await tryConnect({ ...deviceTrust, key: intruder.keyPem, cert: forged.pem });
  t.equal(refused.reply, '', 'the server sends nothing to a client of a foreign CA');
  t.equal(server.acceptedCns.length, accepted, 'the foreign certificate was not accepted');
  t.equal(server.refusals.length, refusals + 1, 'the server dropped the connection in the handshake');

  // Why: the same server options with rejectUnauthorized off report the verification error.
  const probe = await startTlsServer({ ...tlsOptions, rejectUnauthorized: false });
  t.teardown(() => closeServer(probe));
  const why = await tryConnect({ ...deviceTrust, port: probe.port, key: intruder.keyPem, cert: forged.pem });
  t.equal(why.reply, 'refused:UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'the foreign certificate does not chain to our CA');

  // A device with no certificate at all is refused as well.
  const none = await tryConnect({ ...deviceTrust });
  t.equal(none.reply, '');
  t.equal(server.acceptedCns.length, accepted);
  t.equal(server.refusals.length, refusals + 2);

  // And a device that trusts the other PKI refuses our broker.
  const wrongTrust = await tryConnect({ ...deviceTrust, ca: other.caBundlePem, key: intruder.keyPem, cert: forged.pem });
  t.match(wrongTrust.error ?? '', /certificate/i, 'the device refuses a broker certificate from another CA');
});

t.test('a gateway client certificate from issueClientCert is accepted by that PKI only', async (t) => {
  const dir = t.testdir();
  // The cloud simulator runs its own PKI and issues the gateway's client certificate.
  const cloud = newPki(join(dir, 'cloud'), { caName: 'cloud-sim' });
  const gateway = newPki(join(dir, 'gateway'));
  await cloud.ensure();
  await gateway.ensure();

  const gwCert = await cloud.issueClientCert({ cn: 'gw-01' });
  const parsed = parseCert(gwCert.certPem);
  t.equal(parsed.cn, 'gw-01');
  t.equal(parsed.alg, 'ES256');
  t.equal(parsed.serialHex, gwCert.serialHex);

  const cloudServer = await startTlsServer(cloud.serverTls());
  const gatewayServer = await startTlsServer(gateway.serverTls());
  t.teardown(async () => {
    await closeServer(cloudServer);
    await closeServer(gatewayServer);
  });

  const client = { key: gwCert.keyPem, cert: gwCert.chainPem, servername: 'localhost', allowPartialTrustChain: true };
  t.same(await tryConnect({ ...client, ca: cloud.caBundlePem, port: cloudServer.port }), { reply: 'ok' });
  t.same(cloudServer.acceptedCns, ['CN=gw-01']);
  const refused = await tryConnect({ ...client, ca: gateway.caBundlePem, port: gatewayServer.port });
  t.equal(refused.reply, '');
  t.same(gatewayServer.acceptedCns, [], 'another CA does not accept the client certificate');
});
