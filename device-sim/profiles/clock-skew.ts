/**
 * clock-skew: a device whose clock runs ten minutes ahead, beyond the gateway's freshness
 * window (PROTOCOL.md §3: |ts − gateway time| ≤ 300 s by default). Its telemetry is signed
 * and otherwise valid, so each message is acknowledged and rejected as EDGEGW_VERIFY_STALE;
 * none may reach the cloud.
 */
import { CLOCK_SKEW_MS } from './constants.js';
import type { Profile } from './types.js';

export const clockSkew: Profile = {
  name: 'clock-skew',
  summary: 'clock ten minutes ahead: every message EDGEGW_VERIFY_STALE, none in the cloud',
  // Its own telemetry is the attack: the fleet expects none of it in the cloud.
  honestTraffic: false,
  clock: (base, facts) => ({ now: () => base.now() + Math.max(CLOCK_SKEW_MS, 2 * facts.freshnessMs) }),
  settle(ctx) {
    ctx.expect('rejected', 'EDGEGW_VERIFY_STALE', 'certain', ctx.device.stats.acked);
    // A resend whose first copy the gateway had already judged counts once more.
    ctx.expect('rejected', 'EDGEGW_VERIFY_STALE', 'maybe', ctx.device.stats.resent);
  },
};
