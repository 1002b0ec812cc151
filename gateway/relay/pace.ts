/**
 * Pacing of a backlog drain (issue 4 §1): after an outage the outbox may hold a million
 * records, and the relay shares one event loop and one SQLite connection with live ingest,
 * which must keep ≥ 80% of its normal rate while the backlog drains.
 *
 * While there is a backlog *and* live ingest, the drain rate follows AIMD (additive increase,
 * multiplicative decrease, as TCP) on the quantity the requirement names: the ingest rate.
 * Every `probeEveryWindows` windows the drain holds for one window, and the ingest rate of
 * that window is the baseline (a moving average); in the other windows, when ingest falls
 * below `ingestShare` of the baseline, or the event loop is busier than `targetUtilization`,
 * the rate is cut by `decreaseFactor`, otherwise it grows by `stepRecordsPerSec`. It never
 * goes below `minRecordsPerSec`, so a backlog always shrinks. A relay that starts on a backlog
 * starts paced at that floor (slow start). With no backlog, or nobody ingesting, it is unpaced.
 *
 * The rate is enforced by a token bucket that may go into debt by one batch, so a batch
 * larger than a window's allowance still leaves, and the average holds.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { RelayOptions } from './options.js';

export interface Pacer {
  start(): void;
  stop(): void;
  /** Resolves when `n` more records may leave; rejects when `signal` aborts. */
  take(n: number, signal: AbortSignal): Promise<void>;
  /** The current drain rate in records/s, or null when unpaced. */
  rate(): number | null;
}

export interface PacerInputs {
  /** Records waiting in the outbox. */
  backlog(): number;
  /** A counter that grows with every message ingested. */
  ingested(): number;
}

export function createPacer(inputs: PacerInputs, options: RelayOptions['pace']): Pacer {
  let rate: number | null = null;
  let tokens = 0;
  let lastRefill = performance.now();
  let lastElu: EventLoopUtilization = performance.eventLoopUtilization();
  let lastIngested = 0;
  let lastTick = performance.now();
  let windows = 0;
  let holding = false;
  let baseline: number | undefined;
  let timer: NodeJS.Timeout | undefined;

  function refill(): void {
    const now = performance.now();
    if (rate !== null && !holding) {
      const cap = Math.max(1, (rate * options.windowMs) / 1000);
      tokens = Math.min(cap, tokens + ((now - lastRefill) * rate) / 1000);
    }
    lastRefill = now;
  }

  function enterPaced(): void {
    rate = options.minRecordsPerSec;
    tokens = 0;
    windows = 0;
    // The first window is held: it measures ingest before the drain adds anything.
    holding = true;
  }

  function tick(): void {
    const now = performance.now();
    const elu = performance.eventLoopUtilization(lastElu).utilization;
    lastElu = performance.eventLoopUtilization();
    const ingested = inputs.ingested();
    const ingestRate = ((ingested - lastIngested) * 1000) / Math.max(1, now - lastTick);
    lastIngested = ingested;
    lastTick = now;
    refill();
    if (!(ingestRate > 0 && inputs.backlog() > options.backlogRows)) {
      rate = null;
      holding = false;
      baseline = undefined;
      return;
    }
    if (rate === null) {
      enterPaced();
      return;
    }
    if (holding) {
      baseline = baseline === undefined ? ingestRate : (baseline + ingestRate) / 2;
      holding = false;
      return;
    }
    const starved = baseline !== undefined && ingestRate < baseline * options.ingestShare;
    const floor = Math.max(options.minRecordsPerSec, ingestRate * options.minOverIngest);
    rate = starved || elu > options.targetUtilization ? Math.max(floor, rate * options.decreaseFactor) : Math.max(floor, rate + options.stepRecordsPerSec);
    if (++windows % options.probeEveryWindows === 0) holding = true;
  }

  return {
    start() {
      lastElu = performance.eventLoopUtilization();
      lastIngested = inputs.ingested();
      lastTick = performance.now();
      baseline = undefined;
      if (inputs.backlog() > options.backlogRows) enterPaced();
      else rate = null;
      timer = setInterval(tick, options.windowMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      rate = null;
      holding = false;
    },
    async take(n, signal) {
      for (;;) {
        if (signal.aborted) throw signal.reason;
        refill();
        if (rate === null) return;
        if (!holding && tokens >= 0) {
          tokens -= n;
          return;
        }
        await sleep(holding ? options.windowMs / 4 : Math.min(options.windowMs, Math.ceil((-tokens * 1000) / rate)), signal);
      }
    },
    rate() {
      return rate;
    },
  };
}

/** A timer that an AbortSignal cancels. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
