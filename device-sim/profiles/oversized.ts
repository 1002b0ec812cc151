/**
 * oversized: validly signed messages that are too big.
 *   - a little over the largest accepted payload (16 KiB by default, PROTOCOL.md §3) but
 *     within the broker's packet bound: read, acknowledged, rejected EDGEGW_VERIFY_TOO_LARGE;
 *   - far over the packet bound: the broker stops reading as soon as the packet header
 *     announces its length and closes the connection: refused EDGEGW_VERIFY_TOO_LARGE.
 */
import { telemetryTopic } from '../../protocol/index.js';
import { attackInterval, every, expectFrom, randomBody } from './_loop.js';
import type { Profile } from './types.js';

export const oversized: Profile = {
  name: 'oversized',
  summary: 'signed messages over the payload limit (rejected) or the packet limit (connection closed): EDGEGW_VERIFY_TOO_LARGE',
  honestTraffic: true,
  async run(ctx, facts) {
    const { device } = ctx;
    const topic = telemetryTopic(device.id, 'big');
    await every(ctx, attackInterval(ctx), async (i) => {
      const huge = i % 2 === 1;
      const bodyBytes = huge ? facts.maxPacketBytes * 2 : facts.maxPayloadBytes + 64;
      const seq = device.seqs.next();
      const bytes = device.sign(topic, { seq, ts: ctx.clock.now(), body: randomBody(ctx, bodyBytes) });
      ctx.forbid(seq);
      const outcome = await device.publishRaw(topic, bytes, 1);
      if (!huge) {
        expectFrom(ctx, outcome, 'rejected', 'EDGEGW_VERIFY_TOO_LARGE');
        return;
      }
      if (outcome === 'offline') return;
      ctx.expect('refused', 'EDGEGW_VERIFY_TOO_LARGE', 'certain');
      ctx.check('a packet over the broker bound closes the connection', outcome === 'closed', `outcome ${outcome}`);
    });
  },
};
