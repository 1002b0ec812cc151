// Differential test against an independent implementation, cbor-x (kept as a dev-time
// cross-check only; see protocol/cbor.ts for why it is not on the wire path). Configured as
// plainly as it allows: byte strings untagged, no records, maps as Maps.
//   - what we encode, cbor-x decodes to the same value;
//   - what cbor-x encodes, we decode to the same value;
//   - well-formed bytes in loose encodings: we accept all, and match cbor-x where it accepts.
// Known, deliberate differences are excluded where they arise: cbor-x gives meaning to some
// tags (1 → Date, 2/3 → bigint, 64..87 → typed arrays), silently keeps the last of duplicate
// map keys, and writes -0 as the integer 0; we keep tags opaque and refuse duplicates.
import t from 'tap';
import fc from 'fast-check';
import { Encoder, Tag } from 'cbor-x';
import { decode, encode, Tagged } from '../../protocol/cbor.js';
import { cborValue, looseCborBytes, sameCbor } from './_cbor-arb.js';
import { holds } from './_property.js';

const cborx = new Encoder({ tagUint8Array: false, useRecords: false, mapsAsObjects: false });

/**
 * cbor-x's output in our decoder's shapes: Buffer → Uint8Array, Tag → Tagged, and a safe
 * integer that came with an 8-byte head → number (cbor-x returns a bigint for every such head).
 */
function fromCborX(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(fromCborX);
  if (v instanceof Tag) return new Tagged(v.tag, fromCborX(v.value));
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [fromCborX(k), fromCborX(x)]));
  return v;
}

/** Our values in cbor-x's input shapes: Tagged → Tag; -0 stays -0 (cbor-x writes it as 0). */
function toCborX(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toCborX);
  if (v instanceof Tagged) return new Tag(toCborX(v.value), v.tag);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, toCborX(x)]));
  return v;
}

function someLeaf(v: unknown, pred: (leaf: unknown) => boolean): boolean {
  if (Array.isArray(v)) return v.some((x) => someLeaf(x, pred));
  if (v instanceof Tagged) return someLeaf(v.value, pred);
  if (v instanceof Map) return [...v.values()].some((x) => someLeaf(x, pred));
  return pred(v);
}

t.test('what we encode, cbor-x decodes to the same value', async (t) => {
  holds(t, 'ours → cbor-x', fc.property(cborValue(), (v) => sameCbor(fromCborX(cborx.decode(encode(v))), v)), { numRuns: 2000 });
});

t.test('what cbor-x encodes, we decode to the same value', async (t) => {
  // cbor-x writes -0 as 0, and -(2^64) as a tag-3 bignum (which we keep as a tag): leave both out.
  const value = cborValue().filter((v) => !someLeaf(v, (x) => Object.is(x, -0) || x === -(2n ** 64n)));
  holds(
    t,
    'cbor-x → ours',
    fc.property(value, (v) => sameCbor(decode(cborx.encode(toCborX(v)), { maxDepth: 64 }), v)),
    { numRuns: 2000 },
  );
});

t.test('well-formed bytes in any encoding: we accept them all, and agree with cbor-x where it accepts', async (t) => {
  // Non-preferred head widths, indefinite lengths and floats of every width from raw bits:
  // PROTOCOL.md lets the gateway read any well-formed encoding.
  let compared = 0;
  holds(
    t,
    'loose encodings',
    fc.property(looseCborBytes(), (bytes) => {
      const ours = decode(bytes); // must not throw: the bytes are well-formed
      let theirs: unknown;
      try {
        theirs = fromCborX(cborx.decode(bytes));
      } catch {
        return true; // cbor-x refuses some well-formed input; that is not ours to judge
      }
      compared++;
      return sameCbor(ours, theirs);
    }),
    { numRuns: 5000 },
  );
  t.ok(compared > 2500, `${compared} inputs accepted by both decoders were compared`);
});

t.test('where the two differ on purpose, we are the stricter', async (t) => {
  const dup = new Uint8Array([0xa2, 0x01, 0x01, 0x01, 0x02]); // {1: 1, 1: 2}
  t.same(fromCborX(cborx.decode(dup)), new Map([[1, 2]]), 'cbor-x keeps the last duplicate');
  t.throws(() => decode(dup), { code: 'EDGEGW_CBOR_MALFORMED' }, 'we refuse duplicate keys (RFC 8949 §5.6)');
  t.equal(Buffer.from(cborx.encode(-0)).toString('hex'), '00', 'cbor-x writes -0 as the integer 0');
  t.equal(Buffer.from(encode(-0)).toString('hex'), 'f98000', 'we keep its sign');
});
