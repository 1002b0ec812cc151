/**
 * The ingest path for one PUBLISH: checks (gateway/verify), the signature on the worker pool
 * or inline, the replay window, then the group commit (gateway/store). It answers the broker
 * with what to do with the packet:
 *   accepted / duplicate  -> acknowledge (the message is durably stored, or already was)
 *   rejected              -> acknowledge and drop: the message can never become valid; the
 *                            reason is counted and, where it signals an attack, alerted
 *   refused               -> do not acknowledge: a transient condition (outbox full, disk
 *                            full); the broker closes the connection and the device retries
 *
 * Messages of one device are finished in arrival order, so the outbox keeps per-device
 * order, while signatures of many devices are checked in parallel.
 */
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import { isEdgegwError, type ErrorCode } from '../common/errors.js';
import { callSafely } from '../common/callbacks.js';
import type { Store } from './store/index.js';
import type { Alerts, Severity } from './alerts/index.js';
import type { VerifierPool } from './verify/pool.js';
import { verifySign1 } from '../protocol/index.js';
import { preVerify, postVerify, type IncomingPublish, type PreVerified, type RegistryView, type VerifyPolicy, type Verified } from './verify/checks.js';
import { acceptSeq, REPLAY_WINDOW, type ReplayState } from './verify/replay.js';
import { NO_LATENCY, type LatencyRecorder } from './latency.js';

export type IngestOutcome =
  | { status: 'accepted'; verified: Verified }
  | { status: 'duplicate' }
  | { status: 'rejected'; reason: ErrorCode }
  | { status: 'refused'; reason: ErrorCode };

/** Reasons that point at an attacker or a broken device rather than a hiccup. */
const ALERT_SEVERITY: Partial<Record<ErrorCode, Severity>> = {
  EDGEGW_VERIFY_REPLAY: 'critical',
  EDGEGW_COSE_BAD_SIGNATURE: 'critical',
  EDGEGW_VERIFY_KID_NOT_BOUND: 'critical',
  EDGEGW_VERIFY_IDENTITY_MISMATCH: 'critical',
  EDGEGW_VERIFY_UNKNOWN_KID: 'warning',
  EDGEGW_VERIFY_KEY_INACTIVE: 'warning',
  EDGEGW_VERIFY_DEVICE_REVOKED: 'warning',
  EDGEGW_VERIFY_DEVICE_QUARANTINED: 'warning',
  EDGEGW_VERIFY_STALE: 'info',
};

export type IngestCallback = (outcome: IngestOutcome) => void;

export interface Ingest {
  /**
   * Runs the checks and, for an accepted message, the commit; calls `done` once with the
   * outcome, possibly before returning (a message refused by the cheap checks).
   */
  handle(msg: IncomingPublish, done: IngestCallback): void;
  /** Forget optimistic replay state (after the registry or store changed under us). */
  resetDevice(deviceId: string): void;
}

const DUPLICATE: IngestOutcome = Object.freeze({ status: 'duplicate' });
const INTERNAL: IngestOutcome = Object.freeze({ status: 'refused', reason: 'EDGEGW_INTERNAL' });

/** A message whose signature check runs (or waits behind its device's earlier messages). */
interface Waiting {
  readonly msg: IncomingPublish;
  readonly pre: PreVerified;
  /** performance.now() when handle() began. */
  readonly started: number;
  readonly done: IngestCallback;
  verdict: Verdict;
}

const enum Verdict {
  Pending,
  Valid,
  Invalid,
  /** The check could not run (a worker died): refused, the device sends it again. */
  Failed,
}

export function createIngest(
  deps: { store: Store; alerts: Alerts; clock: Clock; log: Logger; registry: RegistryView; pool?: VerifierPool; latency?: LatencyRecorder },
  policy: VerifyPolicy,
): Ingest {
  const { store, alerts, clock, registry, pool } = deps;
  const latency = deps.latency ?? NO_LATENCY;
  const log = deps.log.child({ part: 'ingest' });
  /** Optimistic windows: committed seqs plus those waiting for their commit. */
  const windows = new Map<string, ReplayState>();
  /**
   * Per device, its messages whose signature check has not been finished in order yet. A
   * device is here only while it has such messages; they are finished strictly first in,
   * first out, whatever order the workers answer in.
   */
  const waiting = new Map<string, Waiting[]>();
  /** Set while commits fail (disk full, I/O error): said once, and again on recovery. */
  let storeFailure: ErrorCode | undefined;

  function windowOf(deviceId: string): ReplayState {
    let w = windows.get(deviceId);
    if (w === undefined) {
      w = store.replayState(deviceId);
      windows.set(deviceId, w);
    }
    return w;
  }

  /** A commit that failed: its seq was not stored, so it must count as unseen again. */
  function unsee(deviceId: string, seq: number): void {
    const w = windows.get(deviceId);
    if (w === undefined) return;
    const age = w.high - seq;
    if (age >= 0 && age < REPLAY_WINDOW) windows.set(deviceId, { high: w.high, bitmap: w.bitmap & ~(1n << BigInt(age)) });
  }

  function reject(msg: IncomingPublish, reason: ErrorCode, detail?: string): IngestOutcome {
    store.counters.add(`rejected.${reason}`);
    store.ingest.touch();
    const severity = ALERT_SEVERITY[reason];
    if (severity !== undefined) {
      alerts.raise({
        kind: 'message_rejected',
        code: reason,
        severity,
        deviceId: msg.identity,
        ...(msg.address === undefined ? {} : { address: msg.address }),
        ...(detail === undefined ? {} : { detail }),
      });
    }
    log.debug({ deviceId: msg.identity, reason }, 'message rejected');
    return { status: 'rejected', reason };
  }

  /**
   * Everything after the signature. The synchronous part (payload, window, outbox room,
   * enqueue) runs in arrival order per device; only the commit is waited for, so one
   * device's messages share group commits instead of waiting for each other's. Returns the
   * outcome, or undefined when the message went to the commit, which calls `done` later.
   */
  function finish(msg: IncomingPublish, pre: PreVerified, signatureValid: boolean, done: IngestCallback): IngestOutcome | undefined {
    if (!signatureValid) return reject(msg, 'EDGEGW_COSE_BAD_SIGNATURE');
    const deviceId = pre.key.deviceId;
    const now = clock.now();
    const post = postVerify(pre, windowOf(deviceId), policy, now);
    if (!post.ok) return reject(msg, post.reason, post.detail);
    if (post.verdict === 'duplicate') {
      // PROTOCOL.md §3: a QoS 1 redelivery, acknowledged, not stored again, not alerted.
      store.counters.add('duplicates');
      store.ingest.touch();
      return DUPLICATE;
    }
    if (!store.ingest.hasRoom(msg.payload.length)) {
      store.counters.add('refused.EDGEGW_STORE_OUTBOX_FULL');
      return { status: 'refused', reason: 'EDGEGW_STORE_OUTBOX_FULL' };
    }
    const verified = post.value;
    const { seq } = verified;
    store.ingest.enqueue(
      {
        deviceId,
        kid: pre.key.key.kid,
        seq,
        ts: verified.ts,
        rxMs: msg.rxMs,
        topic: msg.topic,
        // Copied: the broker's packet buffer may be reused after the handler returns.
        cose: Uint8Array.prototype.slice.call(msg.payload),
      },
      (err) => {
        if (err === undefined) {
          if (storeFailure !== undefined) {
            alerts.raise({ kind: 'store_recovered', code: storeFailure, severity: 'info', detail: 'commits succeed again' });
            log.warn({ code: storeFailure }, 'store recovered; acknowledging again');
            storeFailure = undefined;
          }
          return done({ status: 'accepted', verified });
        }
        unsee(deviceId, seq);
        const reason: ErrorCode = isEdgegwError(err) ? err.code : 'EDGEGW_STORE_IO';
        store.counters.add(`refused.${reason}`);
        if (storeFailure === undefined) {
          storeFailure = reason;
          // A person must act (free disk space): error level, critical alert, said once.
          log.error({ code: reason, err }, 'cannot commit accepted messages; not acknowledging until the store recovers');
          alerts.raise({ kind: 'store_failed', code: reason, severity: 'critical', detail: 'publishes are refused until commits succeed' });
        }
        done({ status: 'refused', reason });
      },
    );
    // Marked as seen only once queued: had building the row thrown, a resend must not be
    // taken for a duplicate (acknowledged, never stored). The commit answers later, never here.
    windows.set(deviceId, acceptSeq(windowOf(deviceId), seq));
    return undefined;
  }

  /** Finishes the device's messages whose verdict is in, in arrival order. */
  function drain(deviceId: string, line: Waiting[]): void {
    while (line.length > 0 && line[0]!.verdict !== Verdict.Pending) {
      const w = line.shift()!;
      if (w.verdict === Verdict.Failed) {
        store.counters.add('refused.EDGEGW_INTERNAL');
        store.ingest.touch();
        callSafely(log, 'an ingest callback', w.done, INTERNAL, undefined);
        continue;
      }
      latency.record('check', performance.now() - w.started);
      let outcome: IngestOutcome | undefined;
      try {
        outcome = finish(w.msg, w.pre, w.verdict === Verdict.Valid, w.done);
      } catch (err) {
        // A bug must not strand the device's later messages (nor other devices' in the
        // worker's batch): this one is refused, so it is sent again, and the line goes on.
        log.error({ err }, 'finishing a checked message failed');
        outcome = INTERNAL;
      }
      if (outcome !== undefined) callSafely(log, 'an ingest callback', w.done, outcome, undefined);
    }
    if (line.length === 0 && waiting.get(deviceId) === line) waiting.delete(deviceId);
  }

  /** The signature check on this thread; with a pool, its cost sets when checks stay here. */
  function checkHere(p: PreVerified): boolean {
    if (pool === undefined) return verifySign1(p.sign1, p.key.key, p.aad).ok;
    const t0 = performance.now();
    const valid = verifySign1(p.sign1, p.key.key, p.aad).ok;
    pool.noteInlineCheck(performance.now() - t0);
    return valid;
  }

  return {
    handle(msg, done) {
      const started = performance.now();
      const now = clock.now();
      const pre = preVerify(msg, registry, policy, now);
      if (!pre.ok) return done(reject(msg, pre.reason, pre.detail));
      const p = pre.value;
      const deviceId = p.key.deviceId;
      const line = waiting.get(deviceId);
      const toWorker = pool !== undefined && !pool.preferInline();
      if (line === undefined && !toWorker) {
        const valid = checkHere(p);
        latency.record('check', performance.now() - started);
        const outcome = finish(msg, p, valid, done);
        if (outcome !== undefined) done(outcome);
        return;
      }
      const w: Waiting = { msg, pre: p, started, done, verdict: Verdict.Pending };
      const mine = line ?? [];
      mine.push(w);
      if (line === undefined) waiting.set(deviceId, mine);
      if (!toWorker) {
        // Checked here, but finished only after the device's earlier messages.
        w.verdict = checkHere(p) ? Verdict.Valid : Verdict.Invalid;
        return drain(deviceId, mine);
      }
      const { sign1 } = p;
      const job = { alg: p.key.key.alg, kidHex: p.key.kidHex, raw: p.key.key.raw, signature: sign1.signature, protectedBytes: sign1.protectedBytes, externalAad: p.aad, payload: sign1.payload };
      pool.check(job, (err, valid) => {
        if (err !== null) {
          log.error({ err }, 'signature check failed to run');
          w.verdict = Verdict.Failed;
        } else {
          w.verdict = valid ? Verdict.Valid : Verdict.Invalid;
        }
        drain(deviceId, mine);
      });
    },
    resetDevice(deviceId) {
      windows.delete(deviceId);
    },
  };
}
