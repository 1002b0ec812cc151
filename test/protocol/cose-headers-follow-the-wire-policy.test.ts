// The COSE wire policy of PROTOCOL.md §3, rule by rule, on hand-built messages: where alg
// may come from, crit, duplicate labels, tags and shapes, signature encodings (DER refused,
// high-S accepted, non-canonical Ed25519 S refused), IVs and Partial IVs (RFC 9052 §3.1),
// key sizes, and the recipient rules of COSE_Encrypt. Each rejection is asserted by code.
import t from 'tap';
import fc from 'fast-check';
import { CborFloat, encode, Tagged } from '../../protocol/cbor.js';
import {
  decodeSign1,
  verifySign1,
  verifySign1Noble,
  importPublicKey,
  nobleSigner,
  nodeSigner,
  generateKeyPair,
  signSign1,
  sigStructure,
  encStructure,
  encrypt0,
  decrypt0,
  decryptEncrypt,
  encryptEcdhEs,
  ecdhEsKey,
  kidOf,
  type CoseAlg,
  type Signer,
} from '../../protocol/index.js';
import { isEdgegwError, type Result } from '../../common/errors.js';
import { createCipheriv, generateKeyPairSync } from 'node:crypto';

const enc = new TextEncoder();
const AAD = enc.encode('d/dev-1/t/temp');
const PAYLOAD = encode(new Map<number, unknown>([[1, 1], [2, 0], [3, 'hi']]));

function code(r: Result<unknown>): string {
  return r.ok ? 'ok' : r.reason;
}

function signer(alg: CoseAlg): Signer {
  return nobleSigner(alg, generateKeyPair(alg).privateKey);
}

/** A Sign1 with arbitrary headers, correctly signed over the protected bytes given. */
function rawSign1(s: Signer, protectedBytes: Uint8Array, unprotected: Map<unknown, unknown>, opts: { tag?: number | null; payload?: unknown } = {}): Uint8Array {
  const payload = 'payload' in opts ? opts.payload : PAYLOAD;
  const sig = payload instanceof Uint8Array ? s.sign(sigStructure(protectedBytes, AAD, payload)) : new Uint8Array(64);
  const body = [protectedBytes, unprotected, payload, sig];
  return encode(opts.tag === null ? body : new Tagged(opts.tag ?? 18, body));
}

/** decode + verify (node and noble must agree); the first failure, or 'ok'. */
function sign1Outcome(bytes: Uint8Array, s: Signer, keyAlg: CoseAlg = s.alg, raw: Uint8Array = s.publicKey): string {
  const msg = decodeSign1(bytes);
  if (!msg.ok) return msg.reason;
  const key = importPublicKey(keyAlg, raw);
  if (!key.ok) return key.reason;
  const node = code(verifySign1(msg.value, key.value, AAD));
  const noble = code(verifySign1Noble(msg.value, keyAlg, raw, AAD));
  return node === noble ? node : `node ${node} != noble ${noble}`;
}

const ed = signer('EdDSA');
const es = signer('ES256');
const algKid = (s: Signer, extra: [unknown, unknown][] = []): Uint8Array =>
  encode(new Map<unknown, unknown>([[1, s.alg === 'EdDSA' ? -8 : -7], [4, s.kid], ...extra]));

t.test('a Sign1 from signSign1 has protected {1: alg, 4: kid}, unprotected {} and tag 18', async (t) => {
  const bytes = signSign1(ed, PAYLOAD, AAD);
  t.equal(bytes[0], 0xd2, 'tag 18');
  const msg = decodeSign1(bytes);
  if (!msg.ok) return void t.fail(msg.reason);
  t.same(msg.value.protectedBytes, algKid(ed));
  t.same(msg.value.kid, kidOf(ed.publicKey), 'kid = first 8 bytes of SHA-256(raw public key)');
  t.equal(msg.value.kid!.length, 8);
  t.equal(sign1Outcome(bytes, ed), 'ok');
});

t.test('tags and shapes: NOT_TAGGED, BAD_TAG, BAD_STRUCTURE, CBOR errors', async (t) => {
  const p = algKid(ed);
  t.equal(sign1Outcome(rawSign1(ed, p, new Map(), { tag: null }), ed), 'EDGEGW_COSE_NOT_TAGGED');
  t.equal(sign1Outcome(rawSign1(ed, p, new Map(), { tag: 17 }), ed), 'EDGEGW_COSE_BAD_TAG');
  t.equal(sign1Outcome(rawSign1(ed, p, new Map(), { tag: 98 }), ed), 'EDGEGW_COSE_BAD_TAG');
  t.equal(code(decodeSign1(encode(new Tagged(18, [p, new Map(), PAYLOAD])))), 'EDGEGW_COSE_BAD_STRUCTURE', 'three elements');
  t.equal(code(decodeSign1(encode(new Tagged(18, [new Map(), new Map(), PAYLOAD, new Uint8Array(64)])))), 'EDGEGW_COSE_BAD_STRUCTURE', 'protected as a map');
  t.equal(code(decodeSign1(encode(new Tagged(18, [p, [], PAYLOAD, new Uint8Array(64)])))), 'EDGEGW_COSE_BAD_STRUCTURE', 'unprotected as an array');
  t.equal(sign1Outcome(rawSign1(ed, p, new Map(), { payload: null }), ed), 'EDGEGW_COSE_BAD_STRUCTURE', 'detached (nil) payload');
  t.equal(code(decodeSign1(encode(new Tagged(18, [p, new Map(), PAYLOAD, 'sig'])))), 'EDGEGW_COSE_BAD_STRUCTURE', 'text signature');
  t.equal(code(decodeSign1(encode(42))), 'EDGEGW_COSE_BAD_STRUCTURE', 'not an array at all');
  const good = signSign1(ed, PAYLOAD, AAD);
  t.equal(code(decodeSign1(good.subarray(0, good.length - 1))), 'EDGEGW_CBOR_MALFORMED', 'truncated');
  t.equal(code(decodeSign1(new Uint8Array(0))), 'EDGEGW_CBOR_MALFORMED', 'empty');
  const big = signSign1(ed, new Uint8Array(20 * 1024), AAD);
  t.equal(code(decodeSign1(big)), 'EDGEGW_CBOR_LIMIT', 'over the 16 KiB default');
  const bigMsg = decodeSign1(big, { maxBytes: 32 * 1024 });
  t.equal(code(bigMsg), 'ok', 'maxBytes raises it');
  const edKey = importPublicKey('EdDSA', ed.publicKey);
  if (!bigMsg.ok || !edKey.ok) return void t.fail('setup');
  t.equal(code(verifySign1(bigMsg.value, edKey.value, AAD)), 'ok', 'a Sig_structure larger than the scratch buffer verifies');
  const small = decodeSign1(good);
  t.equal(small.ok && code(verifySign1(small.value, edKey.value, AAD)), 'ok', 'and a small one after it');
  t.equal(small.ok && code(verifySign1(small.value, edKey.value, enc.encode('x'))), 'EDGEGW_COSE_BAD_SIGNATURE', 'nothing of the big one is left over');
});

t.test('alg comes only from the protected header and must be -8 or -7', async (t) => {
  const unprotectedAlg = rawSign1(ed, encode(new Map([[4, ed.kid]])), new Map([[1, -8]]));
  t.equal(sign1Outcome(unprotectedAlg, ed), 'EDGEGW_COSE_ALG_MISSING', 'alg only unprotected');
  t.equal(sign1Outcome(rawSign1(ed, new Uint8Array(0), new Map([[4, ed.kid]])), ed), 'EDGEGW_COSE_ALG_MISSING', "protected h'', no alg");
  t.equal(sign1Outcome(rawSign1(ed, encode(new Map([[1, -36]])), new Map()), ed), 'EDGEGW_COSE_ALG_UNSUPPORTED', 'ES512');
  t.equal(sign1Outcome(rawSign1(ed, encode(new Map([[1, 'EdDSA']])), new Map()), ed), 'EDGEGW_COSE_ALG_UNSUPPORTED', 'text alg');
  t.equal(sign1Outcome(rawSign1(ed, encode(new Map([[1, 2n ** 64n - 1n]])), new Map()), ed), 'EDGEGW_COSE_ALG_UNSUPPORTED', 'huge alg');
  t.equal(sign1Outcome(rawSign1(ed, encode(new Map([[1, new Uint8Array([0xf8])]])), new Map()), ed), 'EDGEGW_COSE_BAD_HEADER', 'bstr alg');
  // Integral floats are floats: -8.0 is not the alg -8 (nor 4.0 the label 4, below).
  t.equal(sign1Outcome(rawSign1(ed, encode(new Map<unknown, unknown>([[1, new CborFloat(-8)], [4, ed.kid]])), new Map()), ed), 'EDGEGW_COSE_BAD_HEADER', 'alg the float -8.0 (an alg is an int or a tstr)');
  t.equal(sign1Outcome(rawSign1(ed, algKid(ed), new Map()), es, 'ES256', es.publicKey), 'EDGEGW_COSE_ALG_KEY_MISMATCH', 'EdDSA message, ES256 key');
  t.equal(sign1Outcome(rawSign1(es, algKid(es), new Map()), ed, 'EdDSA', ed.publicKey), 'EDGEGW_COSE_ALG_KEY_MISMATCH', 'ES256 message, Ed25519 key');
});

t.test('header buckets: duplicates, crit, kid types', async (t) => {
  const dupKid = rawSign1(ed, algKid(ed), new Map([[4, ed.kid]]));
  t.equal(sign1Outcome(dupKid, ed), 'EDGEGW_COSE_BAD_HEADER', 'kid in both buckets (RFC 9052 §3)');
  const dupAlg = rawSign1(ed, algKid(ed), new Map([[1, -8]]));
  t.equal(sign1Outcome(dupAlg, ed), 'EDGEGW_COSE_BAD_HEADER', 'alg in both buckets');
  t.equal(sign1Outcome(rawSign1(ed, algKid(ed, [[2, [3]]]), new Map()), ed), 'EDGEGW_COSE_CRIT_UNKNOWN', 'crit names ctyp (3), which we do not process');
  t.equal(sign1Outcome(rawSign1(ed, algKid(ed, [[2, ['x-custom']]]), new Map()), ed), 'EDGEGW_COSE_CRIT_UNKNOWN', 'crit names a text label');
  t.equal(sign1Outcome(rawSign1(ed, algKid(ed, [[2, [1, 4]]]), new Map()), ed), 'ok', 'crit naming alg and kid is understood');
  t.equal(sign1Outcome(rawSign1(ed, algKid(ed, [[2, []]]), new Map()), ed), 'EDGEGW_COSE_BAD_HEADER', 'empty crit');
  t.equal(sign1Outcome(rawSign1(ed, algKid(ed, [[2, 4]]), new Map()), ed), 'EDGEGW_COSE_BAD_HEADER', 'crit not an array');
  t.equal(sign1Outcome(rawSign1(ed, algKid(ed), new Map([[2, [1]]])), ed), 'EDGEGW_COSE_BAD_HEADER', 'crit unprotected');
  t.equal(sign1Outcome(rawSign1(ed, encode(new Map<number, unknown>([[1, -8], [4, 'kid']])), new Map()), ed), 'EDGEGW_COSE_BAD_HEADER', 'text kid');
  t.equal(sign1Outcome(rawSign1(ed, encode([1, -8]), new Map()), ed), 'EDGEGW_COSE_BAD_HEADER', 'protected is an array');
  t.equal(sign1Outcome(rawSign1(ed, new Uint8Array([0xff]), new Map()), ed), 'EDGEGW_COSE_BAD_HEADER', 'protected is not CBOR');
  t.equal(sign1Outcome(rawSign1(ed, encode(new Map<unknown, unknown>([[1, -8], [true, 1]])), new Map()), ed), 'EDGEGW_COSE_BAD_HEADER', 'bool label');
  t.equal(sign1Outcome(rawSign1(ed, encode(new Map<unknown, unknown>([[1, -8], [new CborFloat(4), ed.kid]])), new Map()), ed), 'EDGEGW_COSE_BAD_HEADER', 'kid under the float label 4.0');
  t.equal(sign1Outcome(rawSign1(ed, algKid(ed, [[2, [new CborFloat(1)]]]), new Map()), ed), 'EDGEGW_COSE_BAD_HEADER', 'crit naming the float 1.0');
  t.equal(sign1Outcome(rawSign1(ed, encode(new Map<number, unknown>([[1, -8], [99, 'ignored']])), new Map()), ed), 'ok', 'an unknown label outside crit is ignored');
  const unprotectedKid = rawSign1(ed, encode(new Map([[1, -8]])), new Map([[4, ed.kid]]));
  const msg = decodeSign1(unprotectedKid);
  t.same(msg.ok && msg.value.kid, ed.kid, 'kid from the unprotected header when the protected one has none');
  t.equal(sign1Outcome(unprotectedKid, ed), 'ok');
  const h = decodeSign1(rawSign1(ed, algKid(ed), new Map()));
  t.same(h.ok && h.value.kid, ed.kid, 'kid from the protected header');
});

// DER of ECDSA (r, s): SEQUENCE { INTEGER r, INTEGER s } (X.690), the form COSE forbids.
function der(rs: Uint8Array): Uint8Array {
  const int = (b: Uint8Array): number[] => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = [...b.subarray(i)];
    if (v[0]! & 0x80) v.unshift(0);
    return [0x02, v.length, ...v];
  };
  const body = [...int(rs.subarray(0, 32)), ...int(rs.subarray(32))];
  return new Uint8Array([0x30, body.length, ...body]);
}

function withSignature(bytes: Uint8Array, sig: Uint8Array): Uint8Array {
  const msg = decodeSign1(bytes);
  if (!msg.ok) throw new Error(msg.reason);
  return encode(new Tagged(18, [msg.value.protectedBytes, new Map(), msg.value.payload, sig]));
}

const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const ED25519_L = 2n ** 252n + 27742317777372353535851937790883648493n;
const beBytes = (n: bigint, len: number): Uint8Array => new Uint8Array(Buffer.from(n.toString(16).padStart(len * 2, '0'), 'hex'));

t.test('signature encodings: DER and wrong lengths refused, high-S accepted, non-canonical S refused', async (t) => {
  const good = signSign1(es, PAYLOAD, AAD);
  const sig = (decodeSign1(good) as { ok: true; value: { signature: Uint8Array } }).value.signature;
  t.equal(sign1Outcome(withSignature(good, der(sig)), es), 'EDGEGW_COSE_BAD_SIGNATURE', 'DER-encoded ES256 signature');
  t.equal(sign1Outcome(withSignature(good, sig.subarray(0, 63)), es), 'EDGEGW_COSE_BAD_SIGNATURE', '63 bytes');
  t.equal(sign1Outcome(withSignature(good, new Uint8Array([...sig, 0])), es), 'EDGEGW_COSE_BAD_SIGNATURE', '65 bytes');
  // (r, n - s) is the other valid signature; noble signs low-S, so this one is high-S.
  const s = BigInt(`0x${Buffer.from(sig.subarray(32)).toString('hex')}`);
  t.ok(s <= P256_N / 2n, 'noble produced low-S');
  const highS = new Uint8Array([...sig.subarray(0, 32), ...beBytes(P256_N - s, 32)]);
  t.equal(sign1Outcome(withSignature(good, highS), es), 'ok', 'high-S ES256 accepted by both verifiers (PROTOCOL.md §3)');

  const edGood = signSign1(ed, PAYLOAD, AAD);
  const edSig = (decodeSign1(edGood) as { ok: true; value: { signature: Uint8Array } }).value.signature;
  const S = BigInt(`0x${Buffer.from(edSig.subarray(32)).reverse().toString('hex')}`);
  const nonCanonical = new Uint8Array([...edSig.subarray(0, 32), ...beBytes(S + ED25519_L, 32).reverse()]);
  t.equal(sign1Outcome(withSignature(edGood, nonCanonical), ed), 'EDGEGW_COSE_BAD_SIGNATURE', 'Ed25519 S + L refused (RFC 8032 §5.1.7)');
  t.equal(sign1Outcome(edGood, ed), 'ok');
});

t.test('Sig_structure and Enc_structure equal the generic deterministic encoding at every length boundary', async (t) => {
  const lengths = fc.constantFrom(0, 1, 23, 24, 255, 256, 65535, 65536);
  fc.assert(
    fc.property(lengths, lengths, lengths, (a, b, c) => {
      const [p, x, y] = [new Uint8Array(a).fill(1), new Uint8Array(b).fill(2), new Uint8Array(c).fill(3)];
      return (
        Buffer.compare(sigStructure(p, x, y), encode(['Signature1', p, x, y])) === 0 &&
        Buffer.compare(encStructure('Encrypt0', p, x), encode(['Encrypt0', p, x])) === 0 &&
        Buffer.compare(encStructure('Encrypt', p, x), encode(['Encrypt', p, x])) === 0
      );
    }),
    { numRuns: 100 },
  );
  t.pass('all equal');
});

// ---- Encrypt0 / Encrypt ----------------------------------------------------------------

const k128 = new Uint8Array(16).fill(0x11);
const k256 = new Uint8Array(32).fill(0x22);
const plain = enc.encode('telemetry body');

function gcm(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array {
  const c = createCipheriv(key.length === 16 ? 'aes-128-gcm' : 'aes-256-gcm', key, iv, { authTagLength: 16 });
  c.setAAD(aad);
  return new Uint8Array(Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]));
}

/** A hand-built Encrypt0, sealed correctly for the headers given (full IV passed separately). */
function rawEncrypt0(protectedBytes: Uint8Array, unprotected: Map<number, unknown>, key: Uint8Array, fullIv: Uint8Array): Uint8Array {
  return encode(new Tagged(16, [protectedBytes, unprotected, gcm(key, fullIv, encStructure('Encrypt0', protectedBytes, AAD), plain)]));
}

t.test('Encrypt0 round-trips and refuses bad IVs, keys and headers by code', async (t) => {
  const iv = new Uint8Array(12).fill(9);
  const a128 = encode(new Map([[1, 1]]));
  t.same(decrypt0(encrypt0('A128GCM', k128, plain, AAD), k128, AAD), { ok: true, value: plain }, 'A128GCM');
  t.same(decrypt0(encrypt0('A256GCM', k256, plain, AAD, { kid: new Uint8Array([1]) }), k256, AAD), { ok: true, value: plain }, 'A256GCM with kid');
  t.equal(code(decrypt0(encrypt0('A128GCM', k128, plain, AAD), k128, enc.encode('d/dev-2/t/temp'))), 'EDGEGW_COSE_DECRYPT_FAILED', 'other aad');
  t.equal(code(decrypt0(encrypt0('A128GCM', k128, plain, AAD), new Uint8Array(16), AAD)), 'EDGEGW_COSE_DECRYPT_FAILED', 'wrong key');
  t.equal(code(decrypt0(encrypt0('A128GCM', k128, plain, AAD), new Uint8Array(10), AAD)), 'EDGEGW_COSE_BAD_KEY', '10-byte key');
  t.equal(code(decrypt0(encrypt0('A128GCM', k128, plain, AAD), k256, AAD)), 'EDGEGW_COSE_ALG_KEY_MISMATCH', '256-bit key for A128GCM');
  t.equal(code(decrypt0(rawEncrypt0(a128, new Map([[5, new Uint8Array(8)]]), k128, iv), k128, AAD)), 'EDGEGW_COSE_BAD_IV', '64-bit IV');
  t.equal(code(decrypt0(rawEncrypt0(a128, new Map(), k128, iv), k128, AAD)), 'EDGEGW_COSE_BAD_IV', 'no IV');
  t.equal(code(decrypt0(rawEncrypt0(a128, new Map([[5, iv], [6, new Uint8Array([1])]]), k128, iv), k128, AAD)), 'EDGEGW_COSE_BAD_HEADER', 'IV and Partial IV');
  t.equal(code(decrypt0(rawEncrypt0(a128, new Map([[5, 'iv']]), k128, iv), k128, AAD)), 'EDGEGW_COSE_BAD_HEADER', 'text IV');
  t.equal(code(decrypt0(rawEncrypt0(new Uint8Array(0), new Map<number, unknown>([[1, 1], [5, iv]]), k128, iv), k128, AAD)), 'EDGEGW_COSE_ALG_MISSING', 'alg unprotected');
  t.equal(code(decrypt0(rawEncrypt0(encode(new Map([[1, 10]])), new Map([[5, iv]]), k128, iv), k128, AAD)), 'EDGEGW_COSE_ALG_UNSUPPORTED', 'AES-CCM');
  t.equal(code(decrypt0(rawEncrypt0(encode(new Map<number, unknown>([[1, 1], [2, [99]]])), new Map([[5, iv]]), k128, iv), k128, AAD)), 'EDGEGW_COSE_CRIT_UNKNOWN', 'crit [99]');
  t.equal(code(decrypt0(encode(new Tagged(16, [a128, new Map([[5, iv]]), null])), k128, AAD)), 'EDGEGW_COSE_BAD_STRUCTURE', 'detached ciphertext');
  t.equal(code(decrypt0(encode(new Tagged(16, [a128, new Map([[5, iv]]), new Uint8Array(15)])), k128, AAD)), 'EDGEGW_COSE_DECRYPT_FAILED', 'shorter than the tag');
  t.equal(code(decrypt0(encode([a128, new Map([[5, iv]]), new Uint8Array(20)]), k128, AAD)), 'EDGEGW_COSE_NOT_TAGGED', 'untagged');

  // RFC 9052 §3.1: IV = base IV XOR left-padded Partial IV.
  const base = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const partial = new Uint8Array([0xab, 0xcd]);
  const full = base.slice();
  full[10]! ^= 0xab;
  full[11]! ^= 0xcd;
  const withPartial = rawEncrypt0(a128, new Map([[6, partial]]), k128, full);
  t.same(decrypt0(withPartial, k128, AAD, { baseIv: base }), { ok: true, value: plain }, 'Partial IV with the base IV');
  t.equal(code(decrypt0(withPartial, k128, AAD)), 'EDGEGW_COSE_BAD_IV', 'Partial IV without a base IV');
  t.equal(code(decrypt0(withPartial, k128, AAD, { baseIv: new Uint8Array(8) })), 'EDGEGW_COSE_BAD_IV', 'base IV of 8 bytes');
  t.equal(code(decrypt0(rawEncrypt0(a128, new Map([[6, new Uint8Array(13)]]), k128, full), k128, AAD, { baseIv: base })), 'EDGEGW_COSE_BAD_IV', 'Partial IV longer than the IV');

  const thrown = (f: () => unknown): string => {
    try {
      f();
      return 'no throw';
    } catch (err) {
      return isEdgegwError(err) ? err.code : 'other';
    }
  };
  t.equal(thrown(() => encrypt0('A128GCM', k128, plain, AAD, { iv: new Uint8Array(8) })), 'EDGEGW_COSE_BAD_IV', 'encrypt0 refuses a 64-bit IV');
  t.equal(thrown(() => encrypt0('A128GCM', new Uint8Array(5), plain, AAD)), 'EDGEGW_COSE_BAD_KEY', 'encrypt0 refuses a 5-byte key');
  t.equal(thrown(() => encrypt0('A256GCM', k128, plain, AAD)), 'EDGEGW_COSE_ALG_KEY_MISMATCH', 'encrypt0 refuses a 128-bit key for A256GCM');
  t.equal(thrown(() => encryptEcdhEs('A128GCM', new Uint8Array(65), plain, AAD)), 'EDGEGW_COSE_BAD_KEY', 'encryptEcdhEs refuses a non-point');
  t.equal(thrown(() => nobleSigner('ES256', new Uint8Array(32))), 'EDGEGW_COSE_BAD_KEY', 'a zero P-256 scalar');
  t.equal(thrown(() => nobleSigner('EdDSA', new Uint8Array(31))), 'EDGEGW_COSE_BAD_KEY', 'a 31-byte seed');
  const p256Node = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const p384Node = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  t.equal(thrown(() => nodeSigner('EdDSA', p256Node.privateKey)), 'EDGEGW_COSE_ALG_KEY_MISMATCH', 'nodeSigner: EdDSA with a P-256 key');
  t.equal(thrown(() => nodeSigner('ES256', p384Node.privateKey)), 'EDGEGW_COSE_ALG_KEY_MISMATCH', 'nodeSigner: ES256 with a P-384 key');
  t.equal(thrown(() => nodeSigner('ES256', p256Node.publicKey)), 'EDGEGW_COSE_BAD_KEY', 'nodeSigner: a public key');
  const gw = nodeSigner('ES256', p256Node.privateKey);
  t.equal(sign1Outcome(signSign1(gw, PAYLOAD, AAD), gw), 'ok', 'nodeSigner output verifies');
});

function rawEncrypt(recipients: unknown[], cek: Uint8Array, iv = new Uint8Array(12).fill(3)): Uint8Array {
  const p = encode(new Map([[1, cek.length === 16 ? 1 : 3]]));
  return encode(new Tagged(96, [p, new Map([[5, iv]]), gcm(cek, iv, encStructure('Encrypt', p, AAD), plain), recipients]));
}

t.test('COSE_Encrypt: direct and ECDH-ES + HKDF-256 recipients, and what they refuse', async (t) => {
  const direct = [new Uint8Array(0), new Map<number, unknown>([[1, -6], [4, enc.encode('k1')]]), new Uint8Array(0)];
  t.same(decryptEncrypt(rawEncrypt([direct], k128), { direct: k128 }, AAD), { ok: true, value: plain }, 'direct');
  t.equal(code(decryptEncrypt(rawEncrypt([direct, direct], k128), { direct: k128 }, AAD)), 'EDGEGW_COSE_BAD_STRUCTURE', 'two direct recipients');
  t.equal(code(decryptEncrypt(rawEncrypt([], k128), { direct: k128 }, AAD)), 'EDGEGW_COSE_BAD_STRUCTURE', 'no recipient');
  t.equal(code(decryptEncrypt(rawEncrypt([[new Uint8Array(0), new Map([[1, -6]]), new Uint8Array(16)]], k128), { direct: k128 }, AAD)), 'EDGEGW_COSE_BAD_STRUCTURE', 'direct with a wrapped key');
  t.equal(code(decryptEncrypt(rawEncrypt([[encode(new Map([[1, -6]])), new Map(), new Uint8Array(0)]], k128), { direct: k128 }, AAD)), 'EDGEGW_COSE_BAD_HEADER', 'direct with a protected header (RFC 9053 §6.1.1)');
  t.equal(code(decryptEncrypt(rawEncrypt([[new Uint8Array(0), new Map([[1, -3]]), new Uint8Array(0)]], k128), { direct: k128 }, AAD)), 'EDGEGW_COSE_ALG_UNSUPPORTED', 'A128KW recipient');
  t.equal(code(decryptEncrypt(rawEncrypt([[new Uint8Array(0), new Map([[4, new Uint8Array(1)]]), new Uint8Array(0)]], k128), { direct: k128 }, AAD)), 'EDGEGW_COSE_ALG_MISSING', 'recipient without alg');
  t.equal(code(decryptEncrypt(rawEncrypt([direct], k128), { ecdhPrivateKey: generateKeyPair('ES256').privateKey }, AAD)), 'EDGEGW_COSE_ALG_KEY_MISMATCH', 'direct message, ECDH key');
  t.equal(code(decryptEncrypt(rawEncrypt([direct], k128), { direct: k256 }, AAD)), 'EDGEGW_COSE_ALG_KEY_MISMATCH', 'direct key of the wrong size');

  const cloud = generateKeyPair('ES256');
  for (const compressed of [false, true]) {
    const m = encryptEcdhEs('A256GCM', cloud.publicKey, plain, AAD, { compressed, kid: enc.encode('cloud-1') });
    t.same(decryptEncrypt(m, { ecdhPrivateKey: cloud.privateKey }, AAD), { ok: true, value: plain }, `ECDH-ES round trip, compressed=${compressed}`);
    t.equal(code(decryptEncrypt(m, { ecdhPrivateKey: generateKeyPair('ES256').privateKey }, AAD)), 'EDGEGW_COSE_DECRYPT_FAILED', 'another private key');
    t.equal(code(decryptEncrypt(m, { direct: k256 }, AAD)), 'EDGEGW_COSE_ALG_KEY_MISMATCH', 'ECDH message, shared key');
    t.equal(code(decryptEncrypt(m, { ecdhPrivateKey: new Uint8Array(31) }, AAD)), 'EDGEGW_COSE_BAD_KEY', 'short private key');
  }
  const rp = encode(new Map([[1, -25]]));
  const epk = (m: Map<number, unknown>): unknown[] => [rp, new Map([[-1, m]]), new Uint8Array(0)];
  const x = generateKeyPair('ES256').publicKey;
  const offCurve = new Map<number, unknown>([[1, 2], [-1, 1], [-2, x.subarray(1, 33)], [-3, new Uint8Array(32)]]);
  t.equal(code(decryptEncrypt(rawEncrypt([epk(offCurve)], k128), { ecdhPrivateKey: cloud.privateKey }, AAD)), 'EDGEGW_COSE_BAD_KEY', 'ephemeral key off the curve');
  const p384 = new Map<number, unknown>([[1, 2], [-1, 2], [-2, x.subarray(1, 33)], [-3, x.subarray(33)]]);
  t.equal(code(decryptEncrypt(rawEncrypt([epk(p384)], k128), { ecdhPrivateKey: cloud.privateKey }, AAD)), 'EDGEGW_COSE_BAD_KEY', 'ephemeral key on P-384');
  t.equal(code(decryptEncrypt(rawEncrypt([[rp, new Map(), new Uint8Array(0)]], k128), { ecdhPrivateKey: cloud.privateKey }, AAD)), 'EDGEGW_COSE_BAD_HEADER', 'no ephemeral key');

  // Salt (-20) and PartyU identity (-21) go into HKDF (RFC 9053 §5.1, §5.2): derive with them,
  // send them, and the recipient derives the same key; change the salt and it does not.
  const eph = generateKeyPair('ES256');
  const salt = new Uint8Array(16).fill(5);
  const partyU = { identity: enc.encode('device-7') };
  const derived = ecdhEsKey({ contentAlg: 'A128GCM', privateKey: eph.privateKey, publicKey: cloud.publicKey, recipientProtected: rp, salt, partyU });
  if (!derived.ok) return void t.fail(derived.reason);
  const ephKey = new Map<number, unknown>([[1, 2], [-1, 1], [-2, eph.publicKey.subarray(1, 33)], [-3, eph.publicKey.subarray(33)]]);
  const withInfo = (s: Uint8Array): unknown[] => [rp, new Map<number, unknown>([[-1, ephKey], [-20, s], [-21, partyU.identity]]), new Uint8Array(0)];
  t.same(decryptEncrypt(rawEncrypt([withInfo(salt)], derived.value.cek), { ecdhPrivateKey: cloud.privateKey }, AAD), { ok: true, value: plain }, 'salt and PartyU identity honoured');
  t.equal(code(decryptEncrypt(rawEncrypt([withInfo(new Uint8Array(16))], derived.value.cek), { ecdhPrivateKey: cloud.privateKey }, AAD)), 'EDGEGW_COSE_DECRYPT_FAILED', 'another salt, another key');
  const badSalt = [rp, new Map<number, unknown>([[-1, ephKey], [-20, 'salt']]), new Uint8Array(0)];
  t.equal(code(decryptEncrypt(rawEncrypt([badSalt], derived.value.cek), { ecdhPrivateKey: cloud.privateKey }, AAD)), 'EDGEGW_COSE_BAD_HEADER', 'text salt');
  t.equal(code(decryptEncrypt(encryptEcdhEs('A128GCM', cloud.publicKey, plain, AAD), { ecdhPrivateKey: cloud.privateKey }, AAD, { requireTag: true })), 'ok');
  t.equal(code(decryptEncrypt(encrypt0('A128GCM', k128, plain, AAD), { direct: k128 }, AAD)), 'EDGEGW_COSE_BAD_TAG', 'an Encrypt0 is not an Encrypt');
});
