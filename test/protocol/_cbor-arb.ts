// fast-check generators of CBOR values in the form protocol/cbor.ts decodes them to, so that
// decode(encode(v)) can be compared with v itself: integers are numbers when safe and bigints
// otherwise, floats are never integral below 2^64 (those encode as integers), byte strings
// are Uint8Array, maps are Maps with integer or text keys, tags are Tagged.
import fc from 'fast-check';
import { CborFloat, Tagged } from '../../protocol/cbor.js';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export const cborInt = fc.oneof(
  fc.maxSafeInteger(),
  fc.integer({ min: -1000, max: 1000 }),
  fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }).filter((b) => b > MAX_SAFE || b < -MAX_SAFE),
);

export const cborFloat = fc
  .oneof(fc.double(), fc.float().map((f) => f), fc.constantFrom(0.5, -0, 1.5, 65504.5, 5.960464477539063e-8, NaN, Infinity, -Infinity))
  .filter((x) => !Number.isInteger(x) || Math.abs(x) >= 2 ** 64 || Object.is(x, -0));

export const cborText = fc.string({ unit: 'binary', maxLength: 40 });

/** Tags that neither we nor cbor-x give a meaning to beyond "tag n of value": COSE's and a few large ones. */
export const opaqueTags = fc.constantFrom(16, 17, 18, 61, 96, 97, 98, 1000, 40000, 4294967295);

export interface CborArbOptions {
  /** Include Tagged values (cbor-x turns some tags into Dates, bigints or typed arrays). */
  tags?: boolean;
  /** Include undefined (JSON-like consumers do not have it). */
  undef?: boolean;
  maxDepth?: number;
}

export function cborValue(opts: CborArbOptions = {}): fc.Arbitrary<unknown> {
  const leaves: fc.Arbitrary<unknown>[] = [
    cborInt,
    cborFloat,
    cborText,
    fc.uint8Array({ maxLength: 40 }),
    fc.boolean(),
    fc.constant(null),
  ];
  if (opts.undef !== false) leaves.push(fc.constant(undefined));
  const { value } = fc.letrec<{ value: unknown }>((tie) => {
    const nodes: fc.Arbitrary<unknown>[] = [
      fc.oneof({ depthSize: 'small', withCrossShrink: true }, ...leaves),
      fc.array(tie('value'), { maxLength: 6 }),
      fc
        .uniqueArray(fc.tuple(fc.oneof(fc.integer({ min: -100, max: 100 }), fc.string({ maxLength: 8 })), tie('value')), {
          maxLength: 6,
          selector: ([k]) => k,
        })
        .map((entries) => new Map<unknown, unknown>(entries)),
    ];
    if (opts.tags !== false) nodes.push(fc.tuple(opaqueTags, tie('value')).map(([tag, v]) => new Tagged(tag, v)));
    return { value: fc.oneof({ maxDepth: opts.maxDepth ?? 4, depthSize: 'small' }, ...nodes) };
  });
  return value;
}

/** Deep equality that tells -0 from 0, matches NaN to NaN, compares bytes by content, and a CborFloat by its value. */
export function sameCbor(a: unknown, b: unknown): boolean {
  // A float read with { floats: 'wrapped' } is the generated float (never integral, above).
  if (a instanceof CborFloat) return sameCbor(a.value, b instanceof CborFloat ? b.value : b);
  if (b instanceof CborFloat) return sameCbor(a, b.value);
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b);
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(Buffer.from(b));
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameCbor(x, b[i]));
  if (a instanceof Tagged && b instanceof Tagged) return a.tag === b.tag && sameCbor(a.value, b.value);
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !sameCbor(v, b.get(k))) return false;
    return true;
  }
  return a === b;
}

/** A CBOR head of major type `major` and argument `n` in a width at least as wide as needed (non-preferred allowed). */
function head(major: number, n: bigint, extraWidth: number): number[] {
  const minimal = n < 24n ? 0 : n < 0x100n ? 1 : n < 0x10000n ? 2 : n < 0x100000000n ? 4 : 8;
  const candidates = [0, 1, 2, 4, 8].filter((w) => (w === 0 ? minimal === 0 : w >= minimal));
  const w = candidates[Math.min(extraWidth, candidates.length - 1)]!;
  if (w === 0) return [(major << 5) | Number(n)];
  const ai = { 1: 24, 2: 25, 4: 26, 8: 27 }[w as 1 | 2 | 4 | 8];
  const out = [(major << 5) | ai];
  for (let i = w - 1; i >= 0; i--) out.push(Number((n >> BigInt(8 * i)) & 0xffn));
  return out;
}

/**
 * Well-formed CBOR bytes written loosely: non-preferred head widths, indefinite-length arrays
 * and maps, floats of every width from raw bits. Map keys are distinct small integers so the
 * bytes never hold duplicate keys. Every output is well-formed: a strict decoder must accept it.
 */
export function looseCborBytes(maxDepth = 3): fc.Arbitrary<Uint8Array> {
  const width = fc.nat(4);
  const { item } = fc.letrec<{ item: number[] }>((tie) => ({
    item: fc.oneof(
      { maxDepth, depthSize: 'small' },
      fc.tuple(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.boolean(), width).map(([n, neg, w]) => head(neg ? 1 : 0, n, w)),
      fc.tuple(fc.uint8Array({ maxLength: 20 }), width).map(([b, w]) => [...head(2, BigInt(b.length), w), ...b]),
      fc.tuple(fc.string({ unit: 'binary', maxLength: 10 }), width).map(([s, w]) => {
        const b = new TextEncoder().encode(s);
        return [...head(3, BigInt(b.length), w), ...b];
      }),
      fc.constantFrom(0xf4, 0xf5, 0xf6, 0xf7).map((b) => [b]),
      fc.uint8Array({ minLength: 2, maxLength: 2 }).map((b) => [0xf9, ...b]),
      fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => [0xfa, ...b]),
      fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => [0xfb, ...b]),
      fc.tuple(fc.array(tie('item'), { maxLength: 4 }), fc.boolean(), width).map(([items, indef, w]) =>
        indef ? [0x9f, ...items.flat(), 0xff] : [...head(4, BigInt(items.length), w), ...items.flat()],
      ),
      fc.tuple(fc.array(tie('item'), { maxLength: 4 }), fc.boolean(), width).map(([values, indef, w]) => {
        const entries = values.flatMap((v, i) => [...head(0, BigInt(i), w), ...v]);
        return indef ? [0xbf, ...entries, 0xff] : [...head(5, BigInt(values.length), w), ...entries];
      }),
      fc.tuple(opaqueTags, tie('item'), width).map(([tag, v, w]) => [...head(6, BigInt(tag), w), ...v]),
    ),
  }));
  return item.map((b) => new Uint8Array(b));
}
