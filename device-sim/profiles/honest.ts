/**
 * honest: a well-behaved device on the mqtts listener. Telemetry on the fleet's schedule;
 * every message must be acknowledged and reach the cloud exactly once.
 */
import type { Profile } from './types.js';

export const honest: Profile = {
  name: 'honest',
  summary: 'well-behaved device over mqtts with its client certificate; every message must reach the cloud',
  honestTraffic: true,
};
