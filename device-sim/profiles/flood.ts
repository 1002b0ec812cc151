/**
 * flood: a device that publishes far above its rate limit. It sends waves of valid signed
 * messages back to back, without waiting for acknowledgements, until the broker's token
 * bucket runs dry and the connection is closed: EDGEGW_BROKER_RATE_LIMITED (PROTOCOL.md §2
 * limits). How many publishes the broker refuses before the close depends on how packets
 * were batched on the socket, so the count is "at least one per close". Messages
 * acknowledged before the cut-off are valid and must reach the cloud; the device reconnects
 * and carries on.
 *
 * Its ordinary telemetry pauses during a flood and the buffer drains first: a buffered
 * message overtaken by more than 64 flood seqs would arrive below the replay window
 * (PROTOCOL.md §3) and be rejected as a replay, which is the protocol working, not the
 * attack this profile is about.
 */
import { telemetryTopic } from '../../protocol/index.js';
import type { RawOutcome } from '../firmware.js';
import { within } from '../timers.js';
import { attackInterval, every } from './_loop.js';
import type { Profile, ProfileContext } from './types.js';

const WAVE = 100;
const WAVE_GAP_MS = 20;
const SETTLE_MS = 5_000;

async function floodOnce(ctx: ProfileContext, topic: string, cap: number): Promise<void> {
  const { device } = ctx;
  let closed = false;
  const outcomes: Promise<void>[] = [];
  for (let sent = 0; sent < cap && !closed && !ctx.aborted && device.state === 'online'; sent += WAVE) {
    // Signed ahead of sending so that each wave leaves at socket speed.
    const wave: { seq: number; bytes: Uint8Array }[] = [];
    for (let i = 0; i < WAVE; i++) {
      const seq = device.seqs.next();
      wave.push({ seq, bytes: device.sign(topic, { seq, ts: ctx.clock.now(), body: { n: seq } }) });
    }
    for (const m of wave) {
      outcomes.push(
        device.publishRaw(topic, m.bytes, 1).then((o: RawOutcome) => {
          if (o === 'acked') ctx.mustDeliver(m.seq);
          if (o === 'closed') closed = true;
        }),
      );
    }
    // A moment for a close to come back before the next wave is signed; far less than the
    // bucket refills in, so the waves still arrive far above the rate.
    await new Promise((r) => setTimeout(r, WAVE_GAP_MS));
  }
  await within(Promise.all(outcomes), SETTLE_MS);
  if (closed) {
    ctx.expect('refused', 'EDGEGW_BROKER_RATE_LIMITED', 'atLeast');
    ctx.check('a flood is cut off by the broker', true);
  } else if (!ctx.aborted) {
    ctx.check('a flood is cut off by the broker', false, `sent ${cap} messages without a close`);
  }
}

export const flood: Profile = {
  name: 'flood',
  summary: 'publishes far above its rate limit until cut off: EDGEGW_BROKER_RATE_LIMITED, connection closed',
  honestTraffic: true,
  async run(ctx, facts) {
    const { device } = ctx;
    const topic = telemetryTopic(device.id, 'flood');
    // Enough to empty a full bucket and then some, whatever the gateway's burst.
    const cap = facts.publishBurst + Math.ceil(facts.publishRatePerSec * 10) + 2 * WAVE;
    await every(ctx, Math.max(attackInterval(ctx), 3_000), async () => {
      device.stopTelemetry();
      try {
        if (!(await device.drain(10_000)) || ctx.aborted) return;
        await floodOnce(ctx, topic, cap);
      } finally {
        device.resumeTelemetry();
      }
    });
  },
};
