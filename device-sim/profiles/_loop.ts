/**
 * Shared pacing for attack profiles: one attack every `intervalMs` (spread over the run so
 * attacks interleave with honest traffic) until the run is aborted.
 */
import type { ErrorCode } from '../../common/errors.js';
import type { RawOutcome } from '../firmware.js';
import type { Bucket, ProfileContext } from './types.js';

/** About eight attacks per run, one to five seconds apart. */
export function attackInterval(ctx: ProfileContext): number {
  return Math.min(5_000, Math.max(1_000, Math.floor(ctx.durationMs / 8)));
}

/** Calls `attack(i)` every `intervalMs` (with ±20 % jitter) until aborted; waits for the device to be online first. */
export async function every(ctx: ProfileContext, intervalMs: number, attack: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; !ctx.aborted; i++) {
    if (ctx.device.state !== 'online' && !(await ctx.device.waitOnline(intervalMs))) continue;
    if (ctx.aborted) return;
    await attack(i);
    if (!(await ctx.sleep(intervalMs * (0.8 + 0.4 * ctx.random())))) return;
  }
}

/** A random byte string; message bodies that are not all alike. */
export function randomBody(ctx: ProfileContext, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(ctx.random() * 256);
  return out;
}

/** Records what a raw publish's outcome says about the gateway's count. */
export function expectFrom(ctx: ProfileContext, outcome: RawOutcome, bucket: Bucket, code: ErrorCode): void {
  if (outcome === 'acked') ctx.expect(bucket, code, 'certain');
  else if (outcome === 'closed' || outcome === 'sent') ctx.expect(bucket, code, 'maybe');
}
