/**
 * topic-swap: a valid message moved to a topic it was not signed for.
 *   - to another stream of the same device: the topic is the external_aad (PROTOCOL.md §3),
 *     so the signature fails: EDGEGW_COSE_BAD_SIGNATURE, acknowledged;
 *   - to another device's topic: the broker's ACL refuses it and closes the connection
 *     (§2): EDGEGW_BROKER_ACL_PUBLISH. The device reconnects with backoff and resends what
 *     was in flight.
 */
import { telemetryTopic } from '../../protocol/index.js';
import { attackInterval, every, expectFrom } from './_loop.js';
import type { Profile } from './types.js';

export const topicSwap: Profile = {
  name: 'topic-swap',
  summary: "publishes valid messages on another stream (EDGEGW_COSE_BAD_SIGNATURE) or another device's topic (EDGEGW_BROKER_ACL_PUBLISH)",
  honestTraffic: true,
  async run(ctx) {
    const { device } = ctx;
    await every(ctx, attackInterval(ctx), async (i) => {
      const seq = device.seqs.next();
      const signedFor = telemetryTopic(device.id, 'swap-a');
      const bytes = device.sign(signedFor, { seq, ts: ctx.clock.now(), body: { n: seq } });
      ctx.forbid(seq);
      if (i % 2 === 0) {
        expectFrom(ctx, await device.publishRaw(telemetryTopic(device.id, 'swap-b'), bytes, 1), 'rejected', 'EDGEGW_COSE_BAD_SIGNATURE');
        return;
      }
      if (ctx.peer === undefined) return;
      const outcome = await device.publishRaw(telemetryTopic(ctx.peer.id, 'swap-a'), bytes, 1);
      if (outcome === 'offline') return;
      // The broker refuses before any verification and never acknowledges.
      ctx.expect('refused', 'EDGEGW_BROKER_ACL_PUBLISH', 'certain');
      ctx.check('a publish on another device\'s topic closes the connection', outcome === 'closed', `outcome ${outcome}`);
    });
  },
};
