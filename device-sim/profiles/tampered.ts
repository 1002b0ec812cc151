/**
 * tampered: a message altered after signing, as by a man in the middle. Its payload is
 * swapped for another of the same shape (same seq, another body) or one byte of its
 * signature is flipped; the structure stays valid, so the gateway gets as far as the
 * signature: EDGEGW_COSE_BAD_SIGNATURE (PROTOCOL.md §3). The cloud must never see it.
 */
import { encode, Tagged } from '../../protocol/cbor.js';
import { COSE_SIGN1_TAG, decodeSign1, encodeTelemetryPayload, telemetryTopic } from '../../protocol/index.js';
import { EdgegwError } from '../../common/errors.js';
import { attackInterval, every, expectFrom, randomBody } from './_loop.js';
import type { Profile } from './types.js';

/** Re-assembles a signed message with another payload or a flipped signature bit. */
export function tamper(signed: Uint8Array, how: { payload: Uint8Array } | { flipSignatureBit: number }): Uint8Array {
  const msg = decodeSign1(signed);
  if (!msg.ok) throw new EdgegwError('EDGEGW_INTERNAL', `tamper: not a COSE_Sign1 (${msg.reason})`);
  const { protectedBytes, payload, signature } = msg.value;
  const sig = signature.slice();
  if ('flipSignatureBit' in how) {
    const bit = how.flipSignatureBit % (sig.length * 8);
    sig[bit >> 3] = sig[bit >> 3]! ^ (1 << (bit & 7));
  }
  return encode(new Tagged(COSE_SIGN1_TAG, [protectedBytes, new Map(), 'payload' in how ? how.payload : payload, sig]));
}

export const tampered: Profile = {
  name: 'tampered',
  summary: 'alters signed messages (payload swapped, signature bit flipped): EDGEGW_COSE_BAD_SIGNATURE',
  honestTraffic: true,
  async run(ctx) {
    const { device } = ctx;
    await every(ctx, attackInterval(ctx), async (i) => {
      const topic = telemetryTopic(device.id, 'tampered');
      const seq = device.seqs.next();
      const ts = ctx.clock.now();
      const signed = device.sign(topic, { seq, ts, body: randomBody(ctx, 16) });
      const bytes =
        i % 2 === 0
          ? tamper(signed, { payload: encodeTelemetryPayload({ seq, ts, body: randomBody(ctx, 16) }) })
          : tamper(signed, { flipSignatureBit: Math.floor(ctx.random() * 512) });
      ctx.forbid(seq);
      expectFrom(ctx, await device.publishRaw(topic, bytes, 1), 'rejected', 'EDGEGW_COSE_BAD_SIGNATURE');
    });
  },
};
