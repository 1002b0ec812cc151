/**
 * The relay: drains the outbox to the cloud (PROTOCOL.md §8, issue 4 §1).
 *
 * One message's path: the outbox (arrival order) -> a lane chosen by its device -> a batch
 * (bounded by records, bytes and age) -> the transport, through the circuit breaker ->
 * `ack` (2xx: deleted), `deadLetter` (other 4xx) or another attempt after a backoff.
 *
 * - Per-device order: a device always maps to the same lane, and a lane has one batch in
 *   flight, retried in place until it is accepted or dead-lettered. Lanes are the cap on
 *   batches in flight.
 * - No loss: a record leaves the outbox only in `ack` (after a 2xx / PUBACK) or `deadLetter`
 *   (into the dead-letter table), both single SQLite transactions. Anything else, including a
 *   crash, leaves it there to be sent again; the batch id is stable so the cloud deduplicates.
 * - The outbox absorbs a slow or dead cloud: the relay holds at most a few batches in memory
 *   per lane and does nothing on the ingest path.
 */
import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, fullJitterGenerator, handleType, noJitterGenerator, type IBackoff, type IBackoffFactory } from 'cockatiel';
import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/log.js';
import type { ErrorCode } from '../../common/errors.js';
import type { Store, OutboxRecord } from '../store/index.js';
import type { Alerts } from '../alerts/index.js';
import { checkUpstream, loadTlsMaterial, parseRelayOptions, type RelayOptions, type RelayOptionsInput } from './options.js';
import { makeBatch, type Batch } from './wire.js';
import type { SendOutcome, Transport } from './outcome.js';
import { createHttpTransport } from './http.js';
import { createMqttTransport } from './mqtt.js';
import { createPacer, sleep } from './pace.js';
import { createGates, type HaltState } from './gates.js';

export interface RelayDeps {
  store: Store;
  log: Logger;
  clock: Clock;
  alerts: Alerts;
}

export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

export interface RelayStats {
  state: 'stopped' | 'running' | 'halted';
  upstream: string;
  breaker: BreakerState;
  /** Batches being sent or waiting for a retry. */
  inFlight: number;
  /** Records read from the outbox and waiting in lanes. */
  queued: number;
  acceptedBatches: number;
  acceptedRecords: number;
  deadLetteredBatches: number;
  deadLetteredRecords: number;
  retries: number;
  lastFailure?: { code: ErrorCode; detail: string; atMs: number };
  halted?: HaltState;
  /** Drain pacing in records/s, null when unpaced. */
  paceRecordsPerSec: number | null;
}

export interface Relay {
  start(): Promise<void>;
  /** Aborts what is in flight (those records stay in the outbox) and closes connections. */
  stop(): Promise<void>;
  stats(): RelayStats;
  /** Leaves the halted state (after a certificate problem was fixed) and tries again. */
  resume(): void;
}

interface Lane {
  readonly queue: OutboxRecord[];
  queuedBytes: number;
  busy: boolean;
  /** After an unexpected local failure (e.g. the disk), the lane waits until then. */
  notBeforeMs: number;
}

/** A failure that counts against the circuit breaker, thrown inside it and unwrapped outside. */
class TransientFailure extends Error {
  constructor(readonly outcome: SendOutcome) {
    super('transient relay failure');
  }
}

// Failure codes that are worth one alert per failure streak (the breaker covers plain outages).
const ALERT_ONCE: ReadonlySet<ErrorCode> = new Set(['EDGEGW_RELAY_ORIGIN_REFUSED', 'EDGEGW_RELAY_RESPONSE_TOO_LARGE']);

const BREAKER_STATES: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

/**
 * The retry schedule: exponential backoff with full jitter (AWS Architecture Blog, "Exponential
 * Backoff And Jitter", 2015): attempt n waits a delay drawn from [0, min(max, initial * 2^n)).
 */
export function retryBackoff(retry: RelayOptions['retry']): IBackoffFactory<unknown> {
  return new ExponentialBackoff({ initialDelay: retry.initialDelayMs, maxDelay: retry.maxDelayMs, generator: fullJitterGenerator });
}

/** FNV-1a: a device's lane, stable for the process lifetime. */
function laneOf(deviceId: string, lanes: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < deviceId.length; i++) {
    h ^= deviceId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % lanes;
}

export function createRelay(deps: RelayDeps, input: RelayOptionsInput): Relay {
  const options: RelayOptions = parseRelayOptions(input);
  const upstream = checkUpstream(options);
  const { store, clock, alerts } = deps;
  const log = deps.log.child({ part: 'relay', upstream: upstream.origin });

  const lanes: Lane[] = Array.from({ length: options.maxInFlight }, () => ({ queue: [], queuedBytes: 0, busy: false, notBeforeMs: 0 }));
  const laneRecordCap = options.batchMaxRecords * 2;
  const laneByteCap = options.batchMaxBytes * 2;

  const counts = { acceptedBatches: 0, acceptedRecords: 0, deadLetteredBatches: 0, deadLetteredRecords: 0, retries: 0 };
  let lastFailure: RelayStats['lastFailure'];
  const streak = new Set<ErrorCode>();

  let running = false;
  let abort = new AbortController();
  let transport: Transport | undefined;
  let cursor = 0;
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  const inflight = new Set<Promise<void>>();

  const gates = createGates({ clock, log, alerts }, options);

  const pacer = createPacer(
    { backlog: () => store.counters.get('outbox_rows'), ingested: () => store.counters.get('accepted') },
    options.pace,
  );

  // cockatiel: consecutive transient failures open the circuit; after halfOpenAfter (doubling
  // up to the max) one probe goes through while the other lanes wait for its result.
  const breaker = circuitBreaker(handleType(TransientFailure), {
    halfOpenAfter: new ExponentialBackoff({ initialDelay: options.breaker.halfOpenAfterMs, maxDelay: options.breaker.maxHalfOpenAfterMs, generator: noJitterGenerator }),
    breaker: new ConsecutiveBreaker(options.breaker.threshold),
  });
  breaker.onBreak((reason) => {
    const cause = 'error' in reason && reason.error instanceof TransientFailure ? reason.error.outcome : undefined;
    const detail = cause?.kind === 'retry' ? `${cause.code}: ${cause.detail}` : 'consecutive transient failures';
    alerts.raise({ kind: 'relay_circuit_open', code: 'EDGEGW_RELAY_CIRCUIT_OPEN', severity: 'warning', detail });
  });
  breaker.onReset(() => {
    alerts.raise({ kind: 'relay_circuit_closed', code: 'EDGEGW_RELAY_CIRCUIT_OPEN', severity: 'info', detail: 'the cloud answers again' });
  });

  const backoffFactory = retryBackoff(options.retry);

  function laneFor(deviceId: string): Lane {
    return lanes[laneOf(deviceId, lanes.length)]!;
  }

  /**
   * Reads one page of the outbox past the cursor into the lanes, unless a lane is full.
   * Returns whether there may be more to read: one page per turn of the event loop keeps
   * each synchronous step short while ingest shares the loop.
   */
  function fill(): boolean {
    if (lanes.some((l) => l.queue.length >= laneRecordCap || l.queuedBytes >= laneByteCap)) return false;
    const rows = store.outbox.read(cursor, options.batchMaxRecords, options.batchMaxBytes);
    for (const r of rows) {
      const lane = laneFor(r.deviceId);
      lane.queue.push(r);
      lane.queuedBytes += r.cose.length;
      cursor = r.id;
    }
    return rows.length === options.batchMaxRecords;
  }

  /** Records per batch: smaller while a drain is paced, so each send and ack is a short step. */
  function batchRecords(): number {
    return pacer.rate() === null ? options.batchMaxRecords : Math.min(options.batchMaxRecords, options.pace.batchMaxRecords);
  }

  /** When the lane's next batch is due: now if it is full, else when its oldest record is old enough. */
  function dueAt(lane: Lane): number {
    if (lane.queue.length >= batchRecords() || lane.queuedBytes >= options.batchMaxBytes) return lane.notBeforeMs;
    return Math.max(lane.notBeforeMs, lane.queue[0]!.rxMs + options.batchMaxAgeMs);
  }

  function takeBatch(lane: Lane): OutboxRecord[] {
    const max = batchRecords();
    let n = 0;
    let bytes = 0;
    while (n < lane.queue.length && n < max) {
      const b = lane.queue[n]!.cose.length;
      if (n > 0 && bytes + b > options.batchMaxBytes) break;
      bytes += b;
      n++;
    }
    lane.queuedBytes -= bytes;
    return lane.queue.splice(0, n);
  }

  function dispatch(): void {
    immediate = undefined;
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (!running) return;
    let more = false;
    try {
      more = fill();
    } catch (err) {
      log.error({ err: errSummary(err) }, 'reading the outbox failed; trying again');
    }
    const now = clock.now();
    let next = now + options.pollIntervalMs;
    for (const lane of lanes) {
      if (lane.busy || lane.queue.length === 0) continue;
      const due = dueAt(lane);
      if (due > now) {
        next = Math.min(next, due);
        continue;
      }
      lane.busy = true;
      const p = deliver(lane, takeBatch(lane)).finally(() => {
        inflight.delete(p);
        lane.busy = false;
        soon();
      });
      inflight.add(p);
    }
    timer = setTimeout(dispatch, Math.max(1, next - now));
    if (more) soon();
  }

  function soon(): void {
    if (running && immediate === undefined) immediate = setImmediate(dispatch);
  }

  async function attempt(batch: Batch, signal: AbortSignal): Promise<SendOutcome> {
    try {
      return await breaker.execute(async () => {
        const outcome = await transport!.send(batch, signal);
        if (outcome.kind === 'retry' && outcome.countsForBreaker) throw new TransientFailure(outcome);
        return outcome;
      }, signal);
    } catch (err) {
      if (err instanceof TransientFailure) return err.outcome;
      if (err instanceof BrokenCircuitError) {
        return { kind: 'retry', code: 'EDGEGW_RELAY_CIRCUIT_OPEN', countsForBreaker: false, detail: 'circuit open, waiting for the half-open probe' };
      }
      throw err;
    }
  }

  async function deliver(lane: Lane, records: OutboxRecord[]): Promise<void> {
    const signal = abort.signal;
    const batch = makeBatch(options.gatewayId, records);
    let backoff: IBackoff<unknown> | undefined;
    try {
      for (;;) {
        await gates.pass(signal);
        await pacer.take(records.length, signal);
        const outcome = await attempt(batch, signal);
        if (signal.aborted) return;
        switch (outcome.kind) {
          case 'accepted':
            // A checkpoint's catch-up may hold the store's writes for a moment (durable.ts).
            await store.outbox.writable();
            accepted(batch);
            return;
          case 'reject':
            await store.outbox.writable();
            rejected(batch, outcome);
            return;
          case 'halt':
            lastFailure = { code: outcome.code, detail: outcome.detail, atMs: clock.now() };
            gates.halt(outcome);
            continue;
          case 'retry': {
            noteFailure(outcome);
            backoff = backoff === undefined ? backoffFactory.next(undefined) : backoff.next(undefined);
            const delay = Math.max(backoff.duration, outcome.retryAfterMs ?? 0);
            // Retry-After applies to the whole uplink, not just the batch that got it.
            if (outcome.retryAfterMs !== undefined) gates.retryAfter(outcome.retryAfterMs);
            counts.retries++;
            log.debug({ code: outcome.code, status: outcome.status, delayMs: delay, batch: batch.id }, 'batch will be retried');
            await sleep(delay, signal);
          }
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      // A local failure (the store, a bug): the records go back to the head of their lane, in
      // order, so nothing is skipped; the lane pauses before trying again.
      log.error({ err: errSummary(err), batch: batch.id }, 'relay could not finish a batch; it stays queued');
      lane.queue.unshift(...records);
      lane.queuedBytes += records.reduce((n, r) => n + r.cose.length, 0);
      lane.notBeforeMs = clock.now() + options.retry.maxDelayMs;
    }
  }

  function accepted(batch: Batch): void {
    // Not fsynced: a lost acknowledgement only means a duplicate the cloud drops.
    store.outbox.ack(batch.records.map((r) => r.id));
    counts.acceptedBatches++;
    counts.acceptedRecords += batch.records.length;
    streak.clear();
    log.debug({ batch: batch.id, records: batch.records.length }, 'batch accepted');
  }

  function rejected(batch: Batch, outcome: Extract<SendOutcome, { kind: 'reject' }>): void {
    const n = store.outbox.deadLetter(batch.records, { batchId: batch.id, status: outcome.status, reason: `${outcome.code}: ${outcome.detail}`, nowMs: clock.now() });
    counts.deadLetteredBatches++;
    counts.deadLetteredRecords += n;
    const devices = new Set(batch.records.map((r) => r.deviceId));
    alerts.raise({
      kind: 'relay_dead_letter',
      code: outcome.code,
      severity: 'critical',
      ...(devices.size === 1 ? { deviceId: batch.records[0]!.deviceId } : {}),
      detail: `batch ${batch.id}: ${n} records from ${devices.size} devices dead-lettered (${outcome.detail})`,
    });
    log.error({ code: outcome.code, status: outcome.status, batch: batch.id, records: n }, 'cloud refused a batch; it was moved to dead letters');
  }

  function noteFailure(outcome: Extract<SendOutcome, { kind: 'retry' }>): void {
    lastFailure = { code: outcome.code, detail: outcome.detail, atMs: clock.now() };
    if (ALERT_ONCE.has(outcome.code) && !streak.has(outcome.code)) {
      streak.add(outcome.code);
      alerts.raise({ kind: 'relay_refused_response', code: outcome.code, severity: 'warning', detail: outcome.detail });
    }
  }

  return {
    async start() {
      if (running) return;
      const tls = loadTlsMaterial(options);
      transport = upstream.scheme === 'https' ? createHttpTransport({ clock }, options, upstream, tls) : createMqttTransport(options, upstream, tls);
      await transport.start();
      abort = new AbortController();
      cursor = 0;
      running = true;
      pacer.start();
      log.info({ lanes: lanes.length, scheme: upstream.scheme }, 'relay started');
      dispatch();
    },
    async stop() {
      if (!running) return;
      running = false;
      if (timer) clearTimeout(timer);
      if (immediate) clearImmediate(immediate);
      timer = undefined;
      immediate = undefined;
      pacer.stop();
      abort.abort();
      await Promise.allSettled([...inflight]);
      gates.reset();
      for (const lane of lanes) {
        lane.queue.length = 0;
        lane.queuedBytes = 0;
        lane.notBeforeMs = 0;
      }
      await transport?.close().catch((err: unknown) => log.warn({ err: errSummary(err) }, 'closing the uplink failed'));
      transport = undefined;
      log.info(counts, 'relay stopped');
    },
    stats() {
      return {
        state: !running ? 'stopped' : gates.halted() !== undefined ? 'halted' : 'running',
        upstream: upstream.origin,
        breaker: BREAKER_STATES[breaker.state],
        inFlight: inflight.size,
        queued: lanes.reduce((n, l) => n + l.queue.length, 0),
        ...counts,
        ...(lastFailure === undefined ? {} : { lastFailure }),
        ...(gates.halted() === undefined ? {} : { halted: gates.halted()! }),
        paceRecordsPerSec: pacer.rate(),
      };
    },
    resume() {
      gates.resume();
      soon();
    },
  };
}

/** What is logged of an error: its code and message, never request bodies or key material. */
function errSummary(err: unknown): { code?: string; message: string } {
  const code = (err as { code?: unknown } | undefined)?.code;
  return { ...(typeof code === 'string' ? { code } : {}), message: err instanceof Error ? err.message : String(err) };
}
