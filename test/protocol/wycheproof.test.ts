// Wycheproof (C2SP/wycheproof, snapshot dac1dd47, copied into ../shared/vectors/wycheproof):
// every Ed25519 and ECDSA P-256/SHA-256 (IEEE P1363 = COSE r‖s) test gets its expected
// result through both of our verification paths, node:crypto (importPublicKey +
// verifySignatureBytes, the hot path under verifySign1) and @noble/curves
// (verifySignatureBytesNoble, the reference under verifySign1Noble), and the two agree.
// Source: https://github.com/C2SP/wycheproof/tree/main/testvectors_v1
import t from 'tap';
import { join } from 'node:path';
import { importPublicKey, verifySignatureBytes, verifySignatureBytesNoble, type CoseAlg } from '../../protocol/index.js';
import { VECTORS_DIR, hex, readJson } from './_vectors.js';

interface WycheTest {
  tcId: number;
  comment: string;
  flags: string[];
  msg: string;
  sig: string;
  result: 'valid' | 'invalid' | 'acceptable';
}
interface WycheFile {
  numberOfTests: number;
  testGroups: { publicKey: { pk?: string; uncompressed?: string }; tests: WycheTest[] }[];
}

// Order of the P-256 group (SEC 2 §2.4.2): s > n/2 is "high-S".
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

const FILES: { alg: CoseAlg; file: string; total: number; valid: number }[] = [
  { alg: 'EdDSA', file: 'ed25519_test.json', total: 151, valid: 88 },
  { alg: 'ES256', file: 'ecdsa_secp256r1_sha256_p1363_test.json', total: 262, valid: 173 },
];

for (const { alg, file, total, valid } of FILES) {
  t.test(`${alg}: every test in ${file} gets its expected result from node:crypto and from noble`, async (t) => {
    const data = readJson<WycheFile>(join(VECTORS_DIR, 'wycheproof/testvectors_v1', file));
    let seen = 0;
    let accepted = 0;
    let highS = 0;
    const wrong: string[] = [];
    for (const group of data.testGroups) {
      const raw = hex(alg === 'EdDSA' ? group.publicKey.pk! : group.publicKey.uncompressed!);
      const key = importPublicKey(alg, raw);
      for (const tc of group.tests) {
        seen++;
        const msg = hex(tc.msg);
        const sig = hex(tc.sig);
        // A key we refuse to import can verify nothing: that counts as "invalid".
        const node = key.ok && verifySignatureBytes(key.value, msg, sig);
        const noble = verifySignatureBytesNoble(alg, raw, msg, sig);
        if (node !== noble) wrong.push(`tcId ${tc.tcId}: node ${node}, noble ${noble} (${tc.comment})`);
        if (tc.result !== 'acceptable' && node !== (tc.result === 'valid')) {
          wrong.push(`tcId ${tc.tcId}: expected ${tc.result}, got ${node} (${tc.comment}; ${tc.flags.join(',')})`);
        }
        if (node) accepted++;
        if (node && alg === 'ES256' && sig.length === 64 && BigInt(`0x${tc.sig.slice(64)}`) > P256_N / 2n) highS++;
      }
    }
    t.same(wrong, [], 'no disagreement with the expected result or between the two paths');
    t.equal(seen, data.numberOfTests);
    t.equal(seen, total, 'the file has the test count the README states');
    t.equal(accepted, valid, 'exactly the valid ones verify');
    // PROTOCOL.md §3: high-S ES256 signatures are accepted, not normalised away.
    if (alg === 'ES256') t.ok(highS > 0, `${highS} high-S signatures are among those accepted`);
  });
}

t.test('importPublicKey refuses keys outside PROTOCOL.md section 1 with EDGEGW_COSE_BAD_KEY', async (t) => {
  const p256Key = hex(readJson<WycheFile>(join(VECTORS_DIR, 'wycheproof/testvectors_v1', FILES[1]!.file)).testGroups[0]!.publicKey.uncompressed!);
  const offCurve = p256Key.slice();
  offCurve[64]! ^= 1;
  const compressed = new Uint8Array([2 + (p256Key[64]! & 1), ...p256Key.subarray(1, 33)]);
  const edKey = hex(readJson<WycheFile>(join(VECTORS_DIR, 'wycheproof/testvectors_v1', FILES[0]!.file)).testGroups[0]!.publicKey.pk!);
  // y = p (2^255 - 19) is a non-canonical encoding (RFC 8032 §5.1.3 decoding fails).
  const nonCanonical = hex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
  for (const [name, alg, raw] of [
    ['P-256 point off the curve', 'ES256', offCurve],
    ['P-256 compressed point', 'ES256', compressed],
    ['P-256 key of 64 bytes', 'ES256', p256Key.subarray(1)],
    ['Ed25519 key of 31 bytes', 'EdDSA', edKey.subarray(1)],
    ['Ed25519 non-canonical y', 'EdDSA', nonCanonical],
  ] as const) {
    const r = importPublicKey(alg, raw);
    t.equal(r.ok ? 'ok' : r.reason, 'EDGEGW_COSE_BAD_KEY', name);
    t.notOk(verifySignatureBytesNoble(alg, raw, new Uint8Array(0), new Uint8Array(64)), `noble path refuses it too: ${name}`);
  }
  t.ok(importPublicKey('ES256', p256Key).ok, 'the unmodified key imports');
  t.ok(importPublicKey('EdDSA', edKey).ok, 'the unmodified Ed25519 key imports');
});
