// createCrl signs an RFC 5280 CRL with the issuing CA: the revoked serials, dates and reasons
// read back, the signature verifies under the issuing CA only, and OpenSSL itself (the CLI,
// an independent implementation) refuses the revoked certificate and accepts the others.
import t from 'tap';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { manualClock } from '../../common/index.js';
import { normalizeSerialHex } from '../../provisioning/pki/index.js';
import { x509 } from '../../provisioning/pki/_x509.js';
import { deviceKey, newPki } from './_helpers.js';

const execFileAsync = promisify(execFile);
const T0 = Date.UTC(2030, 0, 10, 12, 0, 0);
const DAY_MS = 86_400_000;

t.test('revoked serials appear in a CRL signed by the issuing CA', async (t) => {
  const clock = manualClock(T0);
  const pki = newPki(join(t.testdir(), 'pki'), {}, clock);
  const other = newPki(join(t.testdir(), 'other'), {}, clock);
  await pki.ensure();
  await other.ensure();
  const key = deviceKey('EdDSA');
  const [a, b, c] = await Promise.all(
    ['a', 'b', 'c'].map((deviceId) => pki.issueDeviceCert({ deviceId, alg: 'EdDSA', publicKeyRaw: key.publicKeyRaw })),
  );
  const crl = await pki.createCrl([
    { serialHex: a!.serialHex, revokedAtMs: T0 - DAY_MS, reason: 'keyCompromise' },
    // Node reports serials in upper case; the CRL takes them as they come.
    { serialHex: b!.serialHex.toUpperCase(), revokedAtMs: T0 - 2 * DAY_MS },
  ]);

  t.match(crl.pem, /^-----BEGIN X509 CRL-----\n/, 'RFC 7468 §5 label');
  const parsed = new x509.X509Crl(crl.der);
  t.same(Buffer.from(new x509.X509Crl(crl.pem).rawData), Buffer.from(crl.der), 'pem and der are the same CRL');
  t.equal(parsed.issuer, new x509.X509Certificate(pki.issuingCaPem).subject);
  t.equal(parsed.thisUpdate.getTime(), T0);
  t.equal(parsed.nextUpdate?.getTime(), T0 + 7 * DAY_MS, 'next update after the default 7 days');
  t.same(parsed.entries.map((e) => normalizeSerialHex(e.serialNumber)).sort(), [a!.serialHex, b!.serialHex].sort());
  t.equal(parsed.findRevoked(a!.serialHex)?.reason, x509.X509CrlReason.keyCompromise);
  t.equal(parsed.findRevoked(a!.serialHex)?.revocationDate.getTime(), T0 - DAY_MS);
  t.equal(parsed.findRevoked(b!.serialHex)?.reason, undefined);
  t.equal(parsed.findRevoked(c!.serialHex), null, 'a certificate not revoked is not listed');
  const crlNumber = parsed.getExtension('2.5.29.20');
  t.ok(crlNumber, 'RFC 5280 §5.2.3 CRL number present');

  t.ok(await parsed.verify({ publicKey: new x509.X509Certificate(pki.issuingCaPem) }), 'signature verifies under the issuing CA');
  t.notOk(await parsed.verify({ publicKey: new x509.X509Certificate(other.issuingCaPem) }), 'and not under another CA');
  // Flip one bit of a revoked serial inside the signed part.
  const tampered = Buffer.from(crl.der);
  const at = tampered.indexOf(Buffer.from(a!.serialHex, 'hex'));
  t.ok(at > 0);
  tampered[at + 5]! ^= 0x01;
  const forged = new x509.X509Crl(tampered);
  t.equal(forged.findRevoked(a!.serialHex), null, 'the tampered CRL no longer lists a');
  t.notOk(await forged.verify({ publicKey: new x509.X509Certificate(pki.issuingCaPem) }), 'and its signature fails');

  // A later CRL has a larger number.
  const next = new x509.X509Crl((await pki.createCrl([])).der);
  t.equal(next.entries.length, 0, 'an empty CRL is valid');
  t.ok(
    Buffer.compare(Buffer.from(next.getExtension('2.5.29.20')!.value), Buffer.from(crlNumber!.value)) !== 0,
    'CRL numbers differ between CRLs',
  );

  const haveOpenssl = await execFileAsync('openssl', ['version']).then(
    () => true,
    () => false,
  );
  t.test('OpenSSL refuses the revoked certificate and accepts the others', { skip: haveOpenssl ? false : 'no openssl CLI' }, async (t) => {
    const dir = t.testdir();
    const ca = join(dir, 'ca.pem');
    const crlFile = join(dir, 'crl.pem');
    writeFileSync(ca, `${pki.rootCaPem}\n${pki.issuingCaPem}\n`);
    writeFileSync(crlFile, crl.pem);
    const verify = async (pem: string): Promise<string> => {
      const leaf = join(dir, 'leaf.pem');
      writeFileSync(leaf, pem);
      // -attime: the certificates are dated by the manual clock, not today.
      const args = ['verify', '-attime', String(T0 / 1000 + 60), '-crl_check', '-CAfile', ca, '-CRLfile', crlFile, leaf];
      try {
        const { stdout } = await execFileAsync('openssl', args);
        return stdout.trim();
      } catch (err) {
        return String((err as { stdout?: string; stderr?: string }).stderr ?? err);
      }
    };
    t.match(await verify(a!.pem), /certificate revoked/, 'a (keyCompromise) is revoked');
    t.match(await verify(b!.pem), /certificate revoked/, 'b is revoked');
    t.match(await verify(c!.pem), /: OK$/, 'c verifies');
  });
});

t.test('bad CRL requests are refused with EDGEGW_PKI_BAD_REQUEST', async (t) => {
  const pki = newPki(join(t.testdir(), 'pki'));
  await pki.ensure();
  const bad: unknown[] = [
    [{ serialHex: 'zz', revokedAtMs: 0 }],
    [{ serialHex: '', revokedAtMs: 0 }],
    [{ serialHex: 'ab'.repeat(22), revokedAtMs: 0 }],
    [{ serialHex: '01', revokedAtMs: -1 }],
    [{ serialHex: '01', revokedAtMs: 1.5 }],
    [{ serialHex: '01', revokedAtMs: 0, reason: 'because' }],
    [{ serialHex: '01', revokedAtMs: 0, reason: '1' }],
    [null],
    'not an array',
  ];
  for (const revoked of bad) {
    await t.rejects(pki.createCrl(revoked as never), { code: 'EDGEGW_PKI_BAD_REQUEST' }, JSON.stringify(revoked));
  }
  t.equal(normalizeSerialHex('00F1'), 'f1', 'leading zero octets are not part of the serial');
  t.equal(normalizeSerialHex('abc'), '0abc');
});
