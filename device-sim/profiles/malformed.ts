/**
 * malformed: payloads that are not valid COSE_Sign1 messages, each refused at the first
 * check of PROTOCOL.md §3 it fails and acknowledged (it can never become valid). The
 * samples and their expected reasons are a table, checked against the protocol decoder by
 * test/device-sim/malformed-samples-fail-where-the-contract-says.test.ts.
 */
import { encode, Tagged } from '../../protocol/cbor.js';
import { COSE_SIGN1_TAG, signSign1, telemetryTopic, type Signer } from '../../protocol/index.js';
import type { ErrorCode } from '../../common/errors.js';
import { attackInterval, every, expectFrom } from './_loop.js';
import type { Profile } from './types.js';

export interface MalformedSample {
  readonly name: string;
  readonly code: ErrorCode;
  /** The payload for a message of `seq` on `topic`, signed by `signer` where a signature is needed. */
  make(signer: Signer, topic: string, seq: number, ts: number): Uint8Array;
}

const utf8 = new TextEncoder();

export const MALFORMED_SAMPLES: readonly MalformedSample[] = [
  { name: 'not CBOR (a lone break byte)', code: 'EDGEGW_CBOR_MALFORMED', make: () => new Uint8Array([0xff, 0x00]) },
  {
    name: 'truncated message',
    code: 'EDGEGW_CBOR_MALFORMED',
    make: (signer, topic, seq, ts) => {
      const full = signSign1(signer, encode(new Map<number, unknown>([[1, seq], [2, ts], [3, 0]])), utf8.encode(topic));
      return full.subarray(0, full.length - 10);
    },
  },
  {
    name: 'untagged COSE_Sign1',
    code: 'EDGEGW_COSE_NOT_TAGGED',
    make: (signer, topic, seq, ts) =>
      signSign1(signer, encode(new Map<number, unknown>([[1, seq], [2, ts], [3, 0]])), utf8.encode(topic), { tagged: false }),
  },
  { name: 'wrong tag (17)', code: 'EDGEGW_COSE_BAD_TAG', make: () => encode(new Tagged(17, [new Uint8Array(0), new Map(), new Uint8Array(0), new Uint8Array(64)])) },
  { name: 'three elements', code: 'EDGEGW_COSE_BAD_STRUCTURE', make: () => encode(new Tagged(COSE_SIGN1_TAG, [new Uint8Array(0), new Map(), new Uint8Array(0)])) },
  {
    name: 'no alg in the protected header',
    code: 'EDGEGW_COSE_ALG_MISSING',
    make: (signer) => encode(new Tagged(COSE_SIGN1_TAG, [encode(new Map([[4, signer.kid]])), new Map(), new Uint8Array(1), new Uint8Array(64)])),
  },
  {
    name: 'signed payload that is not the {1: seq, 2: ts, 3: body} map',
    code: 'EDGEGW_PAYLOAD_INVALID',
    make: (signer, topic, seq) => signSign1(signer, encode([seq, 'not a map']), utf8.encode(topic)),
  },
];

export const malformed: Profile = {
  name: 'malformed',
  summary: 'payloads that are not valid COSE_Sign1 (bad CBOR, untagged, wrong tag or shape, bad payload): rejected at the first failing check',
  honestTraffic: true,
  async run(ctx) {
    const { device } = ctx;
    const topic = telemetryTopic(device.id, 'junk');
    await every(ctx, attackInterval(ctx) / 2, async (i) => {
      const sample = MALFORMED_SAMPLES[i % MALFORMED_SAMPLES.length]!;
      const seq = device.seqs.next();
      ctx.forbid(seq);
      expectFrom(ctx, await device.publishRaw(topic, sample.make(device.signer, topic, seq, ctx.clock.now()), 1), 'rejected', sample.code);
    });
  },
};
