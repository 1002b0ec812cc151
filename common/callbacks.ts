/**
 * Loops that answer many callers at once (a verify worker's batch, a group commit) call each
 * caller's callback through this: a callback that throws is a bug, and it must not cut short
 * the loop and leave the callers after it waiting for an answer that never comes.
 */
import type { Logger } from './log.js';

/** Calls `cb(a, b)`; a throw is logged at error level and goes no further. */
export function callSafely<A, B>(log: Logger, what: string, cb: (a: A, b: B) => void, a: A, b: B): void {
  try {
    cb(a, b);
  } catch (err) {
    log.error({ err }, `${what} threw; the other callers are still answered`);
  }
}
