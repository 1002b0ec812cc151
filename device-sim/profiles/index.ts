/**
 * The fleet's profiles, by name. A new profile is a file in this folder exporting a
 * `Profile` (types.ts) and one line in PROFILES below.
 */
import { clockSkew } from './clock-skew.js';
import { flood } from './flood.js';
import { honest } from './honest.js';
import { impersonation } from './impersonation.js';
import { malformed } from './malformed.js';
import { oversized } from './oversized.js';
import { replay } from './replay.js';
import { slowConnect } from './slow-connect.js';
import { tampered } from './tampered.js';
import { token } from './token.js';
import { topicSwap } from './topic-swap.js';
import type { Profile } from './types.js';

export type { Profile, ProfileContext, TargetFacts, Bucket, Certainty, Peer } from './types.js';
export { MALFORMED_SAMPLES, type MalformedSample } from './malformed.js';
export { tamper } from './tampered.js';
export { CLOCK_SKEW_MS, REPLAY_SKIP, REPLAY_WINDOW } from './constants.js';

export const PROFILES: ReadonlyMap<string, Profile> = new Map(
  [honest, token, replay, tampered, topicSwap, impersonation, clockSkew, flood, oversized, malformed, slowConnect].map((p) => [p.name, p]),
);

/** The profiles that attack; `--profile all` means one device of each. */
export const HOSTILE_PROFILES: readonly string[] = [...PROFILES.values()].filter((p) => p.run !== undefined || !p.honestTraffic).map((p) => p.name);
