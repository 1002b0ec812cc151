// Wycheproof (C2SP/wycheproof, snapshot dac1dd47, copied into ../shared/vectors/wycheproof):
// every Ed25519 and ECDSA P-256/SHA-256 (IEEE P1363 = COSE r‖s) test gets its expected
// result through every one of our verification paths, the hot path under verifySign1
// (importPublicKey + verifySignatureBytes; for Ed25519 once with each library
// selectEd25519Verifier offers, libsodium and node:crypto) and @noble/curves
// (verifySignatureBytesNoble, the reference under verifySign1Noble), and they all agree.
// Source: https://github.com/C2SP/wycheproof/tree/main/testvectors_v1
import t from 'tap';
import { join } from 'node:path';
import {
  importPublicKey,
  libsodiumStatus,
  selectEd25519Verifier,
  verifySignatureBytes,
  verifySignatureBytesNoble,
  type CoseAlg,
  type Ed25519Verifier,
} from '../../protocol/index.js';
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

// Ed25519 is checked by whichever library the gateway selected; the vectors hold each.
const RUNS: { alg: CoseAlg; verifier: Ed25519Verifier }[] = [
  { alg: 'EdDSA', verifier: 'node' },
  { alg: 'EdDSA', verifier: 'libsodium' },
  { alg: 'ES256', verifier: 'node' },
];

t.test('libsodium loads on this machine (the tests of its path below must not be vacuous)', async (t) => {
  const s = libsodiumStatus();
  t.ok(s.available, `sodium-native loaded${s.why === null ? '' : `: ${s.why}`}`);
  t.same(selectEd25519Verifier('auto'), { ok: true, value: 'libsodium' }, "'auto' picks it");
});

for (const { alg, verifier } of RUNS) {
  const { file, total, valid } = FILES.find((f) => f.alg === alg)!;
  const via = alg === 'EdDSA' ? verifier : 'node:crypto';
  t.test(`${alg}: every test in ${file} gets its expected result from ${via} and from noble`, async (t) => {
    t.same(selectEd25519Verifier(verifier), { ok: true, value: verifier }, `${verifier} selected`);
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
        if (node !== noble) wrong.push(`tcId ${tc.tcId}: ${via} ${node}, noble ${noble} (${tc.comment})`);
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
  // The neutral point (0, 1) and a point of order 8 (RFC 8032 encodings of small-order points).
  const neutral = hex('0100000000000000000000000000000000000000000000000000000000000000');
  const order8 = hex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a');
  for (const [name, alg, raw] of [
    ['P-256 point off the curve', 'ES256', offCurve],
    ['P-256 compressed point', 'ES256', compressed],
    ['P-256 key of 64 bytes', 'ES256', p256Key.subarray(1)],
    ['Ed25519 key of 31 bytes', 'EdDSA', edKey.subarray(1)],
    ['Ed25519 non-canonical y', 'EdDSA', nonCanonical],
    ['Ed25519 neutral point', 'EdDSA', neutral],
    ['Ed25519 point of order 8', 'EdDSA', order8],
  ] as const) {
    const r = importPublicKey(alg, raw);
    t.equal(r.ok ? 'ok' : r.reason, 'EDGEGW_COSE_BAD_KEY', name);
    t.notOk(verifySignatureBytesNoble(alg, raw, new Uint8Array(0), new Uint8Array(64)), `noble path refuses it too: ${name}`);
  }
  t.ok(importPublicKey('ES256', p256Key).ok, 'the unmodified key imports');
  t.ok(importPublicKey('EdDSA', edKey).ok, 'the unmodified Ed25519 key imports');
});
