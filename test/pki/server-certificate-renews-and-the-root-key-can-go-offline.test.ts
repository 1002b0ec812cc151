// The broker's server certificate: loopback plus configured SANs, EKU serverAuth, renewed on
// request, when it nears expiry, or when the configured names change. The root key can be
// taken out of the directory and everything day-to-day keeps working. Broken directories and
// misuse fail by code.
import t from 'tap';
import { join } from 'node:path';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { manualClock } from '../../common/index.js';
import { parseCert, LOOPBACK_NAMES } from '../../provisioning/pki/index.js';
import { x509 } from '../../provisioning/pki/_x509.js';
import { closeServer, deviceKey, newPki, startTlsServer, tryConnect } from './_helpers.js';

const DAY_MS = 86_400_000;
const T0 = Date.UTC(2029, 2, 1);

function serverCert(pem: string): X509Certificate {
  return new X509Certificate(pem);
}

t.test('server certificate names, usage and renewal', async (t) => {
  const dir = join(t.testdir(), 'pki');
  const clock = manualClock(T0);
  const options = { serverNames: ['gw.example.net', '192.168.7.2'], serverValidityDays: 90, renewBeforeDays: 20 };
  const pki = newPki(dir, options, clock);
  await pki.ensure();

  const first = serverCert(readFileSync(pki.serverCertFile, 'utf8'));
  t.equal(
    first.subjectAltName,
    'DNS:gw.example.net, IP Address:192.168.7.2, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    'configured names plus localhost, 127.0.0.1 and ::1',
  );
  t.same(first.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'EKU serverAuth');
  t.ok(first.checkHost('gw.example.net') && first.checkIP('192.168.7.2') && first.checkIP('::1'));
  t.equal(first.checkHost('other.example.net'), undefined);
  t.equal(new Date(first.validTo).getTime(), T0 + 90 * DAY_MS);
  t.ok(first.checkIssued(new X509Certificate(pki.issuingCaPem)));
  t.ok(pki.serverTls().cert.startsWith(first.toString().trim()), 'serverTls presents the certificate first');
  t.ok(pki.serverTls().cert.includes(pki.issuingCaPem), 'followed by the issuing CA');

  // Renewal on request: new key, new serial, files and serverTls() updated.
  const renewed = await pki.renewServerCert();
  t.not(renewed.serialHex, parseCert(first.raw).serialHex);
  t.equal(parseCert(readFileSync(pki.serverCertFile, 'utf8')).serialHex, renewed.serialHex, 'the file holds the new certificate');
  t.equal(readFileSync(pki.serverKeyFile, 'utf8'), renewed.keyPem);
  t.equal(pki.serverTls().key, renewed.keyPem, 'serverTls() gives the new key');
  t.ok(pki.serverTls().cert.startsWith(renewed.certPem), 'serverTls() presents the new certificate');

  // A restart well before expiry keeps it.
  clock.advance(60 * DAY_MS);
  const restarted = newPki(dir, options, clock);
  await restarted.ensure();
  t.equal(parseCert(readFileSync(restarted.serverCertFile, 'utf8')).serialHex, renewed.serialHex, '30 days left: kept');

  // Within renewBeforeDays of expiry a restart renews it.
  clock.advance(15 * DAY_MS);
  const late = newPki(dir, options, clock);
  await late.ensure();
  const lateSerial = parseCert(readFileSync(late.serverCertFile, 'utf8')).serialHex;
  t.not(lateSerial, renewed.serialHex, '15 days left: renewed');
  t.equal(parseCert(readFileSync(late.serverCertFile, 'utf8')).notAfterMs, clock.now() + 90 * DAY_MS);

  // Changing the configured names renews it too.
  const renamed = newPki(dir, { ...options, serverNames: ['broker.example.net'] }, clock);
  await renamed.ensure();
  const names = serverCert(readFileSync(renamed.serverCertFile, 'utf8')).subjectAltName;
  t.match(names, /^DNS:broker\.example\.net, DNS:localhost, /);
  t.notMatch(names, /gw\.example\.net/);

  // A server key that does not match the certificate (an interrupted renewal) is replaced.
  const before = readFileSync(renamed.serverCertFile, 'utf8');
  const stray = await renamed.issueServerCert({ names: ['broker.example.net'] });
  writeFileSync(renamed.serverKeyFile, stray.keyPem, { mode: 0o600 });
  const healed = newPki(dir, { ...options, serverNames: ['broker.example.net'] }, clock);
  await healed.ensure();
  t.not(readFileSync(healed.serverCertFile, 'utf8'), before, 'renewed');
  const key = readFileSync(healed.serverKeyFile, 'utf8');
  const certKey = new X509Certificate(readFileSync(healed.serverCertFile, 'utf8')).publicKey.export({ format: 'jwk' });
  t.same(createPublicKey(key).export({ format: 'jwk' }), certKey, 'the stored pair matches again');

  // The clock set back a day (an RTC reset): the certificate is from the future, so reissued.
  const current = parseCert(readFileSync(healed.serverCertFile, 'utf8'));
  const earlier = manualClock(clock.now() - DAY_MS);
  const rewound = newPki(dir, { ...options, serverNames: ['broker.example.net'] }, earlier);
  await rewound.ensure();
  const reissued = parseCert(readFileSync(rewound.serverCertFile, 'utf8'));
  t.not(reissued.serialHex, current.serialHex, 'not yet valid: renewed');
  t.ok(reissued.notBeforeMs <= earlier.now(), 'valid by the rewound clock');
});

t.test('issueServerCert is generic: any names, always the loopback ones', async (t) => {
  const pki = newPki(join(t.testdir(), 'pki'));
  await pki.ensure();
  const issued = await pki.issueServerCert({ names: ['cloud.example', '10.0.0.1'], validityDays: 30 });
  const cert = serverCert(issued.certPem);
  t.equal(cert.subjectAltName, 'DNS:cloud.example, IP Address:10.0.0.1, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  t.equal(cert.subject, 'CN=cloud.example');
  t.same(LOOPBACK_NAMES, ['localhost', '127.0.0.1', '::1']);
  t.match(issued.keyPem, /^-----BEGIN PRIVATE KEY-----/);
  t.equal(x509.PemConverter.decode(issued.certPem).length, 1, 'certPem is the leaf alone');
  t.equal(x509.PemConverter.decode(issued.chainPem).length, 2, 'chain: leaf and issuing CA');
  // The pair works as a TLS server.
  const server = await startTlsServer({ key: issued.keyPem, cert: issued.chainPem, requestCert: false });
  t.teardown(() => closeServer(server));
  t.same(await tryConnect({ port: server.port, ca: pki.caBundlePem, allowPartialTrustChain: true, servername: 'cloud.example' }), {
    reply: 'ok',
  });
});

t.test('the root key can be taken offline', async (t) => {
  const root = t.testdir();
  const dir = join(root, 'pki');
  const pki = newPki(dir, { passphrase: 'offline root' });
  await pki.ensure();
  t.equal(pki.rootKeyOnline, true);
  const fingerprint = parseCert(pki.issuingCaPem).fingerprint256;

  // docs/pki.md: copy root-ca.key to offline media, then remove it from the directory.
  renameSync(pki.rootKeyFile, join(root, 'usb-stick-root-ca.key'));
  const offline = newPki(dir, { passphrase: 'offline root' });
  await offline.ensure();
  t.equal(offline.rootKeyOnline, false);
  t.equal(parseCert(offline.issuingCaPem).fingerprint256, fingerprint, 'same issuing CA');
  const key = deviceKey('ES256');
  const cert = await offline.issueDeviceCert({ deviceId: 'after-offline', alg: 'ES256', publicKeyRaw: key.publicKeyRaw });
  t.ok(new X509Certificate(cert.der).checkIssued(new X509Certificate(offline.issuingCaPem)), 'devices are still certified');
  await t.resolves(offline.renewServerCert(), 'the server certificate still renews');
  await t.resolves(offline.createCrl([]), 'CRLs are still signed');

  // Bringing it back is a copy the other way; it must match the root certificate.
  renameSync(join(root, 'usb-stick-root-ca.key'), pki.rootKeyFile);
  const back = newPki(dir, { passphrase: 'offline root' });
  await back.ensure();
  t.equal(back.rootKeyOnline, true);
});

t.test('a broken directory is EDGEGW_PKI_CORRUPT', async (t) => {
  const base = t.testdir();
  let n = 0;
  const make = async (): Promise<string> => {
    n += 1;
    const dir = join(base, `pki-${n}`);
    await newPki(dir).ensure();
    return dir;
  };
  const other = await make();

  let dir = await make();
  unlinkSync(join(dir, 'root-ca.crt'));
  await t.rejects(newPki(dir).ensure(), { code: 'EDGEGW_PKI_CORRUPT' }, 'root certificate missing');

  dir = await make();
  unlinkSync(join(dir, 'issuing-ca.key'));
  await t.rejects(newPki(dir).ensure(), { code: 'EDGEGW_PKI_CORRUPT' }, 'issuing key missing');

  dir = await make();
  writeFileSync(join(dir, 'issuing-ca.key'), readFileSync(join(other, 'issuing-ca.key')), { mode: 0o600 });
  await t.rejects(newPki(dir).ensure(), { code: 'EDGEGW_PKI_CORRUPT' }, 'issuing key of another PKI');

  dir = await make();
  writeFileSync(join(dir, 'root-ca.crt'), readFileSync(join(other, 'root-ca.crt')));
  await t.rejects(newPki(dir).ensure(), { code: 'EDGEGW_PKI_CORRUPT' }, 'issuing CA not signed by this root');

  dir = await make();
  writeFileSync(join(dir, 'root-ca.key'), readFileSync(join(other, 'root-ca.key')), { mode: 0o600 });
  await t.rejects(newPki(dir).ensure(), { code: 'EDGEGW_PKI_CORRUPT' }, 'root key of another PKI');

  dir = await make();
  writeFileSync(join(dir, 'issuing-ca.key'), 'not a key', { mode: 0o600 });
  await t.rejects(newPki(dir).ensure(), { code: 'EDGEGW_PKI_CORRUPT' }, 'garbage key');

  dir = await make();
  writeFileSync(join(dir, 'issuing-ca.crt'), 'not a certificate');
  await t.rejects(newPki(dir).ensure(), { code: 'EDGEGW_PKI_CORRUPT' }, 'garbage certificate');

  // A missing or garbled server certificate is not corruption: it is simply issued again.
  dir = await make();
  rmSync(join(dir, 'server.crt'));
  await t.resolves(newPki(dir).ensure(), 'server certificate missing: reissued');
  writeFileSync(join(dir, 'server.crt'), 'garbage');
  await t.resolves(newPki(dir).ensure(), 'server certificate garbled: reissued');
  t.ok(parseCert(readFileSync(join(dir, 'server.crt'), 'utf8')).cn);
});

t.test('parseCert refuses what is not one supported certificate with EDGEGW_PKI_BAD_CERT', async (t) => {
  const pki = newPki(join(t.testdir(), 'pki'));
  await pki.ensure();
  const good = parseCert(pki.issuingCaPem);
  const bad: [string, unknown][] = [
    ['garbage bytes', new Uint8Array([1, 2, 3])],
    ['truncated DER', good.der.subarray(0, good.der.length - 10)],
    ['oversized DER', new Uint8Array(17 * 1024)],
    ['oversized PEM', `-----BEGIN CERTIFICATE-----\n${'A'.repeat(30_000)}\n-----END CERTIFICATE-----\n`],
    ['two certificates', `${pki.issuingCaPem}\n${pki.rootCaPem}`],
    ['a private key', readFileSync(pki.serverKeyFile, 'utf8')],
    ['empty string', ''],
    ['a number', 42],
  ];
  for (const [name, input] of bad) t.throws(() => parseCert(input as never), { code: 'EDGEGW_PKI_BAD_CERT' }, name);

  // An RSA certificate is well formed but not a key type of PROTOCOL.md §1.
  const rsaKeys = await crypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['sign', 'verify'],
  );
  const rsa = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=rsa',
    keys: rsaKeys as never,
    signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' },
  });
  t.throws(() => parseCert(rsa.toString('pem')), { code: 'EDGEGW_PKI_BAD_CERT' }, 'RSA key');
});

t.test('misuse: options are validated up front, nothing works before ensure()', async (t) => {
  let err: unknown;
  try {
    newPki('', { serverNames: ['not a host'], validityDays: 0, surprise: true } as never);
  } catch (e) {
    err = e;
  }
  t.match(err, { code: 'EDGEGW_CONFIG_INVALID' });
  // Every problem is reported at once, the unknown key included.
  for (const field of [/dir/, /serverNames/, /validityDays/, /surprise/]) t.match((err as Error).message, field);
  t.throws(() => newPki('/tmp/x', { renewBeforeDays: 90, serverValidityDays: 90 }), { code: 'EDGEGW_CONFIG_INVALID' });

  const pki = newPki(join(t.testdir(), 'pki'));
  t.throws(() => pki.serverTls(), { code: 'EDGEGW_INTERNAL' });
  t.throws(() => pki.caBundlePem, { code: 'EDGEGW_INTERNAL' });
  await t.rejects(pki.createCrl([]), { code: 'EDGEGW_INTERNAL' });
  t.equal(pki.serverCertFile, join(pki.dir, 'server.crt'), 'paths are known before ensure()');
});
