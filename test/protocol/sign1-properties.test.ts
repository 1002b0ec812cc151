// Properties of the COSE layer, checked with fast-check:
// - whatever the payload and external_aad, sign -> decode -> verify round-trips, for both
//   algs, both signers (noble device side, node:crypto gateway side) and both verifiers;
// - flipping any single bit of a signed message makes it fail (to decode or to verify);
// - random bytes, mutated messages and random COSE-shaped CBOR fed to decodeSign1,
//   decrypt0 and decryptEncrypt never throw and always fail with a catalogued code.
import t from 'tap';
import fc from 'fast-check';
import { generateKeyPairSync } from 'node:crypto';
import { encode, Tagged } from '../../protocol/cbor.js';
import {
  decodeSign1,
  verifySign1,
  verifySign1Noble,
  importPublicKey,
  nobleSigner,
  nodeSigner,
  generateKeyPair,
  signSign1,
  encrypt0,
  decrypt0,
  decryptEncrypt,
  encryptEcdhEs,
  type CoseAlg,
  type Signer,
  type VerifyKey,
} from '../../protocol/index.js';
import { ERROR_CODES, type Result } from '../../common/errors.js';

const ALGS: CoseAlg[] = ['EdDSA', 'ES256'];

function keysFor(alg: CoseAlg): { signers: Signer[]; key: VerifyKey; raw: Uint8Array } {
  const { privateKey } = generateKeyPair(alg);
  const device = nobleSigner(alg, privateKey);
  const nodeKey = alg === 'EdDSA' ? generateKeyPairSync('ed25519').privateKey : generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const gateway = nodeSigner(alg, nodeKey);
  const key = importPublicKey(alg, device.publicKey);
  if (!key.ok) throw new Error(key.reason);
  return { signers: [device, gateway], key: key.value, raw: device.publicKey };
}

function verifyBoth(bytes: Uint8Array, signer: Signer, aad: Uint8Array, opts: { requireTag?: boolean } = {}): [Result<void>, Result<void>] {
  const msg = decodeSign1(bytes, opts);
  if (!msg.ok) return [msg, msg];
  const key = importPublicKey(signer.alg, signer.publicKey);
  if (!key.ok) return [key, key];
  return [verifySign1(msg.value, key.value, aad), verifySign1Noble(msg.value, signer.alg, signer.publicKey, aad)];
}

for (const alg of ALGS) {
  t.test(`${alg}: any payload and external_aad signed by either signer verifies through both verifiers`, async (t) => {
    const { signers } = keysFor(alg);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.uint8Array({ maxLength: 64 }), fc.boolean(), (payload, aad, tagged) => {
        for (const signer of signers) {
          const bytes = signSign1(signer, payload, aad, { tagged });
          const [node, noble] = verifyBoth(bytes, signer, aad, { requireTag: tagged });
          if (!node.ok || !noble.ok) return false;
          const msg = decodeSign1(bytes, { requireTag: tagged });
          if (!msg.ok || Buffer.compare(msg.value.payload, payload) !== 0 || Buffer.compare(msg.value.kid!, signer.kid) !== 0) return false;
          if (!tagged && decodeSign1(bytes).ok) return false; // untagged is refused by default
        }
        return true;
      }),
      { numRuns: 150 },
    );
    t.pass('round-trips held');
  });

  t.test(`${alg}: a single flipped bit anywhere in a signed message makes it fail`, async (t) => {
    const { signers } = keysFor(alg);
    const signer = signers[0]!;
    const aad = new TextEncoder().encode('d/dev-1/t/temp');
    const codes = new Set<string>();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), (payload, bitSeed) => {
        const bytes = signSign1(signer, payload, aad);
        const bit = bitSeed % (bytes.length * 8);
        const flipped = bytes.slice();
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        const [node, noble] = verifyBoth(flipped, signer, aad);
        if (!node.ok) codes.add(node.reason);
        return !node.ok && !noble.ok;
      }),
      { numRuns: 400 },
    );
    t.ok(codes.has('EDGEGW_COSE_BAD_SIGNATURE'), 'some flips reach the signature check');
    t.ok(codes.size > 1, `flips are caught at several stages: ${[...codes].sort().join(', ')}`);
  });

  t.test(`${alg}: the message moved to another topic fails with EDGEGW_COSE_BAD_SIGNATURE`, async (t) => {
    const { signers, key } = keysFor(alg);
    const bytes = signSign1(signers[0]!, new Uint8Array([1, 2, 3]), new TextEncoder().encode('d/dev-1/t/temp'));
    const msg = decodeSign1(bytes);
    if (!msg.ok) return void t.fail(msg.reason);
    t.same(verifySign1(msg.value, key, new TextEncoder().encode('d/dev-2/t/temp')), { ok: false, reason: 'EDGEGW_COSE_BAD_SIGNATURE' });
  });
}

// ---- robustness: never a throw, always a catalogued code ----------------------------------

const KNOWN = new Set(Object.keys(ERROR_CODES));
const aes128 = new Uint8Array(16).fill(7);
const ecdhKey = generateKeyPair('ES256');
const directKey = { direct: aes128 };
const ecdhRecipient = { ecdhPrivateKey: ecdhKey.privateKey };

/** Runs every decoder on the bytes; true when none throws and each fails with a known code or succeeds. */
function allDecodersBehave(bytes: Uint8Array): boolean {
  const results: Result<unknown>[] = [
    decodeSign1(bytes),
    decodeSign1(bytes, { requireTag: false }),
    decrypt0(bytes, aes128, new Uint8Array(0)),
    decrypt0(bytes, aes128, new Uint8Array(0), { requireTag: false, baseIv: new Uint8Array(12) }),
    decryptEncrypt(bytes, directKey, new Uint8Array(0)),
    decryptEncrypt(bytes, ecdhRecipient, new Uint8Array(0), { requireTag: false }),
  ];
  return results.every((r) => r.ok || KNOWN.has(r.reason));
}

const { signers: edSigners } = keysFor('EdDSA');
const { signers: esSigners } = keysFor('ES256');
const SEEDS: Uint8Array[] = [
  signSign1(edSigners[0]!, new Uint8Array([0xa1, 1, 2]), new Uint8Array(0)),
  signSign1(esSigners[1]!, new Uint8Array(40), new Uint8Array(0)),
  encrypt0('A128GCM', aes128, new Uint8Array(30), new Uint8Array(0), { kid: new Uint8Array([1]) }),
  encryptEcdhEs('A256GCM', ecdhKey.publicKey, new Uint8Array(30), new Uint8Array(0), { compressed: true, kid: new Uint8Array([2]) }),
  encode(new Tagged(96, [encode(new Map([[1, 1]])), new Map([[6, new Uint8Array([1])]]), new Uint8Array(20), [[new Uint8Array(0), new Map([[1, -6]]), new Uint8Array(0)]]])),
];

t.test('random bytes never make a decoder throw', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), allDecodersBehave), { numRuns: 2000 });
  t.pass();
});

t.test('mutated valid messages never make a decoder throw', async (t) => {
  const mutation = fc.record({
    seed: fc.nat({ max: SEEDS.length - 1 }),
    edits: fc.array(
      fc.record({ kind: fc.constantFrom('set', 'insert', 'delete', 'truncate'), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      { minLength: 1, maxLength: 4 },
    ),
  });
  fc.assert(
    fc.property(mutation, ({ seed, edits }) => {
      const bytes = [...SEEDS[seed]!];
      for (const e of edits) {
        const at = bytes.length === 0 ? 0 : e.at % bytes.length;
        if (e.kind === 'set' && bytes.length > 0) bytes[at] = e.byte;
        else if (e.kind === 'insert') bytes.splice(at, 0, e.byte);
        else if (e.kind === 'delete') bytes.splice(at, 1);
        else bytes.length = at;
      }
      return allDecodersBehave(new Uint8Array(bytes));
    }),
    { numRuns: 3000 },
  );
  t.ok(SEEDS.every((s) => allDecodersBehave(s)), 'the seeds themselves');
});

// Well-formed CBOR shaped like COSE (right tags, arrays of 3 or 4, headers that are maps of
// random labels and values) reaches the header and recipient checks that random bytes rarely do.
const label = fc.oneof(fc.integer({ min: -30, max: 10 }), fc.constantFrom('alg', 'kid', ''), fc.constant(2 ** 40));
const leaf = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.constantFrom(-7, -8, -6, -25, 1, 3, 10, true, false, null, 2n ** 64n - 1n),
  fc.uint8Array({ maxLength: 40 }),
  fc.string({ maxLength: 8 }),
  fc.double(),
);
const { value } = fc.letrec<{ value: unknown; map: Map<unknown, unknown> }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.array(tie('value'), { maxLength: 4 }), tie('map')),
  map: fc.array(fc.tuple(label, tie('value')), { maxLength: 5 }).map((entries) => new Map(entries)),
}));
const header = fc.array(fc.tuple(label, value), { maxLength: 5 }).map((entries) => new Map(entries));
const protectedBstr = fc.oneof(header.map((m) => encode(m)), fc.uint8Array({ maxLength: 6 }), fc.constant(new Uint8Array(0)));
const recipient = fc.tuple(protectedBstr, header, fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 4 }), value));
const coseShaped = fc
  .tuple(
    fc.constantFrom(16, 18, 96, 17, -1),
    protectedBstr,
    fc.oneof(header, value),
    fc.oneof(fc.uint8Array({ maxLength: 80 }), value),
    fc.oneof(fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.array(recipient, { maxLength: 2 }), value),
    fc.boolean(),
  )
  .map(([tag, p, u, c, last, four]) => {
    const body = four ? [p, u, c, last] : [p, u, c];
    return encode(tag < 0 ? body : new Tagged(tag, body));
  });

t.test('random COSE-shaped CBOR never makes a decoder throw', async (t) => {
  fc.assert(fc.property(coseShaped, allDecodersBehave), { numRuns: 3000 });
  t.pass();
});
