/**
 * replay: a device (or someone holding its session) sends captured messages again.
 *   - at once, while the seq is inside the replay window: a duplicate, as a QoS 1
 *     redelivery would be; acknowledged and not stored twice (PROTOCOL.md §3);
 *   - after the device moved more than 64 seqs on: a replay, EDGEGW_VERIFY_REPLAY.
 * The device moves on by skipping seqs, which §3 allows (strictly increasing, not dense).
 */
import { REPLAY_SKIP } from './constants.js';
import { attackInterval, every } from './_loop.js';
import type { Profile } from './types.js';

export const replay: Profile = {
  name: 'replay',
  summary: 're-sends its own captured messages: inside the window a duplicate, beyond it EDGEGW_VERIFY_REPLAY',
  honestTraffic: true,
  async run(ctx) {
    const { device } = ctx;
    await every(ctx, attackInterval(ctx), async () => {
      const captured = device.telemetry('replay', { n: device.seqs.peek() });
      if (!(await device.drain(5_000)) || ctx.aborted) return;
      const dup = await device.publishRaw(captured.topic, captured.bytes, 1);
      if (dup === 'acked') ctx.expect('duplicates', '', 'certain');
      else if (dup === 'closed') ctx.expect('duplicates', '', 'maybe');
      // Move the window past the captured seq: one accepted message REPLAY_SKIP seqs later.
      device.seqs.skip(REPLAY_SKIP);
      device.telemetry('replay', { n: device.seqs.peek() });
      if (!(await device.drain(5_000)) || ctx.aborted) return;
      const outcome = await device.publishRaw(captured.topic, captured.bytes, 1);
      if (outcome === 'acked') ctx.expect('rejected', 'EDGEGW_VERIFY_REPLAY', 'certain');
      else if (outcome === 'closed') ctx.expect('rejected', 'EDGEGW_VERIFY_REPLAY', 'maybe');
    });
  },
};
