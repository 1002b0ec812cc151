/** Numbers the profiles share with their tests. */

/** PROTOCOL.md §3: the replay window W. */
export const REPLAY_WINDOW = 64;
/** Seqs a replaying device skips so that its captured message falls below H − W. */
export const REPLAY_SKIP = REPLAY_WINDOW + 36;
/** How far a skewed clock is off: beyond the default 300 s freshness window (PROTOCOL.md §3). */
export const CLOCK_SKEW_MS = 10 * 60_000;
