// Key files are 0600 in a 0700 directory; a key file anyone else can read is refused; CA keys
// may be encrypted with a passphrase, and a missing or wrong passphrase is a typed error.
import t from 'tap';
import { join } from 'node:path';
import { chmodSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import { createLogger, systemClock } from '../../common/index.js';
import { createPki, parseCert } from '../../provisioning/pki/index.js';
import { deviceKey, newPki } from './_helpers.js';

const mode = (p: string): number => statSync(p).mode & 0o777;

t.test('modes: keys 0600, certificates 0644, directory 0700', async (t) => {
  const pki = newPki(join(t.testdir(), 'nested', 'pki'));
  await pki.ensure();
  t.equal(mode(pki.dir), 0o700, 'the PKI directory is 0700');
  t.same(readdirSync(pki.dir).sort(), ['issuing-ca.crt', 'issuing-ca.key', 'root-ca.crt', 'root-ca.key', 'server.crt', 'server.key']);
  for (const key of [pki.rootKeyFile, pki.issuingKeyFile, pki.serverKeyFile]) t.equal(mode(key), 0o600, `${key} is 0600`);
  for (const cert of [pki.rootCaFile, pki.caFile, pki.serverCertFile]) t.equal(mode(cert), 0o644, `${cert} is public`);
  t.equal(pki.caFile, join(pki.dir, 'issuing-ca.crt'), 'caFile holds what devices trust');

  // A renewal writes the same modes.
  await pki.renewServerCert();
  t.equal(mode(pki.serverKeyFile), 0o600);
  t.equal(mode(pki.serverCertFile), 0o644);
  t.same(readdirSync(pki.dir).length, 6, 'no temporary files left behind');
  t.same(readdirSync(join(pki.dir, '..')), ['pki'], 'no temporary directory left beside it');
});

t.test('a key file readable by others is refused with EDGEGW_SECRET_FILE_MODE', async (t) => {
  const dir = join(t.testdir(), 'pki');
  await newPki(dir).ensure();
  for (const name of ['issuing-ca.key', 'root-ca.key', 'server.key']) {
    chmodSync(join(dir, name), 0o644);
    await t.rejects(newPki(dir).ensure(), { code: 'EDGEGW_SECRET_FILE_MODE' }, `${name} at 0644`);
    chmodSync(join(dir, name), 0o600);
  }
  await t.resolves(newPki(dir).ensure(), 'loads again once the modes are fixed');
});

t.test('passphrase-protected CA keys', async (t) => {
  const dir = join(t.testdir(), 'pki');
  const passphrase = 'correct horse battery staple';
  const pki = newPki(dir, { passphrase });
  await pki.ensure();
  const fingerprint = parseCert(pki.issuingCaPem).fingerprint256;

  for (const file of [pki.rootKeyFile, pki.issuingKeyFile]) {
    const pem = readFileSync(file, 'utf8');
    t.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----/, `${file} is PKCS#8 encrypted`);
    t.throws(() => createPrivateKey({ key: pem, format: 'pem', passphrase: 'nope' }), 'OpenSSL cannot open it without the passphrase');
    t.equal(createPrivateKey({ key: pem, format: 'pem', passphrase }).asymmetricKeyType, 'ec');
  }
  t.match(readFileSync(pki.serverKeyFile, 'utf8'), /^-----BEGIN PRIVATE KEY-----/, 'the server key stays plain for the TLS stack');

  const reopened = newPki(dir, { passphrase });
  await reopened.ensure();
  t.equal(parseCert(reopened.issuingCaPem).fingerprint256, fingerprint, 'loads with the right passphrase');
  const key = deviceKey('EdDSA');
  await t.resolves(reopened.issueDeviceCert({ deviceId: 'd1', alg: 'EdDSA', publicKeyRaw: key.publicKeyRaw }), 'and can sign');

  await t.rejects(newPki(dir, { passphrase: 'wrong passphrase' }).ensure(), { code: 'EDGEGW_PKI_BAD_PASSPHRASE' });
  await t.rejects(newPki(dir).ensure(), { code: 'EDGEGW_PKI_BAD_PASSPHRASE' }, 'no passphrase for an encrypted key');

  // A failed ensure() can be retried on the same instance once the cause is fixed.
  const flaky = newPki(dir, { passphrase });
  chmodSync(flaky.issuingKeyFile, 0o640);
  await t.rejects(flaky.ensure(), { code: 'EDGEGW_SECRET_FILE_MODE' });
  chmodSync(flaky.issuingKeyFile, 0o600);
  await t.resolves(flaky.ensure());
});

t.test('a passphrase configured for plain CA keys loads them and warns', async (t) => {
  const dir = join(t.testdir(), 'pki');
  await newPki(dir).ensure();
  const lines: string[] = [];
  const log = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } });
  const pki = createPki({ log, clock: systemClock }, { dir, passphrase: 'set later' });
  await pki.ensure();
  const warnings = lines.map((l) => JSON.parse(l) as { level: string; part: string; msg: string });
  t.same(
    warnings.map((w) => [w.level, w.part, w.msg]),
    [
      ['warn', 'pki', 'root-ca.key is not encrypted although a passphrase is configured'],
      ['warn', 'pki', 'issuing-ca.key is not encrypted although a passphrase is configured'],
    ],
  );
  t.notMatch(lines.join(''), /set later|PRIVATE KEY/, 'neither the passphrase nor a key is logged');
});
