// The decoder faces untrusted bytes (PROTOCOL.md §3: "well-formed CBOR" is a rejection reason):
// on any input it returns a value or throws an EdgegwError with a CBOR code, never another
// exception, never a hang, and never allocates more than the input can justify.
import t from 'tap';
import fc from 'fast-check';
import { decode, encode, DEFAULT_DECODE_LIMITS } from '../../protocol/cbor.js';
import { isEdgegwError } from '../../common/errors.js';
import { hex } from './_vectors.js';
import { cborValue } from './_cbor-arb.js';
import { holds } from './_property.js';

const CBOR_CODES = new Set(['EDGEGW_CBOR_MALFORMED', 'EDGEGW_CBOR_LIMIT']);

/** True when decode returns, or throws an EdgegwError with a CBOR code. */
function decodesOrRefuses(bytes: Uint8Array): boolean {
  try {
    decode(bytes);
    return true;
  } catch (err) {
    return isEdgegwError(err) && CBOR_CODES.has(err.code);
  }
}

// Mutations of a valid encoding: flip a byte, insert one, delete one, truncate, duplicate a run.
const mutated = fc
  .tuple(cborValue(), fc.array(fc.tuple(fc.nat(4), fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }))
  .map(([v, edits]) => {
    let b = Array.from(encode(v));
    for (const [kind, at, byte] of edits) {
      const i = b.length === 0 ? 0 : at % b.length;
      if (kind === 0) b[i] = byte;
      else if (kind === 1) b.splice(i, 0, byte);
      else if (kind === 2) b.splice(i, 1);
      else if (kind === 3) b = b.slice(0, i);
      else b.splice(i, 0, ...b.slice(i, i + 8));
    }
    return new Uint8Array(b);
  });

t.test('random bytes decode to a value or a coded refusal, never another throw', async (t) => {
  holds(t, 'random bytes', fc.property(fc.uint8Array({ maxLength: 256 }), decodesOrRefuses), { numRuns: 20_000 });
  // Heads that declare containers and strings, to get past the first byte more often.
  const headFirst = fc.tuple(fc.constantFrom(0x5f, 0x7f, 0x9f, 0xbf, 0x9b, 0xbb, 0x5b, 0x7b, 0xd8, 0xc2, 0xf9, 0xfb), fc.uint8Array({ maxLength: 64 }));
  holds(t, 'random bytes after a container head', fc.property(headFirst, ([h, rest]) => decodesOrRefuses(new Uint8Array([h, ...rest]))), { numRuns: 20_000 });
});

t.test('mutated valid encodings decode to a value or a coded refusal', async (t) => {
  holds(t, 'mutations', fc.property(mutated, decodesOrRefuses), { numRuns: 5_000 });
});

t.test('a header claiming more than the input holds is refused without allocating', async (t) => {
  // 10 bytes each: an array, map, bstr or tstr whose 8-byte length says 2^32, then one byte;
  // and a 4-byte length of 2^32 - 1 followed by five bytes.
  const liars = ['9b000000010000000000', 'bb000000010000000000', '5b000000010000000000', '7b000000010000000000', '9affffffff0000000000'];
  const before = process.memoryUsage().arrayBuffers;
  const started = performance.now();
  for (let i = 0; i < 10_000; i++) {
    for (const h of liars) {
      try {
        decode(hex(h));
        t.fail(`${h} decoded`);
      } catch (err) {
        if (!isEdgegwError(err, 'EDGEGW_CBOR_MALFORMED')) t.fail(`${h}: ${String(err)}`);
      }
    }
  }
  const ms = performance.now() - started;
  for (const h of liars) t.throws(() => decode(hex(h)), { code: 'EDGEGW_CBOR_MALFORMED' }, h);
  // 50,000 refusals; allocating 2^32 slots even once would take seconds or fail outright.
  t.ok(ms < 2000, `50,000 lying headers refused in ${ms.toFixed(0)} ms`);
  t.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024, 'no large buffers allocated');
  // A 2^64-1 length cannot even be a JS number of elements.
  t.throws(() => decode(hex('9bffffffffffffffff00')), { code: 'EDGEGW_CBOR_MALFORMED' }, '2^64-1 elements');
});

t.test('limits on size, depth and item count give EDGEGW_CBOR_LIMIT', async (t) => {
  t.throws(() => decode(new Uint8Array(DEFAULT_DECODE_LIMITS.maxBytes + 1)), { code: 'EDGEGW_CBOR_LIMIT' }, 'default size');
  t.throws(() => decode(encode('x'.repeat(100)), { maxBytes: 100 }), { code: 'EDGEGW_CBOR_LIMIT' }, 'caller size');
  t.equal(decode(encode('x'.repeat(98)), { maxBytes: 100 }), 'x'.repeat(98), 'exactly maxBytes is accepted');

  // maxDepth counts the containers enclosing a data item: [[1]] has 1 at depth 2.
  t.same(decode(encode([[1]]), { maxDepth: 2 }), [[1]]);
  t.throws(() => decode(encode([[[1]]]), { maxDepth: 2 }), { code: 'EDGEGW_CBOR_LIMIT' }, 'arrays');
  t.throws(() => decode(encode(new Map([[1, new Map([[1, new Map([[1, 1]])]])]])), { maxDepth: 2 }), { code: 'EDGEGW_CBOR_LIMIT' }, 'maps');
  t.throws(() => decode(hex('c1c1c101'), { maxDepth: 2 }), { code: 'EDGEGW_CBOR_LIMIT' }, 'tags');
  const deep = new Uint8Array(60_000).fill(0x9f); // indefinite arrays, deeper than any stack
  t.throws(() => decode(deep), { code: 'EDGEGW_CBOR_LIMIT' }, 'default depth, no stack overflow');

  t.throws(() => decode(encode(new Array(101).fill(0)), { maxItems: 101 }), { code: 'EDGEGW_CBOR_LIMIT' }, 'items: the array counts too');
  t.same(decode(encode(new Array(100).fill(0)), { maxItems: 101 }), new Array(100).fill(0));
  const manyItems = new Uint8Array([0x9f, ...new Array(DEFAULT_DECODE_LIMITS.maxItems + 1).fill(0), 0xff]);
  t.throws(() => decode(manyItems), { code: 'EDGEGW_CBOR_LIMIT' }, 'default item count, indefinite array');

  // An explicit undefined must keep the default, not lift the limit.
  t.throws(() => decode(deep, { maxDepth: undefined }), { code: 'EDGEGW_CBOR_LIMIT' }, 'maxDepth: undefined keeps the default');
});

t.test('well-formedness rules give EDGEGW_CBOR_MALFORMED', async (t) => {
  const bad: [string, string][] = [
    ['', 'empty input'],
    ['1c', 'reserved additional information 28'],
    ['1f', 'indefinite integer'],
    ['18', 'truncated argument'],
    ['62 61', 'truncated string'],
    ['ff', 'lone break'],
    ['0000', 'trailing bytes'],
    ['a20101 0102', 'duplicate map key'],
    ['a1 41 00 01', 'byte-string map key'],
    ['a1 80 01', 'array map key'],
    ['62 c328', 'invalid UTF-8'],
    ['7f 61 61 41 62 ff', 'byte chunk in a text string'],
    ['5f 5f ff ff', 'nested indefinite chunk'],
    ['df 01', 'indefinite tag'],
    ['bf 01 ff', 'break where a map value belongs'],
    ['9f 01', 'unterminated indefinite array'],
    ['f8 20', 'two-byte simple value'],
    ['fc', 'reserved simple 28'],
  ];
  for (const [h, what] of bad) t.throws(() => decode(hex(h.replace(/ /g, ''))), { code: 'EDGEGW_CBOR_MALFORMED' }, what);
  t.throws(() => decode('a0' as unknown as Uint8Array), { code: 'EDGEGW_CBOR_MALFORMED' }, 'a string instead of bytes');
});
