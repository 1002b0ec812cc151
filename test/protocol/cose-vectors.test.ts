// Every COSE / CWT vector from cose-wg/Examples (snapshot 53c9d634, copied into
// ../shared/vectors/cose with a README table of expected results) gets the outcome our wire
// policy (PROTOCOL.md §3) gives it, and each case says why. Where the JSON carries
// intermediates (ToBeSign_hex, AAD_hex, CEK_hex, Context_hex, Secret_hex) our bytes must
// equal them. Source: https://github.com/cose-wg/Examples
import t, { type Test } from 'tap';
import { createDecipheriv, verify as cryptoVerify } from 'node:crypto';
import { join } from 'node:path';
import { decode, Tagged } from '../../protocol/cbor.js';
import {
  decodeSign1,
  verifySign1,
  verifySign1Noble,
  importPublicKey,
  sigStructure,
  decrypt0,
  decryptEncrypt,
  encStructure,
  encrypt0,
  encryptEcdhEs,
  ecdhEsKey,
  type CoseAlg,
  type ContentAlg,
  type Sign1,
} from '../../protocol/index.js';
import type { ErrorCode, Result } from '../../common/errors.js';
import { VECTORS_DIR, hex, toHex, keyField, listJson, rawPublicKey, readJson, type ExampleKey } from './_vectors.js';

const COSE_DIR = join(VECTORS_DIR, 'cose');

type Kind = 'sign1' | 'sign' | 'encrypt0' | 'encrypt' | 'mac0';
type Expect = 'valid' | ErrorCode;
interface Case {
  kind: Kind;
  expect: Expect;
  why: string;
}

// The README table, under our policy. `expect` is the outcome of the tagged wire path.
const CASES: Record<string, Case> = {
  // ---- COSE_Sign1 ----
  'sign1-tests/sign-pass-01.json': {
    kind: 'sign1',
    expect: 'EDGEGW_COSE_ALG_MISSING',
    why: 'DISPUTED (cose-wg/Examples#107): alg only unprotected, and signed over h\'\' while carrying h\'A0\'',
  },
  'sign1-tests/sign-pass-02.json': { kind: 'sign1', expect: 'valid', why: 'valid with external_aad' },
  'sign1-tests/sign-pass-03.json': { kind: 'sign1', expect: 'EDGEGW_COSE_NOT_TAGGED', why: 'untagged Sign1 is invalid on the wire; verifies with requireTag:false' },
  'sign1-tests/sign-fail-01.json': { kind: 'sign1', expect: 'EDGEGW_COSE_BAD_TAG', why: 'tag 998 instead of 18' },
  'sign1-tests/sign-fail-02.json': { kind: 'sign1', expect: 'EDGEGW_COSE_BAD_SIGNATURE', why: 'a signed byte was changed' },
  'sign1-tests/sign-fail-03.json': { kind: 'sign1', expect: 'EDGEGW_COSE_ALG_UNSUPPORTED', why: 'protected alg -999' },
  'sign1-tests/sign-fail-04.json': { kind: 'sign1', expect: 'EDGEGW_COSE_ALG_UNSUPPORTED', why: 'protected alg is the text "unknown"' },
  'sign1-tests/sign-fail-06.json': { kind: 'sign1', expect: 'EDGEGW_COSE_BAD_SIGNATURE', why: 'protected attribute added after signing' },
  'sign1-tests/sign-fail-07.json': { kind: 'sign1', expect: 'EDGEGW_COSE_BAD_SIGNATURE', why: 'protected attribute removed after signing' },
  'eddsa-examples/eddsa-sig-01.json': { kind: 'sign1', expect: 'valid', why: 'Ed25519 (RFC 8032 test key 1), protected {alg, ctyp}' },
  'ecdsa-examples/ecdsa-sig-01.json': { kind: 'sign1', expect: 'valid', why: 'ES256 basic' },
  'ecdsa-examples/ecdsa-sig-04.json': { kind: 'sign1', expect: 'EDGEGW_COSE_ALG_UNSUPPORTED', why: 'ES512 is valid COSE but not an alg we accept' },
  'RFC8152/Appendix_C_2_1.json': { kind: 'sign1', expect: 'valid', why: 'RFC 8152 C.2.1 ES256 example' },
  'CWT/A_3.json': { kind: 'sign1', expect: 'valid', why: 'RFC 8392 A.3 signed CWT, no kid' },
  // ---- COSE_Sign (tag 98): not a Sign1 ----
  'eddsa-examples/eddsa-01.json': { kind: 'sign', expect: 'EDGEGW_COSE_BAD_TAG', why: 'COSE_Sign (tag 98) is not a Sign1' },
  'ecdsa-examples/ecdsa-01.json': { kind: 'sign', expect: 'EDGEGW_COSE_BAD_TAG', why: 'COSE_Sign (tag 98) is not a Sign1' },
  // ---- COSE_Encrypt0 ----
  'encrypted-tests/aes-gcm-01.json': { kind: 'encrypt0', expect: 'valid', why: 'A128GCM basic' },
  'encrypted-tests/enc-pass-01.json': {
    kind: 'encrypt0',
    expect: 'EDGEGW_COSE_ALG_MISSING',
    why: 'DISPUTED: alg only unprotected, and sealed over h\'\' while carrying h\'A0\'',
  },
  'encrypted-tests/enc-pass-02.json': { kind: 'encrypt0', expect: 'valid', why: 'A128GCM with external_aad' },
  'encrypted-tests/enc-pass-03.json': {
    kind: 'encrypt0',
    expect: 'EDGEGW_COSE_NOT_TAGGED',
    why: 'untagged; even untagged its alg is only unprotected (ALG_MISSING); the crypto is proven on the Enc_structure',
  },
  'encrypted-tests/enc-fail-01.json': { kind: 'encrypt0', expect: 'EDGEGW_COSE_BAD_TAG', why: 'tag 995 instead of 16' },
  'encrypted-tests/enc-fail-02.json': { kind: 'encrypt0', expect: 'EDGEGW_COSE_DECRYPT_FAILED', why: 'GCM tag byte changed' },
  'encrypted-tests/enc-fail-03.json': { kind: 'encrypt0', expect: 'EDGEGW_COSE_ALG_UNSUPPORTED', why: 'protected alg -999' },
  'encrypted-tests/enc-fail-04.json': { kind: 'encrypt0', expect: 'EDGEGW_COSE_ALG_UNSUPPORTED', why: 'protected alg is the text "Unknown"' },
  'encrypted-tests/enc-fail-06.json': { kind: 'encrypt0', expect: 'EDGEGW_COSE_DECRYPT_FAILED', why: 'protected attribute added after sealing' },
  'encrypted-tests/enc-fail-07.json': { kind: 'encrypt0', expect: 'EDGEGW_COSE_DECRYPT_FAILED', why: 'protected attribute removed after sealing' },
  'aes-gcm-examples/aes-gcm-enc-01.json': { kind: 'encrypt0', expect: 'valid', why: 'A128GCM' },
  'aes-gcm-examples/aes-gcm-enc-03.json': { kind: 'encrypt0', expect: 'valid', why: 'A256GCM' },
  'aes-gcm-examples/aes-gcm-enc-04.json': { kind: 'encrypt0', expect: 'EDGEGW_COSE_DECRYPT_FAILED', why: 'GCM tag changed' },
  'CWT/A_5.json': { kind: 'encrypt0', expect: 'EDGEGW_COSE_ALG_UNSUPPORTED', why: 'AES-CCM-16-64-128 (alg 10) is not supported' },
  'CWT/A_6.json': { kind: 'encrypt0', expect: 'EDGEGW_COSE_ALG_UNSUPPORTED', why: 'AES-CCM-16-64-128 (alg 10) is not supported' },
  // ---- COSE_Encrypt (tag 96) ----
  'aes-gcm-examples/aes-gcm-01.json': { kind: 'encrypt', expect: 'valid', why: 'direct, A128GCM' },
  'aes-gcm-examples/aes-gcm-03.json': { kind: 'encrypt', expect: 'valid', why: 'direct, A256GCM' },
  'aes-gcm-examples/aes-gcm-04.json': { kind: 'encrypt', expect: 'EDGEGW_COSE_DECRYPT_FAILED', why: 'direct, GCM tag changed' },
  'aes-gcm-examples/aes-gcm-05.json': { kind: 'encrypt', expect: 'valid', why: 'direct, Partial IV with the base IV from context' },
  'ecdh-direct-examples/p256-hkdf-256-01.json': { kind: 'encrypt', expect: 'valid', why: 'ECDH-ES + HKDF-256, A128GCM' },
  'ecdh-direct-examples/p256-hkdf-256-02.json': { kind: 'encrypt', expect: 'valid', why: 'ECDH-ES + HKDF-256, A256GCM' },
  'RFC8152/Appendix_C_3_1.json': { kind: 'encrypt', expect: 'valid', why: 'RFC 8152 C.3.1 ECDH-ES with a compressed ephemeral key' },
  // ---- COSE_Mac0 (CWT claims material, left to the CWT tests) ----
  'CWT/A_4.json': { kind: 'mac0', expect: 'EDGEGW_COSE_BAD_TAG', why: 'COSE_Mac0 (tag 17) is not a Sign1' },
  'CWT/A_7.json': { kind: 'mac0', expect: 'EDGEGW_COSE_BAD_TAG', why: 'CWT tag 61 around a Mac0 is not a Sign1' },
};

function outcome(r: Result<unknown>): Expect {
  return r.ok ? 'valid' : r.reason;
}

function plaintextOf(j: any): Uint8Array {
  return j.input.plaintext_hex !== undefined ? hex(j.input.plaintext_hex) : new Uint8Array(Buffer.from(j.input.plaintext, 'utf8'));
}

/** Decode then verify through both implementations; they must agree. */
function sign1Outcome(t: Test, bytes: Uint8Array, raw: Uint8Array, aad: Uint8Array, requireTag = true): { code: Expect; msg?: Sign1 } {
  const decoded = decodeSign1(bytes, { requireTag });
  if (!decoded.ok) return { code: decoded.reason };
  const key = importPublicKey(decoded.value.alg, raw);
  t.ok(key.ok, 'the example key imports');
  if (!key.ok) return { code: key.reason };
  const node = outcome(verifySign1(decoded.value, key.value, aad));
  const noble = outcome(verifySign1Noble(decoded.value, decoded.value.alg, raw, aad));
  t.equal(node, noble, 'node:crypto and noble agree');
  return { code: node, msg: decoded.value };
}

t.test('the vector directory holds exactly the 40 files of the README table', async (t) => {
  const files = listJson(COSE_DIR);
  t.equal(files.length, 40);
  t.same(files, Object.keys(CASES).sort());
  // README: 14 files are labelled `fail`; every one of them must be rejected below.
  const failing = files.filter((f) => readJson(join(COSE_DIR, f)).fail === true);
  t.equal(failing.length, 14);
  t.same(failing.filter((f) => CASES[f]!.expect === 'valid'), [], 'no fail-labelled file is expected valid');
});

for (const [file, c] of Object.entries(CASES)) {
  t.test(`${file} -> ${c.expect}: ${c.why}`, async (t) => {
    const j = readJson(join(COSE_DIR, file));
    const bytes = hex(j.output.cbor);
    if (c.kind === 'sign1') return sign1Case(t, file, j, bytes, c.expect);
    if (c.kind === 'sign') return signCase(t, j, bytes, c.expect);
    if (c.kind === 'encrypt0') return encrypt0Case(t, file, j, bytes, c.expect);
    if (c.kind === 'encrypt') return encryptCase(t, j, bytes, c.expect);
    t.equal(outcome(decodeSign1(bytes)), c.expect, 'decodeSign1 refuses the Mac0 by its tag');
    t.equal(outcome(decrypt0(bytes, new Uint8Array(16), new Uint8Array(0))), 'EDGEGW_COSE_BAD_TAG', 'decrypt0 refuses it too');
  });
}

function sign1Case(t: Test, file: string, j: any, bytes: Uint8Array, expect: Expect): void {
  const key: ExampleKey = j.input.sign0.key;
  const raw = rawPublicKey(key);
  const aad = hex(j.input.sign0.external ?? '');
  const { code, msg } = sign1Outcome(t, bytes, raw, aad);
  t.equal(code, expect, 'outcome on the wire path');
  if (j.fail === true) t.not(code, 'valid', 'a fail-labelled vector is rejected');
  if (expect === 'valid') {
    t.same(msg!.payload, plaintextOf(j), 'payload');
    t.equal(toHex(sigStructure(msg!.protectedBytes, aad, msg!.payload)), j.intermediates.ToBeSign_hex.toLowerCase(), 'Sig_structure = ToBeSign_hex');
  }
  if (file === 'sign1-tests/sign-pass-03.json') {
    const untagged = sign1Outcome(t, bytes, raw, aad, false);
    t.equal(untagged.code, 'valid', 'with requireTag:false the signature verifies');
    t.equal(toHex(sigStructure(untagged.msg!.protectedBytes, aad, untagged.msg!.payload)), j.intermediates.ToBeSign_hex.toLowerCase());
  }
  if (file === 'sign1-tests/sign-pass-01.json') disputedSign1(t, j, bytes, raw);
}

// The disputed vector carries h'A0' but was signed over h'' (its ToBeSign_hex). Building
// Sig_structure from the bytes as received (RFC 9052 §4.4) cannot verify it; only a
// re-encoding library would. Proven here by bypassing the alg policy on purpose.
function disputedSign1(t: Test, j: any, bytes: Uint8Array, raw: Uint8Array): void {
  const arr = (decode(bytes) as Tagged).value as Uint8Array[];
  const key = importPublicKey('ES256', raw);
  if (!key.ok) return void t.fail('key');
  const asReceived: Sign1 = { protectedBytes: arr[0]!, alg: 'ES256', kid: undefined, payload: arr[2]!, signature: arr[3]! };
  t.equal(toHex(asReceived.protectedBytes), 'a0');
  t.not(toHex(sigStructure(asReceived.protectedBytes, new Uint8Array(0), asReceived.payload)), j.intermediates.ToBeSign_hex.toLowerCase());
  t.equal(outcome(verifySign1(asReceived, key.value, new Uint8Array(0))), 'EDGEGW_COSE_BAD_SIGNATURE', 'over the bytes as received: bad signature');
  const reencoded: Sign1 = { ...asReceived, protectedBytes: new Uint8Array(0) };
  t.equal(toHex(sigStructure(reencoded.protectedBytes, new Uint8Array(0), reencoded.payload)), j.intermediates.ToBeSign_hex.toLowerCase());
  t.equal(outcome(verifySign1(reencoded, key.value, new Uint8Array(0))), 'valid', 'it was signed over h\'\'');
}

// COSE_Sign is refused by tag; the signer's ToBeSign_hex verifies with the example key, so
// the refusal is policy, not a broken vector.
function signCase(t: Test, j: any, bytes: Uint8Array, expect: Expect): void {
  t.equal(outcome(decodeSign1(bytes)), expect);
  t.equal(outcome(decodeSign1(bytes, { requireTag: false })), expect, 'also with requireTag:false');
  const signer = j.input.sign.signers[0];
  const alg: CoseAlg = signer.protected.alg === 'EdDSA' ? 'EdDSA' : 'ES256';
  const key = importPublicKey(alg, rawPublicKey(signer.key));
  if (!key.ok) return void t.fail('key');
  const tbs = hex(j.intermediates.signers[0].ToBeSign_hex);
  const sig = ((decode(bytes) as Tagged).value as unknown[])[3] as Uint8Array[][];
  const signature = sig[0]![2]!;
  const ok =
    alg === 'EdDSA'
      ? cryptoVerify(null, tbs, key.value.keyObject, signature)
      : cryptoVerify('sha256', tbs, { key: key.value.keyObject, dsaEncoding: 'ieee-p1363' }, signature);
  t.ok(ok, 'the COSE_Sign signature itself is genuine');
}

function gcmOpen(alg: ContentAlg, key: Uint8Array, iv: Uint8Array, aad: Uint8Array, ct: Uint8Array): Uint8Array | undefined {
  try {
    const d = createDecipheriv(alg === 'A128GCM' ? 'aes-128-gcm' : 'aes-256-gcm', key, iv, { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(ct.subarray(ct.length - 16));
    return new Uint8Array(Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]));
  } catch {
    return undefined;
  }
}

function encrypt0Case(t: Test, file: string, j: any, bytes: Uint8Array, expect: Expect): void {
  const key = keyField(j.input.encrypted.recipients[0].key, 'k');
  const aad = hex(j.input.encrypted.external ?? '');
  const r = decrypt0(bytes, key, aad);
  t.equal(outcome(r), expect, 'outcome on the wire path');
  if (j.fail === true) t.not(outcome(r), 'valid', 'a fail-labelled vector is rejected');
  t.equal(toHex(key), j.intermediates.CEK_hex.toLowerCase(), 'CEK_hex is the shared key');
  const top = decode(bytes);
  const arr = (top instanceof Tagged ? top.value : top) as [Uint8Array, Map<number, Uint8Array>, Uint8Array];
  if (expect === 'valid') {
    t.same(r.ok && r.value, plaintextOf(j), 'plaintext');
    t.equal(toHex(encStructure('Encrypt0', arr[0], aad)), j.intermediates.AAD_hex.toLowerCase(), 'Enc_structure = AAD_hex');
  }
  if (file === 'aes-gcm-examples/aes-gcm-enc-01.json' || file === 'encrypted-tests/aes-gcm-01.json') {
    const again = encrypt0('A128GCM', key, plaintextOf(j), aad, { iv: hex(j.input.rng_stream[0]) });
    t.equal(toHex(again), toHex(bytes), 'encrypt0 with the vector IV reproduces the message byte for byte');
  }
  if (file === 'encrypted-tests/enc-pass-03.json' || file === 'encrypted-tests/enc-pass-01.json') {
    if (file.endsWith('03.json')) t.equal(outcome(decrypt0(bytes, key, aad, { requireTag: false })), 'EDGEGW_COSE_ALG_MISSING', 'untagged: alg is unprotected');
    // The GCM layer is sound: it opens over the AAD the vector records (protected h'').
    const iv = arr[1].get(5)!;
    t.same(gcmOpen('A128GCM', key, iv, hex(j.intermediates.AAD_hex), arr[2]), plaintextOf(j), 'opens over AAD_hex');
    t.equal(toHex(encStructure('Encrypt0', new Uint8Array(0), aad)), j.intermediates.AAD_hex.toLowerCase(), 'our Enc_structure for h\'\' = AAD_hex');
    if (file.endsWith('01.json')) {
      t.equal(toHex(arr[0]), 'a0');
      t.equal(gcmOpen('A128GCM', key, iv, encStructure('Encrypt0', arr[0], aad), arr[2]), undefined, 'over the bytes as received (h\'A0\') it does not open');
    }
  }
}

function encryptCase(t: Test, j: any, bytes: Uint8Array, expect: Expect): void {
  const env = j.input.enveloped;
  const rKey: ExampleKey = env.recipients[0].key;
  const ecdh = rKey.kty === 'EC';
  const recipient = ecdh ? { ecdhPrivateKey: keyField(rKey, 'd') } : { direct: keyField(rKey, 'k') };
  const aad = hex(env.external ?? '');
  const arr = (decode(bytes) as Tagged).value as [Uint8Array, Map<number, Uint8Array>, Uint8Array, [Uint8Array, Map<number, unknown>, Uint8Array][]];
  let baseIv: Uint8Array | undefined;
  if (env.unsent?.IV_hex !== undefined) {
    // RFC 9052 §3.1: full IV = base IV XOR left-padded Partial IV, so base = full XOR padded partial.
    const full = hex(env.unsent.IV_hex);
    const partial = arr[1].get(6)!;
    baseIv = full.slice();
    for (let i = 0; i < partial.length; i++) baseIv[12 - partial.length + i]! ^= partial[i]!;
    t.equal(outcome(decryptEncrypt(bytes, recipient, aad)), 'EDGEGW_COSE_BAD_IV', 'a Partial IV without the base IV is refused');
  }
  const r = decryptEncrypt(bytes, recipient, aad, baseIv === undefined ? {} : { baseIv });
  t.equal(outcome(r), expect, 'outcome on the wire path');
  if (j.fail === true) t.not(outcome(r), 'valid', 'a fail-labelled vector is rejected');
  if (expect === 'valid') {
    t.same(r.ok && r.value, plaintextOf(j), 'plaintext');
    t.equal(toHex(encStructure('Encrypt', arr[0], aad)), j.intermediates.AAD_hex.toLowerCase(), 'Enc_structure = AAD_hex');
  }
  const contentAlg: ContentAlg = env.protected.alg;
  if (!ecdh) {
    t.equal(toHex(recipient.direct!), j.intermediates.CEK_hex.toLowerCase(), 'CEK_hex is the shared key');
    return;
  }
  // Intermediates of the key agreement (RFC 9053 §6.3.1, §5.2).
  const [rProtected, rUnprotected] = arr[3][0]!;
  const epk = rUnprotected.get(-1) as Map<number, unknown>;
  const x = epk.get(-2) as Uint8Array;
  const y = epk.get(-3);
  const publicKey = typeof y === 'boolean' ? new Uint8Array([y ? 3 : 2, ...x]) : new Uint8Array([4, ...x, ...(y as Uint8Array)]);
  const derived = ecdhEsKey({ contentAlg, privateKey: keyField(rKey, 'd'), publicKey, recipientProtected: rProtected });
  if (!derived.ok) return void t.fail(derived.reason);
  const inter = j.intermediates.recipients[0];
  t.equal(toHex(derived.value.secret), inter.Secret_hex.toLowerCase(), 'ECDH secret = Secret_hex');
  t.equal(toHex(derived.value.context), inter.Context_hex.toLowerCase(), 'COSE_KDF_Context = Context_hex');
  t.equal(toHex(derived.value.cek), j.intermediates.CEK_hex.toLowerCase(), 'HKDF output = CEK_hex');
  // Sender side: with the vector's ephemeral key and IV, encryptEcdhEs yields the same
  // ciphertext and ephemeral key. (The message bytes differ only in map order: the vector
  // puts -1 before 4 in the recipient header, we encode deterministically.)
  const compressed = typeof y === 'boolean';
  const ours = encryptEcdhEs(contentAlg, rawPublicKey(rKey), plaintextOf(j), aad, {
    ephemeralPrivateKey: hex(j.input.rng_stream[0]),
    iv: hex(j.input.rng_stream[1]),
    kid: new Uint8Array(Buffer.from(rKey.kty === 'EC' ? env.recipients[0].key.kid : '', 'utf8')),
    compressed,
  });
  const oursArr = (decode(ours) as Tagged).value as typeof arr;
  t.same(oursArr[0], arr[0], 'same protected header');
  t.same(oursArr[2], arr[2], 'same ciphertext');
  t.same(oursArr[3][0]![0], rProtected, 'same recipient protected header');
  t.same(oursArr[3][0]![1].get(-1), epk, 'same ephemeral key, compressed as the vector is');
  t.same(oursArr[3][0]![1].get(4), rUnprotected.get(4), 'same recipient kid');
  t.same(decryptEncrypt(ours, recipient, aad), { ok: true, value: plaintextOf(j) }, 'and it opens');
}
