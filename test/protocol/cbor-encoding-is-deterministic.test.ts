// RFC 8949 §4.2.1 "Core Deterministic Encoding Requirements": preferred serialisation (the
// shortest head for every integer and length, the shortest float that keeps the value),
// definite lengths only, and map keys sorted by the bytewise lexicographic order of their
// encodings. PROTOCOL.md: what the gateway *writes* is deterministic; what it signs depends
// on it.
import t from 'tap';
import fc from 'fast-check';
import { decode, encode, Tagged } from '../../protocol/cbor.js';
import { toHex } from './_vectors.js';
import { cborValue, sameCbor } from './_cbor-arb.js';
import { holds } from './_property.js';

t.test('map keys come out in the §4.2.1 example order whatever the insertion order', async (t) => {
  // RFC 8949 §4.2.1 lists these keys as correctly sorted: 10, 100, -1, "z", "aa", [100], [-1], false.
  const keys: unknown[] = [10, 100, -1, 'z', 'aa', [100], [-1], false];
  const expected = 'a8' + ['0a', '1864', '20', '617a', '626161', '811864', '8120', 'f4'].map((k, i) => k + toHex(encode(i))).join('');
  const entries = keys.map((k, i): [unknown, number] => [k, i]);
  t.equal(toHex(encode(new Map(entries))), expected, 'in order');
  t.equal(toHex(encode(new Map([...entries].reverse()))), expected, 'reversed');
  holds(
    t,
    'any insertion order',
    fc.property(fc.shuffledSubarray(entries, { minLength: keys.length }), (entries) => toHex(encode(new Map(entries))) === expected),
    { numRuns: 200 },
  );
});

t.test('a Map and a plain object with the same entries encode the same, in sorted order', async (t) => {
  const bytes = encode({ b: 1, a: 2, aa: 3 });
  t.equal(toHex(bytes), 'a3616102616201626161' + '03');
  t.equal(toHex(encode(new Map<unknown, unknown>([['aa', 3], ['b', 1], ['a', 2]]))), toHex(bytes));
});

t.test('integers and lengths use the shortest head', async (t) => {
  const cases: [number | bigint, string][] = [
    [23, '17'],
    [24, '1818'],
    [255, '18ff'],
    [256, '190100'],
    [65535, '19ffff'],
    [65536, '1a00010000'],
    [4294967295, '1affffffff'],
    [4294967296, '1b0000000100000000'],
    [-24, '37'],
    [-25, '3818'],
    [-256, '38ff'],
    [-257, '390100'],
    [2n ** 64n - 1n, '1bffffffffffffffff'],
  ];
  for (const [v, h] of cases) t.equal(toHex(encode(v)), h, String(v));
  t.equal(toHex(encode(new Uint8Array(24))).slice(0, 4), '5818', 'bstr of 24 bytes: 1-byte length');
  t.equal(toHex(encode('x'.repeat(256))).slice(0, 6), '790100', 'tstr of 256 bytes: 2-byte length');
  t.equal(toHex(encode(new Array(24).fill(0))).slice(0, 4), '9818', 'array of 24: 1-byte length');
  holds(
    t,
    'every integer in -2^64..2^64-1 gets the head its magnitude needs and decodes back',
    fc.property(fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }), (v) => {
      const arg = v < 0n ? -1n - v : v;
      const expected = arg < 24n ? 1 : arg < 0x100n ? 2 : arg < 0x10000n ? 3 : arg < 0x100000000n ? 5 : 9;
      const bytes = encode(v);
      return bytes.length === expected && BigInt(decode(bytes) as number | bigint) === v;
    }),
    { numRuns: 1000 },
  );
});

t.test('floats use the shortest of half, single and double that keeps the value', async (t) => {
  const f32 = new Float32Array(1);
  holds(
    t,
    'float width',
    fc.property(fc.oneof(fc.double(), fc.float()), (x) => {
      if (Number.isInteger(x) && Math.abs(x) < 2 ** 64 && !Object.is(x, -0)) return true; // integers: above
      const bytes = encode(x);
      if (!Object.is(decode(bytes), x)) return false;
      f32[0] = x;
      const fitsSingle = Object.is(f32[0], x) || Number.isNaN(x);
      if (bytes[0] === 0xf9) return bytes.length === 3;
      if (bytes[0] === 0xfa) return bytes.length === 5 && fitsSingle;
      return bytes[0] === 0xfb && bytes.length === 9 && !fitsSingle;
    }),
    { numRuns: 2000 },
  );
  t.equal(toHex(encode(NaN)), 'f97e00', 'NaN is the canonical half NaN');
  t.equal(toHex(encode(0.5)), 'f93800', '0.5 fits a half');
  t.equal(toHex(encode(Math.fround(0.1))), 'fa3dcccccd', 'a single that is not a half');
});

t.test('encoding is canonical: re-encoding a decoded value gives the same bytes, and the value survives', async (t) => {
  holds(
    t,
    'decode(encode(v)) = v and encode(decode(encode(v))) = encode(v)',
    fc.property(cborValue(), (v) => {
      const bytes = encode(v);
      const back = decode(bytes, { maxDepth: 64, maxItems: 100_000 });
      return sameCbor(back, v) && toHex(encode(back)) === toHex(bytes);
    }),
    { numRuns: 1000 },
  );
});

t.test('values with no deterministic encoding are refused with EDGEGW_CBOR_UNSUPPORTED', async (t) => {
  const refused: [string, unknown][] = [
    ['a duplicate map key (1 and 1n encode the same)', new Map<unknown, unknown>([[1, 'a'], [1n, 'b']])],
    ['an integer beyond 64 bits', 2n ** 64n],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a Date', new Date(0)],
    ['an ArrayBuffer', new ArrayBuffer(4)],
    ['a Uint16Array', new Uint16Array(2)],
    ['a Set', new Set([1])],
    ['a Tagged with a bad value', new Tagged(1, () => 1)],
  ];
  for (const [what, v] of refused) t.throws(() => encode(v), { code: 'EDGEGW_CBOR_UNSUPPORTED' }, what);
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  t.throws(() => encode(cyclic), { code: 'EDGEGW_CBOR_UNSUPPORTED' }, 'a cycle is refused, not a stack overflow');
  t.equal(toHex(encode(Object.create(null) as object)), 'a0', 'a null-prototype object is a plain map');
});
