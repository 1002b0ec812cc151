// Raw keys that are not PROTOCOL.md §1 keys (wrong length, compressed, not on the curve,
// small order) are refused with EDGEGW_PKI_BAD_PUBLIC_KEY before anything is signed; bad
// device ids, names and validities get their own codes.
import t from 'tap';
import fc from 'fast-check';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { parseCert } from '../../provisioning/pki/index.js';
import { deviceKey, newPki } from './_helpers.js';

t.test('invalid raw public keys', async (t) => {
  const pki = newPki(join(t.testdir(), 'pki'));
  await pki.ensure();
  const ed = deviceKey('EdDSA').publicKeyRaw;
  const ec = deviceKey('ES256').publicKeyRaw;

  // An Ed25519 encoding whose y has no x on the curve: y = 2 (RFC 8032 §5.1.3 step 4 fails,
  // x² = (y²-1)/(d y²+1) is not a square mod p; checked below with noble).
  const notOnEd = new Uint8Array(32);
  notOnEd[0] = 2;
  t.throws(() => ed25519.Point.fromBytes(notOnEd), 'the vector really is off the curve');
  // A non-canonical encoding: y = p (2^255 - 19) does not reduce.
  const nonCanonical = Buffer.from('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex');
  // The identity point (y = 1) has order 1: signatures under it are forgeable.
  const identity = new Uint8Array(32);
  identity[0] = 1;
  // P-256: a point off the curve, and the compressed form of a valid key.
  const offCurve = new Uint8Array(ec);
  offCurve[64] = offCurve[64]! ^ 0x01;
  t.throws(() => p256.Point.fromBytes(offCurve), 'the vector really is off the curve');
  const compressed = p256.Point.fromBytes(ec).toBytes(true);

  const cases: [string, 'EdDSA' | 'ES256', Uint8Array][] = [
    ['Ed25519 31 bytes', 'EdDSA', ed.subarray(0, 31)],
    ['Ed25519 33 bytes', 'EdDSA', new Uint8Array([...ed, 0])],
    ['Ed25519 empty', 'EdDSA', new Uint8Array(0)],
    ['Ed25519 not on the curve', 'EdDSA', notOnEd],
    ['Ed25519 non-canonical y', 'EdDSA', nonCanonical],
    ['Ed25519 small order (identity)', 'EdDSA', identity],
    ['Ed25519 key given as ES256', 'ES256', ed],
    ['P-256 64 bytes (no 0x04)', 'ES256', ec.subarray(1)],
    ['P-256 compressed 33 bytes', 'ES256', compressed],
    ['P-256 wrong prefix', 'ES256', new Uint8Array([0x05, ...ec.subarray(1)])],
    ['P-256 not on the curve', 'ES256', offCurve],
    ['P-256 all zero', 'ES256', new Uint8Array([0x04, ...new Uint8Array(64)])],
    ['P-256 key given as EdDSA', 'EdDSA', ec],
  ];
  for (const [name, alg, publicKeyRaw] of cases) {
    await t.rejects(pki.issueDeviceCert({ deviceId: 'd1', alg, publicKeyRaw }), { code: 'EDGEGW_PKI_BAD_PUBLIC_KEY' }, name);
  }
  await t.rejects(
    pki.issueDeviceCert({ deviceId: 'd1', alg: 'RS256' as never, publicKeyRaw: ed }),
    { code: 'EDGEGW_PKI_BAD_PUBLIC_KEY' },
    'unknown algorithm',
  );
  await t.rejects(
    pki.issueDeviceCert({ deviceId: 'd1', alg: 'EdDSA', publicKeyRaw: Array.from(ed) as never }),
    { code: 'EDGEGW_PKI_BAD_PUBLIC_KEY' },
    'not bytes',
  );
});

t.test('property: any 32 bytes give a certificate for exactly that key, or EDGEGW_PKI_BAD_PUBLIC_KEY', async (t) => {
  const pki = newPki(join(t.testdir(), 'pki'));
  await pki.ensure();
  let issued = 0;
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), async (raw) => {
      let valid: boolean;
      try {
        valid = !ed25519.Point.fromBytes(raw, false).isSmallOrder();
      } catch {
        valid = false;
      }
      try {
        const cert = await pki.issueDeviceCert({ deviceId: 'prop', alg: 'EdDSA', publicKeyRaw: raw });
        issued += 1;
        return valid && Buffer.from(parseCert(cert.der).publicKeyRaw).equals(raw);
      } catch (err) {
        refused += 1;
        return !valid && (err as { code?: string }).code === 'EDGEGW_PKI_BAD_PUBLIC_KEY';
      }
    }),
    { numRuns: 150 },
  );
  // About half of all 32-byte strings decode to a point; both branches must have run.
  t.ok(issued > 20 && refused > 20, `issued ${issued}, refused ${refused}`);
});

t.test('invalid device ids, names and validities', async (t) => {
  const pki = newPki(join(t.testdir(), 'pki'));
  await pki.ensure();
  const { publicKeyRaw } = deviceKey('EdDSA');
  for (const deviceId of ['', 'a'.repeat(65), 'has space', 'slash/y', 'plus+', 'dev.1', 'ünï']) {
    await t.rejects(pki.issueDeviceCert({ deviceId, alg: 'EdDSA', publicKeyRaw }), { code: 'EDGEGW_DEVICE_ID_INVALID' }, JSON.stringify(deviceId));
  }
  await t.resolves(pki.issueDeviceCert({ deviceId: 'a'.repeat(64), alg: 'EdDSA', publicKeyRaw }), '64 characters is the limit');
  for (const validityDays of [0, -1, 1.5, 3651, Number.NaN]) {
    await t.rejects(
      pki.issueDeviceCert({ deviceId: 'd', alg: 'EdDSA', publicKeyRaw, validityDays }),
      { code: 'EDGEGW_PKI_BAD_REQUEST' },
      `validityDays ${validityDays}`,
    );
  }
  for (const cn of ['', 'gw 1', 'x'.repeat(65), 'gw/1']) {
    await t.rejects(pki.issueClientCert({ cn }), { code: 'EDGEGW_PKI_BAD_REQUEST' }, `client cn ${JSON.stringify(cn)}`);
  }
  for (const names of [['bad name'], ['-leading.example'], ['a'.repeat(64) + '.example'], ['x..y'], Array(30).fill('h.example')]) {
    await t.rejects(pki.issueServerCert({ names }), { code: 'EDGEGW_PKI_BAD_REQUEST' }, `server names ${String(names[0])}`);
  }
});
