// PROTOCOL.md §4 connect tokens: a CWT (RFC 8392) claims set {1 iss, 3 aud, 6 iat, 7 cti} in a
// tagged COSE_Sign1 with empty external_aad. Known answers from RFC 8392 Appendix A.1/A.3
// (copied from cose-wg/Examples into ../shared/vectors/cose/CWT/A_3.json).
import t from 'tap';
import fc from 'fast-check';
import { join } from 'node:path';
import { CborFloat, encode, Tagged } from '../../protocol/cbor.js';
import {
  checkConnectTokenClaims,
  createConnectToken,
  createCtiCache,
  decodeSign1,
  encodeConnectTokenClaims,
  generateKeyPair,
  importPublicKey,
  nobleSigner,
  parseConnectTokenClaims,
  parseCwtClaims,
  signSign1,
  verifyConnectToken,
  verifySign1,
  type ConnectTokenClaims,
  type CoseAlg,
  type VerifyKey,
} from '../../protocol/index.js';
import { VECTORS_DIR, hex, readJson, toHex } from './_vectors.js';
import { holds } from './_property.js';

const A3 = readJson<{ input: { plaintext_hex: string; sign0: { key: { x_hex: string; y_hex: string } } }; output: { cbor: string } }>(
  join(VECTORS_DIR, 'cose/CWT/A_3.json'),
);

const NOW_MS = 1_700_000_000_000;
const cti = hex('0001020304050607');
const claims: ConnectTokenClaims = { iss: 'D1', aud: 'gw-1', iat: NOW_MS / 1000, cti };
const ctx = { username: 'D1', clientId: 'D1', gatewayId: 'gw-1', nowMs: NOW_MS };

function keyPair(alg: CoseAlg): { signer: ReturnType<typeof nobleSigner>; key: VerifyKey } {
  const signer = nobleSigner(alg, generateKeyPair(alg).privateKey);
  const key = importPublicKey(alg, signer.publicKey);
  if (!key.ok) throw new Error('test key did not import');
  return { signer, key: key.value };
}

t.test('the RFC 8392 A.1 claims set parses generically with every registered claim', async (t) => {
  // RFC 8392 Appendix A.1: iss "coap://as.example.com", sub "erikw", aud
  // "coap://light.example.com", exp 1444064944, nbf 1443944944, iat 1443944944, cti h'0b71'.
  const r = parseCwtClaims(hex(A3.input.plaintext_hex));
  t.ok(r.ok);
  if (!r.ok) return;
  t.equal(r.value.iss, 'coap://as.example.com');
  t.equal(r.value.sub, 'erikw');
  t.equal(r.value.aud, 'coap://light.example.com');
  t.equal(r.value.exp, 1444064944);
  t.equal(r.value.nbf, 1443944944);
  t.equal(r.value.iat, 1443944944);
  t.equal(toHex(r.value.cti!), '0b71');
  t.equal(r.value.other.size, 0);
  const withOther = parseCwtClaims(encode(new Map<unknown, unknown>([[1, 'x'], [-65537, 'private'], ['k', 1]])));
  t.ok(withOther.ok && withOther.value.other.get(-65537) === 'private' && withOther.value.other.get('k') === 1, 'unregistered claims are kept aside');
  t.same(parseConnectTokenClaims(hex(A3.input.plaintext_hex)).ok, false, 'A.1 is no connect token: sub, exp, nbf and a 2-byte cti');
});

t.test('the RFC 8392 A.3 signed CWT verifies, and verifyConnectToken refuses it only for its claims', async (t) => {
  const raw = new Uint8Array([4, ...hex(A3.input.sign0.key.x_hex), ...hex(A3.input.sign0.key.y_hex)]);
  const key = importPublicKey('ES256', raw);
  t.ok(key.ok);
  if (!key.ok) return;
  const msg = decodeSign1(hex(A3.output.cbor));
  t.ok(msg.ok && verifySign1(msg.value, key.value, new Uint8Array(0)).ok, 'signature over the A.1 claims holds');
  const r = verifyConnectToken(hex(A3.output.cbor), key.value, ctx, createCtiCache());
  t.same(r.ok ? r : r.reason, 'EDGEGW_CWT_INVALID');
});

t.test('connect token claims encode byte-exactly and parse back', async (t) => {
  const bytes = encodeConnectTokenClaims(claims);
  // {1: "D1", 3: "gw-1", 6: 1700000000, 7: h'0001020304050607'}
  t.equal(toHex(bytes), 'a4' + '01624431' + '036467772d31' + '061a6553f100' + '07480001020304050607');
  const back = parseConnectTokenClaims(bytes);
  t.ok(back.ok && back.value.iss === 'D1' && back.value.aud === 'gw-1' && back.value.iat === 1_700_000_000 && toHex(back.value.cti) === toHex(cti));
});

t.test('claims outside the connect token shape are EDGEGW_CWT_INVALID', async (t) => {
  const base: [number, unknown][] = [[1, 'D1'], [3, 'gw-1'], [6, 1_700_000_000], [7, cti]];
  const variant = (k: number, v: unknown): Uint8Array => encode(new Map<unknown, unknown>(base.map(([bk, bv]) => [bk, bk === k ? v : bv])));
  const bad: [string, Uint8Array][] = [
    ['not CBOR', hex('a4')],
    ['not a map', encode(['D1'])],
    ['cti of 7 bytes', variant(7, new Uint8Array(7))],
    ['cti of 17 bytes', variant(7, new Uint8Array(17))],
    ['cti as text', variant(7, 'abcdefgh')],
    ['iat as a float', variant(6, 1_700_000_000.5)],
    ['iat as the integral float 1700000000.0', variant(6, new CborFloat(1_700_000_000))],
    ['iat negative', variant(6, -1)],
    ['iat as text', variant(6, '1700000000')],
    ['iss not a deviceId', variant(1, 'coap://as.example.com')],
    ['iss as bytes', variant(1, hex('4431'))],
    ['aud empty', variant(3, '')],
    ['aud as an array', variant(3, ['gw-1'])],
    ['missing cti', encode(new Map(base.slice(0, 3)))],
    ['an exp claim', encode(new Map<unknown, unknown>([...base, [4, 1_700_000_300]]))],
    ['a private claim', encode(new Map<unknown, unknown>([...base, [-70000, 1]]))],
  ];
  for (const [what, b] of bad) {
    const r = parseConnectTokenClaims(b);
    t.equal(r.ok ? 'ok' : r.reason, 'EDGEGW_CWT_INVALID', what);
  }
  t.throws(() => encodeConnectTokenClaims({ ...claims, cti: new Uint8Array(4) }), { code: 'EDGEGW_CWT_INVALID' });
});

t.test('iss must equal the username and client id, aud this gateway, and iat be within the window', async (t) => {
  const reason = (c: ConnectTokenClaims, x: Partial<typeof ctx> & { windowS?: number } = {}): string => {
    const r = checkConnectTokenClaims(c, { ...ctx, ...x });
    return r.ok ? 'ok' : r.reason;
  };
  t.equal(reason(claims), 'ok');
  t.equal(reason(claims, { username: 'D2' }), 'EDGEGW_CWT_INVALID', 'username differs');
  t.equal(reason(claims, { clientId: 'D2' }), 'EDGEGW_CWT_INVALID', 'client id differs');
  t.equal(reason(claims, { gatewayId: 'gw-2' }), 'EDGEGW_CWT_INVALID', 'another gateway');
  t.equal(reason({ ...claims, iat: claims.iat + 300 }), 'ok', 'iat 300 s ahead');
  t.equal(reason({ ...claims, iat: claims.iat - 300 }), 'ok', 'iat 300 s behind');
  t.equal(reason({ ...claims, iat: claims.iat + 301 }), 'EDGEGW_CWT_EXPIRED', 'iat 301 s ahead');
  t.equal(reason({ ...claims, iat: claims.iat - 301 }), 'EDGEGW_CWT_EXPIRED', 'iat 301 s behind');
  t.equal(reason({ ...claims, iat: claims.iat - 301 }, { windowS: 600 }), 'ok', 'a configured window');
  t.equal(reason(claims, { nowMs: NaN }), 'EDGEGW_CWT_EXPIRED', 'a NaN clock refuses');
  t.equal(reason({ ...claims, cti: new Uint8Array(3) }), 'EDGEGW_CWT_INVALID', 'claims built in code are checked too');
});

t.test('the cti cache remembers a cti until its token expires, refuses replays, and refuses when full', async (t) => {
  const cache = createCtiCache({ windowS: 300, maxEntries: 2 });
  const iat = NOW_MS / 1000;
  t.equal(cache.checkAndRemember(hex('01'), iat, NOW_MS), 'fresh');
  t.equal(cache.checkAndRemember(hex('01'), iat, NOW_MS + 1000), 'replayed');
  t.equal(cache.checkAndRemember(hex('02'), iat + 100, NOW_MS), 'fresh');
  t.equal(cache.checkAndRemember(hex('03'), iat, NOW_MS), 'full', 'full: refused, nothing forgotten');
  t.equal(cache.checkAndRemember(hex('01'), iat, NOW_MS), 'replayed', 'still remembered while full');
  t.equal(cache.size, 2);
  // At iat + 300 s the token could still pass the iat check, so its cti is still held.
  t.equal(cache.checkAndRemember(hex('01'), iat, NOW_MS + 300_000), 'replayed', 'held through the whole window');
  // Just after, the first expires; the second (iat + 100) is held 100 s longer.
  t.equal(cache.checkAndRemember(hex('03'), iat + 301, NOW_MS + 300_001), 'fresh', 'an expired entry makes room');
  t.equal(cache.size, 2);
  t.equal(cache.checkAndRemember(hex('02'), iat + 100, NOW_MS + 400_000), 'replayed');
  t.equal(cache.checkAndRemember(hex('02'), iat + 100, NOW_MS + 400_001), 'fresh', 'evicted at iat + window, then new again');
});

t.test('the cti cache agrees with an unbounded model and never exceeds its bound', async (t) => {
  const op = fc.record({ cti: fc.integer({ min: 0, max: 30 }), iatOffsetS: fc.integer({ min: -300, max: 300 }), stepMs: fc.integer({ min: 0, max: 60_000 }) });
  holds(
    t,
    'model check',
    fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 1, max: 20 }), (ops, maxEntries) => {
      const cache = createCtiCache({ windowS: 300, maxEntries });
      const model = new Map<number, number>(); // cti → expiry ms
      let now = NOW_MS;
      for (const o of ops) {
        now += o.stepMs;
        const iat = Math.floor(now / 1000) + o.iatOffsetS;
        for (const [k, at] of model) if (at < now) model.delete(k);
        const expected = model.has(o.cti) ? 'replayed' : model.size >= maxEntries ? 'full' : 'fresh';
        if (expected === 'fresh') model.set(o.cti, iat * 1000 + 300_000);
        const got = cache.checkAndRemember(new Uint8Array([o.cti]), iat, now);
        if (got !== expected || cache.size !== model.size || cache.size > maxEntries) return false;
      }
      return true;
    }),
    { numRuns: 500 },
  );
});

t.test('a connect token made by createConnectToken verifies once, for both algorithms', async (t) => {
  for (const alg of ['EdDSA', 'ES256'] as const) {
    const { signer, key } = keyPair(alg);
    const cache = createCtiCache();
    const token = createConnectToken(signer, claims);
    t.equal(token[0], 0xd2, `${alg}: tag 18`);
    const r = verifyConnectToken(token, key, ctx, cache);
    t.ok(r.ok && r.value.iss === 'D1', `${alg}: accepted`);
    const again = verifyConnectToken(token, key, ctx, cache);
    t.equal(again.ok ? 'ok' : again.reason, 'EDGEGW_CWT_REPLAYED', `${alg}: the same token again is a replay`);
  }
});

t.test('verifyConnectToken refuses with the reason of the first failed check', async (t) => {
  const { signer, key } = keyPair('EdDSA');
  const other = keyPair('EdDSA');
  const reason = (token: Uint8Array, c = ctx, cache = createCtiCache(), k = key): string => {
    const r = verifyConnectToken(token, k, c, cache);
    return r.ok ? 'ok' : r.reason;
  };
  const token = createConnectToken(signer, claims);
  const tampered = token.slice();
  tampered[tampered.length - 1]! ^= 1;
  t.equal(reason(tampered), 'EDGEGW_COSE_BAD_SIGNATURE', 'tampered signature');
  t.equal(reason(token, ctx, createCtiCache(), other.key), 'EDGEGW_COSE_KID_MISMATCH', 'signed by another key');
  t.equal(reason(signSign1(signer, encodeConnectTokenClaims(claims), new Uint8Array(0), { tagged: false })), 'EDGEGW_COSE_NOT_TAGGED', 'untagged');
  t.equal(reason(signSign1(signer, encodeConnectTokenClaims(claims), new TextEncoder().encode('d/D1/k'))), 'EDGEGW_COSE_BAD_SIGNATURE', 'non-empty external_aad');
  t.equal(reason(encode(new Tagged(18, [new Uint8Array(2000)]))), 'EDGEGW_CBOR_LIMIT', 'a token longer than any real one');
  t.equal(reason(createConnectToken(signer, { ...claims, aud: 'gw-2' })), 'EDGEGW_CWT_INVALID', 'another gateway');
  t.equal(reason(createConnectToken(signer, { ...claims, iss: 'D2' })), 'EDGEGW_CWT_INVALID', 'iss is not the username');
  const badShape = signSign1(signer, encode(new Map<unknown, unknown>([[1, 'D1'], [3, 'gw-1'], [6, claims.iat], [7, new Uint8Array(2)]])), new Uint8Array(0));
  t.equal(reason(badShape), 'EDGEGW_CWT_INVALID', 'a signed but short cti');

  const cache = createCtiCache();
  const late = { ...ctx, nowMs: NOW_MS + 301_000 };
  t.equal(reason(token, late, cache), 'EDGEGW_CWT_EXPIRED', 'stale iat');
  t.equal(cache.size, 0, 'a refused token leaves no cti behind');
  t.equal(reason(token, ctx, cache), 'ok', 'so the same token is still good within its window');

  const full = createCtiCache({ maxEntries: 1 });
  t.equal(reason(createConnectToken(signer, { ...claims, cti: hex('1111111111111111') }), ctx, full), 'ok');
  t.equal(reason(token, ctx, full), 'EDGEGW_CWT_CACHE_FULL', 'a full cache refuses rather than forgets');
});

t.test('verifyConnectToken never throws on arbitrary bytes', async (t) => {
  const { signer, key } = keyPair('EdDSA');
  const valid = createConnectToken(signer, claims);
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([at, b]) => {
      const x = valid.slice();
      x[at % x.length] = b;
      return x;
    }),
  );
  holds(
    t,
    'coded refusals only',
    fc.property(input, (bytes) => {
      const r = verifyConnectToken(bytes, key, ctx, createCtiCache());
      return r.ok ? toHex(bytes) === toHex(valid) : typeof r.reason === 'string' && r.reason.startsWith('EDGEGW_');
    }),
    { numRuns: 3000 },
  );
});
