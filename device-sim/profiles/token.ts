/**
 * token: a well-behaved device without TLS, on the plain listener with a fresh connect token
 * (PROTOCOL.md §4) as its password on every connect. Every message must reach the cloud.
 */
import type { Profile } from './types.js';

export const token: Profile = {
  name: 'token',
  summary: 'well-behaved device on the plain listener with a CWT connect token; every message must reach the cloud',
  honestTraffic: true,
  needsPlainListener: true,
  device: (base) => ({ ...base, transport: 'mqtt' }),
};
