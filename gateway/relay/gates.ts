/**
 * What holds every lane of the relay at once, as opposed to one batch's backoff:
 * - Retry-After (RFC 9110 §10.2.3): the cloud asked the uplink, not one batch, to wait;
 * - the halted state after a certificate failure: the channel is not trusted, nothing is sent
 *   until `resume()` or the next look after `haltedProbeMs`. One critical event per halt.
 */
import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/log.js';
import type { ErrorCode } from '../../common/errors.js';
import type { Alerts } from '../alerts/index.js';
import type { SendOutcome } from './outcome.js';
import { sleep } from './pace.js';

export interface HaltState {
  code: ErrorCode;
  detail: string;
  sinceMs: number;
}

export interface Gates {
  /** Resolves when the uplink may send; rejects when `signal` aborts. */
  pass(signal: AbortSignal): Promise<void>;
  retryAfter(ms: number): void;
  /** Enters the halted state (once: later calls while halted do nothing). */
  halt(outcome: Extract<SendOutcome, { kind: 'halt' }>): void;
  resume(): void;
  halted(): HaltState | undefined;
  /** Clears everything (relay stop). */
  reset(): void;
}

export function createGates(deps: { clock: Clock; log: Logger; alerts: Alerts }, options: { haltedProbeMs: number }): Gates {
  const { clock, log, alerts } = deps;
  let notBeforeMs = 0;
  let halted: HaltState | undefined;
  let probeTimer: NodeJS.Timeout | undefined;
  let waiters: (() => void)[] = [];

  function resume(): void {
    if (probeTimer) clearTimeout(probeTimer);
    probeTimer = undefined;
    if (halted === undefined) return;
    log.info({ code: halted.code }, 'relay resumes after a halt');
    halted = undefined;
    const w = waiters;
    waiters = [];
    for (const wake of w) wake();
  }

  return {
    async pass(signal) {
      while (halted !== undefined) {
        await new Promise<void>((resolve, reject) => {
          const onAbort = () => reject(signal.reason);
          if (signal.aborted) return onAbort();
          signal.addEventListener('abort', onAbort, { once: true });
          waiters.push(() => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          });
        });
      }
      const wait = notBeforeMs - clock.now();
      if (wait > 0) await sleep(wait, signal);
    },
    retryAfter(ms) {
      notBeforeMs = Math.max(notBeforeMs, clock.now() + ms);
    },
    halt(outcome) {
      if (halted !== undefined) return;
      halted = { code: outcome.code, detail: outcome.detail, sinceMs: clock.now() };
      alerts.raise({ kind: 'relay_halted', code: outcome.code, severity: 'critical', detail: outcome.detail });
      log.error({ code: outcome.code }, `relay halted: ${outcome.detail}; records stay in the outbox`);
      if (options.haltedProbeMs > 0) {
        probeTimer = setTimeout(resume, options.haltedProbeMs);
        probeTimer.unref();
      }
    },
    resume,
    halted: () => halted,
    reset() {
      if (probeTimer) clearTimeout(probeTimer);
      probeTimer = undefined;
      halted = undefined;
      waiters = [];
      notBeforeMs = 0;
    },
  };
}
