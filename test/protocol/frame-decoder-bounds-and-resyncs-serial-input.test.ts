// PROTOCOL.md §7 on the receiving side: field validation of every frame type, CRC and size
// refusals, and the streaming decoder over an untrusted serial line: bounded memory, linear
// time, resynchronisation after noise, agreement with @serialport's SlipDecoder on
// well-formed streams, and no throw on any input.
import t from 'tap';
import fc from 'fast-check';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { SlipDecoder, SlipEncoder } from '@serialport/parser-slip-encoder';
import { encode } from '../../protocol/cbor.js';
import {
  createFrameDecoder,
  decodeFrameContent,
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  encodeFrameCbor,
  exampleFrames,
  FRAME_TYPE,
  FrameReader,
  frameContent,
  generateKeyPair,
  SLIP_TOO_LARGE,
  SlipReader,
  slipEncode,
  type Frame,
  type ReceivedFrame,
} from '../../protocol/index.js';
import type { Result } from '../../common/errors.js';
import { hex, toHex } from './_vectors.js';
import { cborValue } from './_cbor-arb.js';
import { holds } from './_property.js';

const FRAME_CODES = new Set(['EDGEGW_FRAME_BAD_CRC', 'EDGEGW_FRAME_MALFORMED', 'EDGEGW_FRAME_TOO_LARGE']);
const reasonOf = (r: Result<unknown>): string => (r.ok ? 'ok' : r.reason);
const withCrc = (cbor: Uint8Array): Uint8Array => frameContent(cbor);
const m = (entries: [unknown, unknown][]): Map<unknown, unknown> => new Map(entries);
const lines = exampleFrames().map((e) => hex(e.hex));

const ed = generateKeyPair('EdDSA').publicKey;
const p256 = generateKeyPair('ES256').publicKey;

t.test('fields of every frame type are checked against the §7 table', async (t) => {
  const bad: [string, Map<unknown, unknown>][] = [
    ['HELLO nonce of 15 bytes', m([[0, 1], [1, new Uint8Array(15)], [2, 'gw']])],
    ['HELLO nonce as text', m([[0, 1], [1, 'x'.repeat(16)], [2, 'gw']])],
    ['HELLO empty gatewayId', m([[0, 1], [1, new Uint8Array(16)], [2, '']])],
    ['HELLO missing gatewayId', m([[0, 1], [1, new Uint8Array(16)]])],
    ['HELLO extra key', m([[0, 1], [1, new Uint8Array(16)], [2, 'gw'], [3, 0]])],
    ['IDENTITY bad deviceId', m([[0, 2], [1, 'a b'], [2, -8], [3, ed], [4, new Uint8Array(64)], [5, '1'], [6, 'm']])],
    ['IDENTITY unknown alg', m([[0, 2], [1, 'D'], [2, -35], [3, ed], [4, new Uint8Array(64)], [5, '1'], [6, 'm']])],
    ['IDENTITY key of the wrong alg', m([[0, 2], [1, 'D'], [2, -8], [3, p256], [4, new Uint8Array(64)], [5, '1'], [6, 'm']])],
    ['IDENTITY P-256 key off the curve', m([[0, 2], [1, 'D'], [2, -7], [3, new Uint8Array([4, ...new Uint8Array(64).fill(1)])], [4, new Uint8Array(64)], [5, '1'], [6, 'm']])],
    ['IDENTITY DER-length pop', m([[0, 2], [1, 'D'], [2, -8], [3, ed], [4, new Uint8Array(71)], [5, '1'], [6, 'm']])],
    ['IDENTITY firmware as a number', m([[0, 2], [1, 'D'], [2, -8], [3, ed], [4, new Uint8Array(64)], [5, 1], [6, 'm']])],
    ['CREDENTIALS empty certificate', m([[0, 3], [1, 'D'], [2, new Uint8Array(0)], [3, hex('30')], [4, ed], [5, ['u']], [6, m([])]])],
    ['CREDENTIALS gateway key of 33 bytes', m([[0, 3], [1, 'D'], [2, hex('30')], [3, hex('30')], [4, new Uint8Array(33)], [5, ['u']], [6, m([])]])],
    ['CREDENTIALS no broker URL', m([[0, 3], [1, 'D'], [2, hex('30')], [3, hex('30')], [4, ed], [5, []], [6, m([])]])],
    ['CREDENTIALS broker URL as bytes', m([[0, 3], [1, 'D'], [2, hex('30')], [3, hex('30')], [4, ed], [5, [hex('75')]], [6, m([])]])],
    ['CREDENTIALS config as an array', m([[0, 3], [1, 'D'], [2, hex('30')], [3, hex('30')], [4, ed], [5, ['u']], [6, []]])],
    ['COMMIT digest of 31 bytes', m([[0, 4], [1, new Uint8Array(31)]])],
    ['DONE bad deviceId', m([[0, 5], [1, '']])],
    ['ERROR negative code', m([[0, 15], [1, -1], [2, 'x']])],
    ['ERROR message as bytes', m([[0, 15], [1, 1], [2, hex('78')]])],
    ['unknown type 6', m([[0, 6], [1, 'D']])],
    ['type 0', m([[0, 0]])],
    ['type as text', m([[0, '1'], [1, new Uint8Array(16)], [2, 'gw']])],
    ['no type', m([[1, new Uint8Array(16)], [2, 'gw']])],
  ];
  for (const [what, map] of bad) t.equal(reasonOf(decodeFrameContent(withCrc(encode(map)))), 'EDGEGW_FRAME_MALFORMED', what);
  t.equal(reasonOf(decodeFrameContent(withCrc(encode([0, 1])))), 'EDGEGW_FRAME_MALFORMED', 'an array, not a map');
  t.equal(reasonOf(decodeFrameContent(withCrc(hex('a2000501')))), 'EDGEGW_FRAME_MALFORMED', 'truncated CBOR with a good CRC');
  const good = m([[0, 3], [1, 'D'], [2, hex('30')], [3, hex('30')], [4, ed], [5, ['u']], [6, m([[1, [1, 2]]])]]);
  t.equal(reasonOf(decodeFrameContent(withCrc(encode(good)))), 'ok', 'the same CREDENTIALS with valid fields decodes');
});

t.test('the encoder refuses the frames the decoder would refuse', async (t) => {
  t.throws(() => encodeFrame({ type: FRAME_TYPE.HELLO, nonce: new Uint8Array(15), gatewayId: 'gw' }), { code: 'EDGEGW_FRAME_MALFORMED' });
  t.throws(() => encodeFrame({ type: 7 } as unknown as Frame), { code: 'EDGEGW_FRAME_MALFORMED' });
  t.throws(() => encodeFrame({ type: FRAME_TYPE.IDENTITY, deviceId: 'D', alg: 'RS256', publicKey: ed, pop: new Uint8Array(64), firmwareVersion: '', hardwareModel: '' } as unknown as Frame), {
    code: 'EDGEGW_FRAME_MALFORMED',
  });
  t.throws(() => encodeFrame({ type: FRAME_TYPE.IDENTITY, deviceId: 'D', alg: 'ES256', publicKey: ed, pop: new Uint8Array(64), firmwareVersion: '', hardwareModel: '' }), {
    code: 'EDGEGW_FRAME_MALFORMED',
  });
  const big: Frame = { type: FRAME_TYPE.ERROR, code: 6, message: 'x'.repeat(DEFAULT_MAX_FRAME_BYTES) };
  t.throws(() => encodeFrame(big), { code: 'EDGEGW_FRAME_TOO_LARGE' }, 'content over 4 KiB');
  t.equal(encodeFrame(big, { maxFrameBytes: 8192 })[0], 0xc0, 'allowed under a larger configured limit');
});

t.test('a bad CRC, a runt and an oversize content are refused by code', async (t) => {
  const content = withCrc(encodeFrameCbor({ type: FRAME_TYPE.DONE, deviceId: 'D' }));
  for (let i = 0; i < content.length; i++) {
    const flipped = content.slice();
    flipped[i]! ^= 0x01;
    t.equal(reasonOf(decodeFrameContent(flipped)), 'EDGEGW_FRAME_BAD_CRC', `bit flip in byte ${i}`);
  }
  t.equal(reasonOf(decodeFrameContent(hex('a0000000'))), 'EDGEGW_FRAME_BAD_CRC', 'four bytes cannot hold CBOR and a CRC');
  const big = withCrc(encode(m([[0, 15], [1, 6], [2, 'x'.repeat(DEFAULT_MAX_FRAME_BYTES)]])));
  t.equal(reasonOf(decodeFrameContent(big)), 'EDGEGW_FRAME_TOO_LARGE');
  t.equal(reasonOf(decodeFrameContent(big, { maxFrameBytes: 8192 })), 'ok', 'a configured limit');
});

t.test('any bytes given to decodeFrameContent give a frame or a frame code, never a throw', async (t) => {
  const content = fc.oneof(
    fc.uint8Array({ maxLength: 100 }),
    cborValue().map((v) => withCrc(encode(v))),
    cborValue().map((v) => withCrc(encode(m([[0, 1], [1, v], [2, v]])))),
    fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat(5)).map(([at, b, which]) => {
      const c = withCrc(encodeFrameCbor(decodeFrameContentOk(lines[which]!)));
      c[at % c.length] = b;
      return c;
    }),
  );
  holds(
    t,
    'typed results only',
    fc.property(content, (c) => {
      const r = decodeFrameContent(c);
      return r.ok || FRAME_CODES.has(r.reason);
    }),
    { numRuns: 5000 },
  );
});

/** The frame in one line of exampleFrames(), decoded with our reader. */
function decodeFrameContentOk(line: Uint8Array): Frame {
  const [r] = new FrameReader().push(line);
  if (!r?.ok) throw new Error('example frame did not decode');
  return r.value.frame;
}

t.test('the reader decodes frames split at any byte boundary, ignoring empty packets', async (t) => {
  const stream = new Uint8Array(Buffer.concat([Buffer.from([0xc0, 0xc0]), ...lines, Buffer.from([0xc0])]));
  const expected = lines.map((l) => toHex(encodeFrameCbor(decodeFrameContentOk(l))));
  holds(
    t,
    'any chunking',
    fc.property(fc.array(fc.nat(stream.length), { maxLength: 20 }), (cuts) => {
      const reader = new FrameReader();
      const points = [0, ...cuts.sort((a, b) => a - b), stream.length];
      const out: Result<ReceivedFrame>[] = [];
      for (let i = 1; i < points.length; i++) out.push(...reader.push(stream.subarray(points[i - 1], points[i])));
      return out.length === expected.length && out.every((r, i) => r.ok && toHex(r.value.cbor) === expected[i]);
    }),
    { numRuns: 500 },
  );
  const reader = new FrameReader();
  const oneByOne = [...stream].flatMap((b) => reader.push(new Uint8Array([b])));
  t.equal(oneByOne.length, lines.length, 'byte by byte');
});

t.test('the reader refuses an oversize frame at once, stores none of it, and decodes the next frame', async (t) => {
  const reader = new FrameReader();
  const first = reader.push(new Uint8Array(DEFAULT_MAX_FRAME_BYTES).fill(0x41));
  t.same(first, [], 'exactly the limit: still waiting for END');
  const over = reader.push(new Uint8Array([0x41]));
  t.equal(over.length, 1, 'one byte past the limit is reported before any END');
  t.equal(reasonOf(over[0]!), 'EDGEGW_FRAME_TOO_LARGE');
  // 16 MiB more of the same frame: dropped without storage or further reports, in linear time.
  const flood = new Uint8Array(1024 * 1024).fill(0x41);
  const started = performance.now();
  let reports = 0;
  for (let i = 0; i < 16; i++) reports += reader.push(flood).length;
  const ms = performance.now() - started;
  t.equal(reports, 0, 'one report per oversize frame');
  t.ok(ms < 2000, `16 MiB of an oversize frame dropped in ${ms.toFixed(0)} ms`);
  const next = reader.push(lines[4]!);
  t.equal(next.length, 1);
  t.ok(next[0]!.ok, 'the next frame (with its leading END) decodes');
});

t.test('a frame of exactly the configured size is accepted', async (t) => {
  const max = 64;
  const cbor = encode(m([[0, 15], [1, 6], [2, 'x'.repeat(max - 4 - 8)]]));
  t.equal(cbor.length + 4, max);
  const [r] = new FrameReader({ maxFrameBytes: max }).push(encodeFrame(decodeFrameContentFrom(cbor), { maxFrameBytes: max }));
  t.ok(r?.ok, 'content of exactly maxFrameBytes');
  t.throws(() => new FrameReader({ maxFrameBytes: 0 }), { code: 'EDGEGW_USAGE' });
});

function decodeFrameContentFrom(cbor: Uint8Array): Frame {
  const r = decodeFrameContent(withCrc(cbor), { maxFrameBytes: 1 << 20 });
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

t.test('noise on the line costs at most the frame it hits; the next frame always decodes', async (t) => {
  // Noise may contain END, ESC and a dangling ESC right before the next frame's leading END.
  const noise = fc.uint8Array({ minLength: 1, maxLength: 40 }).chain((n) => fc.constantFrom(n, new Uint8Array([...n, 0xdb])));
  holds(
    t,
    'resync after noise',
    fc.property(fc.array(fc.tuple(noise, fc.nat(5)), { minLength: 1, maxLength: 6 }), (parts) => {
      const reader = new FrameReader();
      return parts.every(([n, which]) => {
        reader.push(n);
        // The frame's leading END closes whatever the noise left open; then the frame itself.
        const after = reader.push(lines[which]!);
        const last = after[after.length - 1];
        return last !== undefined && last.ok && toHex(last.value.cbor) === toHex(encodeFrameCbor(decodeFrameContentOk(lines[which]!)));
      });
    }),
    { numRuns: 2000 },
  );
  const r = new FrameReader();
  const escEnd = r.push(new Uint8Array([0xc0, 0x01, 0x02, 0xdb, 0xc0]));
  t.equal(escEnd.length, 1, 'ESC END still ends the packet');
  t.equal(reasonOf(escEnd[0]!), 'EDGEGW_FRAME_BAD_CRC');
  t.same(new SlipReader(16).push(new Uint8Array([0xc0, 0xa0, 0xdb, 0x41, 0x00, 0xc0])), [hex('a04100')], 'ESC followed by another byte keeps the byte (RFC 1055)');
  const badEscape = r.push(new Uint8Array([0xc0, 0xa2, 0x00, 0x05, 0x01, 0x61, 0xdb, 0x44, 0x00, 0x00, 0x00, 0x00, 0xc0]));
  t.equal(reasonOf(badEscape[0]!), 'EDGEGW_FRAME_BAD_CRC', 'and the CRC catches it');
});

t.test('any bytes on the line give frames or frame codes, never a throw', async (t) => {
  const line = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.array(fc.oneof(fc.constantFrom(...lines), fc.uint8Array({ maxLength: 30 }), fc.constantFrom(hex('c0'), hex('db'), hex('dbdc'))), { maxLength: 8 }).map(
      (parts) => new Uint8Array(Buffer.concat(parts)),
    ),
  );
  holds(
    t,
    'typed results only',
    fc.property(line, fc.integer({ min: 5, max: 300 }), (bytes, max) => new FrameReader({ maxFrameBytes: max }).push(bytes).every((r) => r.ok || FRAME_CODES.has(r.reason))),
    { numRuns: 5000 },
  );
});

t.test('our SLIP reader and @serialport SlipDecoder agree on what SlipEncoder writes', async (t) => {
  const packet = fc.array(fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0xc0, 0xdb, 0xdc, 0xdd)), { minLength: 1, maxLength: 200 }).map((a) => new Uint8Array(a));
  holds(
    t,
    'same packets',
    fc.property(fc.array(packet, { minLength: 1, maxLength: 10 }), fc.boolean(), fc.array(fc.nat(), { maxLength: 10 }), (packets, leadingEnd, cuts) => {
      const encoder = new SlipEncoder({ bluetoothQuirk: leadingEnd });
      const wire = Buffer.concat(
        packets.map((p) => {
          encoder.write(p);
          return encoder.read() as Buffer;
        }),
      );
      const points = [0, ...cuts.map((c) => c % (wire.length + 1)).sort((a, b) => a - b), wire.length];
      const ours: Uint8Array[] = [];
      const theirs: Buffer[] = [];
      const reader = new SlipReader(256);
      const decoder = new SlipDecoder();
      decoder.on('data', (b: Buffer) => theirs.push(b));
      for (let i = 1; i < points.length; i++) {
        const chunk = wire.subarray(points[i - 1], points[i]);
        for (const p of reader.push(chunk)) if (p !== SLIP_TOO_LARGE) ours.push(p);
        decoder.write(chunk);
      }
      const want = packets.map(toHex);
      return JSON.stringify(ours.map(toHex)) === JSON.stringify(want) && JSON.stringify(theirs.map((b) => toHex(b))) === JSON.stringify(want);
    }),
    { numRuns: 1000 },
  );
  t.equal(toHex(slipEncode(hex('01c002db03'))), 'c001dbdc02dbdd03c0', 'RFC 1055 escapes, END at both ends');
  t.throws(() => slipEncode(new Uint8Array(0)), { code: 'EDGEGW_USAGE' }, 'an empty packet would be ignored, so it is refused');
});

t.test('the decoder stream turns serial bytes into ordered frame results', async (t) => {
  const chunks = [hex('0102c0'), lines[0]!.subarray(0, 10), lines[0]!.subarray(10), lines[5]!];
  const results: Result<ReceivedFrame>[] = [];
  for await (const r of Readable.from(chunks.map((c) => Buffer.from(c)), { objectMode: false }).pipe(createFrameDecoder())) results.push(r as Result<ReceivedFrame>);
  t.same(results.map(reasonOf), ['EDGEGW_FRAME_BAD_CRC', 'ok', 'ok'], 'noise, HELLO, ERROR');
  const hello = results[1]!;
  t.ok(hello.ok && hello.value.frame.type === FRAME_TYPE.HELLO && crc32(hello.value.cbor) === new DataView(lines[0]!.buffer).getUint32(lines[0]!.length - 5));
});
