// Issued device certificates carry the device's exact raw public key (PROTOCOL.md §1), CN =
// deviceId, KeyUsage digitalSignature, EKU clientAuth, a 16-byte positive serial, SKI/AKI and
// a validity taken from the injected clock. Read back with two independent parsers: ours
// (@peculiar/x509) and node's own X509Certificate (OpenSSL).
import t from 'tap';
import { join } from 'node:path';
import { X509Certificate, createHash } from 'node:crypto';
import { manualClock } from '../../common/index.js';
import { NOT_BEFORE_SKEW_MS, certSerialHex, parseCert } from '../../provisioning/pki/index.js';
import { x509 } from '../../provisioning/pki/_x509.js';
import { deviceKey, newPki } from './_helpers.js';

const DAY_MS = 86_400_000;
// A fixed instant, a whole second, far from the real date: proves the clock is the injected one.
const T0 = Date.UTC(2031, 4, 17, 9, 30, 0);

t.test('device certificates for Ed25519 and P-256 keys', async (t) => {
  const clock = manualClock(T0);
  const pki = newPki(join(t.testdir(), 'pki'), { validityDays: 90 }, clock);
  await pki.ensure();
  const issuing = new X509Certificate(pki.issuingCaPem);

  for (const alg of ['EdDSA', 'ES256'] as const) {
    t.test(alg, async (t) => {
      const key = deviceKey(alg);
      clock.advance(1000);
      const issuedAt = clock.now();
      const issued = await pki.issueDeviceCert({ deviceId: `sensor_${alg}-7`, alg, publicKeyRaw: key.publicKeyRaw });

      // Ours.
      const parsed = parseCert(issued.der);
      t.equal(parsed.cn, `sensor_${alg}-7`);
      t.equal(parsed.alg, alg);
      t.same(Buffer.from(parsed.publicKeyRaw), Buffer.from(key.publicKeyRaw), 'the exact raw key bytes');
      t.equal(parsed.publicKeyRaw.length, alg === 'EdDSA' ? 32 : 65);
      t.equal(parsed.notBeforeMs, issuedAt - NOT_BEFORE_SKEW_MS, 'notBefore from the injected clock');
      t.equal(parsed.notAfterMs, issuedAt + 90 * DAY_MS, 'default validity from the options (90 days)');
      t.equal(issued.notAfterMs, parsed.notAfterMs);
      t.equal(parsed.serialHex, issued.serialHex);
      t.equal(certSerialHex(issued.pem), issued.serialHex, 'PEM and DER give the same serial');
      t.match(issued.serialHex, /^[4-7][0-9a-f]{31}$/, '16 octets, positive, no leading zero');
      t.equal(parsed.fingerprint256, createHash('sha256').update(issued.der).digest('hex'));
      t.same(Buffer.from(parseCert(issued.pem).der), Buffer.from(issued.der), 'pem and der are the same certificate');

      // Node's parser (OpenSSL) agrees, and the certificate verifies under the issuing CA.
      const node = new X509Certificate(issued.der);
      t.equal(node.subject, `CN=sensor_${alg}-7`);
      t.same(node.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'EKU clientAuth only');
      t.equal(node.ca, false);
      t.ok(node.checkIssued(issuing), 'issued by the issuing CA');
      t.ok(node.verify(issuing.publicKey), 'signature verifies with the issuing CA key');
      t.equal(new Date(node.validFrom).getTime(), issuedAt - NOT_BEFORE_SKEW_MS);
      t.equal(new Date(node.validTo).getTime(), issuedAt + 90 * DAY_MS);
      const jwk = node.publicKey.export({ format: 'jwk' });
      const nodeRaw =
        alg === 'EdDSA'
          ? Buffer.from(jwk.x!, 'base64url')
          : Buffer.concat([Buffer.of(4), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
      t.same(nodeRaw, Buffer.from(key.publicKeyRaw));

      // Extensions: KeyUsage digitalSignature (critical), SKI of the key, AKI = issuer's SKI.
      const cert = new x509.X509Certificate(issued.der);
      const ku = cert.getExtension(x509.KeyUsagesExtension);
      t.equal(ku?.usages, x509.KeyUsageFlags.digitalSignature);
      t.equal(ku?.critical, true);
      const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
      t.same(eku?.usages, [x509.ExtendedKeyUsage.clientAuth]);
      const bc = cert.getExtension(x509.BasicConstraintsExtension);
      t.equal(bc?.ca, false);
      const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
      const expectedSki = Buffer.from(await cert.publicKey.getKeyIdentifier()).toString('hex');
      t.equal(ski?.keyId, expectedSki, 'SKI is RFC 5280 §4.2.1.2 method 1 over the device key');
      const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
      const issuerSki = new x509.X509Certificate(pki.issuingCaPem).getExtension(x509.SubjectKeyIdentifierExtension);
      t.ok(aki?.keyId && aki.keyId === issuerSki?.keyId, 'AKI names the issuing CA key');
      // The library types Algorithm against the DOM lib, which this project does not load.
      const sigAlg = cert.signatureAlgorithm as unknown as { name: string; hash: { name: string } };
      t.same([sigAlg.name, sigAlg.hash.name], ['ECDSA', 'SHA-256'], 'signed ecdsa-with-SHA256 by the issuing CA');
    });
  }
});

t.test('per-request validity and serial uniqueness', async (t) => {
  const clock = manualClock(T0);
  const pki = newPki(join(t.testdir(), 'pki'), {}, clock);
  await pki.ensure();
  const key = deviceKey('EdDSA');
  const short = await pki.issueDeviceCert({ deviceId: 'd', alg: 'EdDSA', publicKeyRaw: key.publicKeyRaw, validityDays: 7 });
  t.equal(short.notAfterMs, T0 + 7 * DAY_MS);
  const dflt = await pki.issueDeviceCert({ deviceId: 'd', alg: 'EdDSA', publicKeyRaw: key.publicKeyRaw });
  t.equal(dflt.notAfterMs, T0 + 365 * DAY_MS, 'default validity is one year');
  const serials = new Set<string>([short.serialHex, dflt.serialHex]);
  for (let i = 0; i < 20; i++) {
    serials.add((await pki.issueDeviceCert({ deviceId: 'd', alg: 'EdDSA', publicKeyRaw: key.publicKeyRaw })).serialHex);
  }
  t.equal(serials.size, 22, 'every certificate has its own random serial');
});

t.test('the CA hierarchy: root pathLen 1, issuing pathLen 0, P-256, dates from the clock', async (t) => {
  const clock = manualClock(T0);
  const pki = newPki(join(t.testdir(), 'pki'), { caName: 'site-a' }, clock);
  await pki.ensure();
  const root = new x509.X509Certificate(pki.rootCaPem);
  const issuing = new x509.X509Certificate(pki.issuingCaPem);
  t.ok(await root.isSelfSigned());
  t.ok(await issuing.verify({ publicKey: root.publicKey, signatureOnly: true }));
  t.match(root.subject, /^CN=site-a root CA [0-9a-f]{8}$/);
  t.match(issuing.subject, /^CN=site-a issuing CA [0-9a-f]{8}$/);
  t.equal(root.getExtension(x509.BasicConstraintsExtension)?.pathLength, 1);
  t.equal(issuing.getExtension(x509.BasicConstraintsExtension)?.pathLength, 0);
  t.equal(
    issuing.getExtension(x509.KeyUsagesExtension)?.usages,
    x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
  );
  t.equal((issuing.publicKey.algorithm as { namedCurve?: string }).namedCurve, 'P-256');
  t.equal(root.notBefore.getTime(), T0 - NOT_BEFORE_SKEW_MS);
  t.equal(root.notAfter.getTime(), T0 + 7300 * DAY_MS);
  t.equal(issuing.notAfter.getTime(), T0 + 3650 * DAY_MS);
  t.same(Buffer.from(pki.caBundleDer), Buffer.from(issuing.rawData), 'caBundleDer is the issuing CA (PROTOCOL.md §7 field 3)');
  t.equal(pki.caBundlePem, pki.issuingCaPem);

  // A leaf never outlives its issuer: near the end of the CA's life the validity is clamped.
  clock.set(issuing.notAfter.getTime() - 10 * DAY_MS);
  const key = deviceKey('ES256');
  const late = await pki.issueDeviceCert({ deviceId: 'late', alg: 'ES256', publicKeyRaw: key.publicKeyRaw });
  t.equal(late.notAfterMs, issuing.notAfter.getTime());
});
