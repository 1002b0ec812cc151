/**
 * A pool of worker threads for signature checks, so verification does not stall the event
 * loop that does the I/O. Jobs issued in the same turn of the event loop are sent as one
 * batch per worker; each worker answers with one message per batch.
 */
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../common/log.js';
import { EdgegwError } from '../../common/errors.js';
import { callSafely } from '../../common/callbacks.js';
import { compiledWorkerUrl } from '../../common/worker-url.js';
import { ed25519Verifier, type Ed25519Verifier } from '../../protocol/index.js';
import { packBatch, type VerifyJob, type VerifyBatchResult, type VerifyWorkerData } from './worker.js';

export type { VerifyJob } from './worker.js';

interface Slot {
  worker: Worker;
  outstanding: number;
}

/** Called once per job: an error if the check could not run, else the verdict. */
export type VerifyCallback = (err: Error | null, valid: boolean) => void;

interface Queued {
  readonly job: VerifyJob;
  readonly done: VerifyCallback;
}

interface PendingBatch {
  /** Per job of the batch, in order: the jobs themselves are not kept once packed. */
  readonly dones: VerifyCallback[];
  readonly slot: Slot;
}

export interface VerifierPool {
  verify(job: VerifyJob): Promise<boolean>;
  /** The same with a callback: no promise per job on the ingest path. */
  check(job: VerifyJob, done: VerifyCallback): void;
  /**
   * Asked once per check: true when it is cheaper on the calling (main) thread than sent to a
   * worker, i.e. the pool is idle and checks have been arriving slowly. A lone message's round
   * trip to a worker costs most of a signature check in CPU (bench handoff), so at the rates of
   * a real site checking inline saves CPU; under load the workers take over.
   */
  preferInline(): boolean;
  /** What an inline check took, ms: the rates at which checks go inline follow it. */
  noteInlineCheck(ms: number): void;
  /** The check rates, per second, below which checks go inline and above which back to the workers. */
  inlineThresholds(): { inlineBelowPerS: number; workersAbovePerS: number };
  readonly size: number;
  /** Batches sent to workers and jobs in them, since start. */
  stats(): { batches: number; jobs: number };
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Below this many jobs per worker, a turn's jobs are not split over workers. */
const MIN_SPLIT = 8;

function workerUrl(): URL {
  return compiledWorkerUrl(new URL('./worker.js', import.meta.url), new URL('../../dist/gateway/verify/worker.js', import.meta.url));
}

/**
 * When checks are made inline: while they would take under INLINE_SHARE of the main thread
 * (the check rate times what an inline check costs), and back to the workers above
 * WORKERS_SHARE (hysteresis, so the choice does not flip on every sample); the rate is
 * sampled every RATE_SAMPLE_MS. A hand-off costs about as much as the check it moves (bench
 * handoff), so below these rates inline checks save CPU (docs/performance.md, "Inline
 * checks up to a share of the main thread"). The cost is measured as the gateway runs, inline
 * and on the workers, so the rates scale with the machine: with the 95 µs of an Ed25519
 * check here, inline below about 2,600/s and the workers above 3,700/s; at a Raspberry Pi 4's
 * ≈ 250 µs, 1,000/s and 1,400/s. At saturation the workers do every check.
 */
export const INLINE_SHARE = 0.25;
export const WORKERS_SHARE = 0.35;
/** What an inline check is taken to cost until one has been measured, ms. */
export const INITIAL_CHECK_MS = 0.1;
const RATE_SAMPLE_MS = 100;

export interface VerifierPoolOptions {
  size: number;
  maxBatch?: number;
  /** false: preferInline() always says no (default true). */
  inlineWhenIdle?: boolean;
  /** Clock for the rate sample, ms (default performance.now). */
  now?: () => number;
  /**
   * The worker module (default: verify/worker.js). Only for tests, to run a worker that
   * fails on purpose, as durable.ts's SyncCalls inject disk faults.
   */
  workerUrl?: URL;
  /** The Ed25519 library each worker uses (default: the one in use on this thread). */
  ed25519Verifier?: Ed25519Verifier;
}

export function createVerifierPool(deps: { log: Logger }, options: VerifierPoolOptions): VerifierPool {
  const log = deps.log.child({ part: 'verify-pool' });
  const maxBatch = options.maxBatch ?? 512;
  const slots: Slot[] = [];
  const inflight = new Map<number, PendingBatch>();
  let queue: Queued[] = [];
  let scheduled = false;
  let nextId = 1;
  let stopped = false;
  let sentBatches = 0;
  let sentJobs = 0;
  const now = options.now ?? (() => performance.now());
  let inline = false;
  let sampleStart = now();
  let sampleChecks = 0;
  let ratePerS = Infinity;
  /** Moving average of a check's cost, ms. */
  let checkMs = INITIAL_CHECK_MS;
  /**
   * A check's cost as measured inline or by a worker (per check of its batch). A twentieth
   * per sample, each taken as at most twice the estimate: a slow one (a GC pause, a preempted
   * thread) moves the rates by 5 % at most; a slower machine is followed within a few dozen.
   */
  function noteCheck(ms: number): void {
    if (!(ms > 0 && Number.isFinite(ms))) return;
    checkMs += (Math.min(ms, 2 * checkMs) - checkMs) * 0.05;
  }
  const thresholds = () => ({ inlineBelowPerS: (INLINE_SHARE * 1000) / checkMs, workersAbovePerS: (WORKERS_SHARE * 1000) / checkMs });

  /**
   * Sends queued jobs to idle workers only: a worker has at most one batch at a time, and
   * what arrives while every worker is busy waits and goes out as one batch when a worker
   * answers. Under load the batches grow by themselves (fewer messages and thread wake-ups
   * per job); when idle, a job goes out on the next turn.
   */
  function dispatch(): void {
    scheduled = false;
    if (queue.length === 0) return;
    const idle = slots.filter((s) => s.outstanding === 0);
    if (idle.length === 0) return;
    // A few jobs go to one worker: waking a second thread costs more than it saves. Jobs are
    // spread over as many idle workers as get MIN_SPLIT each, evenly.
    const used = Math.max(1, Math.min(idle.length, Math.floor(queue.length / MIN_SPLIT)));
    const per = Math.min(maxBatch, Math.ceil(queue.length / used));
    for (const slot of idle.slice(0, used)) {
      if (queue.length === 0) break;
      const part = queue.length <= per ? queue : queue.slice(0, per);
      queue = part === queue ? [] : queue.slice(per);
      const id = nextId++;
      inflight.set(id, { dones: part.map((q) => q.done), slot });
      slot.outstanding += part.length;
      sentBatches++;
      sentJobs += part.length;
      const batch = packBatch(id, part.map((p) => p.job));
      slot.worker.postMessage(batch, [batch.packed]);
    }
  }

  function onResult(res: VerifyBatchResult): void {
    const pending = inflight.get(res.id);
    if (!pending) return;
    inflight.delete(res.id);
    const dones = pending.dones;
    pending.slot.outstanding -= dones.length;
    noteCheck(res.ms / dones.length);
    for (let i = 0; i < dones.length; i++) callSafely(log, 'a verification callback', dones[i]!, null, res.results[i] === 1);
    // The worker is idle again: give it what queued up meanwhile, at once.
    dispatch();
  }

  function failSlot(slot: Slot, err: Error): void {
    for (const [id, p] of inflight) {
      if (p.slot !== slot) continue;
      inflight.delete(id);
      const lost = new EdgegwError('EDGEGW_INTERNAL', 'verification worker failed', { cause: err });
      for (const done of p.dones) callSafely(log, 'a verification callback', done, lost, false);
    }
  }

  function spawn(): Slot {
    // Compiled JavaScript: no loaders of the parent (a test runner's) are needed or wanted.
    const workerData: VerifyWorkerData = { ed25519Verifier: options.ed25519Verifier ?? ed25519Verifier() };
    const worker = new Worker(options.workerUrl ?? workerUrl(), { execArgv: [], workerData });
    const slot: Slot = { worker, outstanding: 0 };
    worker.on('message', onResult);
    worker.on('error', (err) => {
      log.error({ err }, 'verification worker crashed; replacing it');
      failSlot(slot, err);
    });
    worker.on('exit', (code) => {
      if (stopped) return;
      failSlot(slot, new Error(`worker exited with ${code}`));
      const i = slots.indexOf(slot);
      if (i >= 0) slots[i] = spawn();
      // Jobs queued behind the failed worker go to the new one.
      if (!scheduled) {
        scheduled = true;
        setImmediate(dispatch);
      }
    });
    return slot;
  }

  function check(job: VerifyJob, done: VerifyCallback): void {
    if (stopped || slots.length === 0) {
      done(new EdgegwError('EDGEGW_INTERNAL', 'verifier pool is not running'), false);
      return;
    }
    queue.push({ job, done });
    if (!scheduled) {
      scheduled = true;
      setImmediate(dispatch);
    }
  }

  return {
    size: options.size,
    stats: () => ({ batches: sentBatches, jobs: sentJobs }),
    preferInline() {
      if (options.inlineWhenIdle === false) return false;
      sampleChecks++;
      const t = now();
      if (t - sampleStart >= RATE_SAMPLE_MS) {
        ratePerS = (sampleChecks * 1000) / (t - sampleStart);
        sampleStart = t;
        sampleChecks = 0;
      }
      // Two divisions rather than thresholds(): no object per check on the ingest path.
      const inlineBelowPerS = (INLINE_SHARE * 1000) / checkMs;
      const workersAbovePerS = (WORKERS_SHARE * 1000) / checkMs;
      if (sampleChecks > (workersAbovePerS * RATE_SAMPLE_MS) / 1000) {
        // A burst after a quiet spell (a fleet back after an outage) goes to the workers
        // before its sample period ends, not after a sample period of inline checks.
        ratePerS = (sampleChecks * 1000) / RATE_SAMPLE_MS;
      }
      inline = inline ? ratePerS < workersAbovePerS : ratePerS < inlineBelowPerS;
      return inline && queue.length === 0 && inflight.size === 0;
    },
    noteInlineCheck: noteCheck,
    inlineThresholds: thresholds,
    check,
    verify(job) {
      return new Promise<boolean>((resolve, reject) => {
        check(job, (err, valid) => (err ? reject(err) : resolve(valid)));
      });
    },
    async start() {
      stopped = false;
      for (let i = 0; i < options.size; i++) slots.push(spawn());
      // A worker that cannot load its module fails here, at start-up, not on the first message.
      await Promise.all(slots.map((s) => new Promise<void>((resolve, reject) => {
        s.worker.once('online', resolve);
        s.worker.once('error', reject);
      })));
      log.info({ workers: options.size }, 'verification workers started');
    },
    async stop() {
      stopped = true;
      const stoppedErr = new EdgegwError('EDGEGW_INTERNAL', 'verifier pool stopped');
      for (const q of queue) callSafely(log, 'a verification callback', q.done, stoppedErr, false);
      queue = [];
      await Promise.all(slots.map((s) => s.worker.terminate()));
      slots.length = 0;
    },
  };
}
