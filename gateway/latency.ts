/**
 * Where an acknowledgement's time goes, for `edgegw status`: one histogram per stage of the
 * ingest path, over windows of a fixed length. A window that has ended is summarised
 * (count, p50, p90, p99, max in ms) and persisted by the gateway; the next one starts empty.
 *
 *   ack    policy.publish, PUBLISH handed over -> decision (what the gateway adds to the
 *          device's PUBACK wait; for an accepted message, check + store and a little more)
 *   check  the §3 checks up to the signature's verdict, including the wait for a verify
 *          worker (queue, hand-off) and for the same device's earlier messages
 *   store  an accepted message queued for the group commit -> durable (commit and flush)
 *   fsync  one fdatasync of the write-ahead log (a flush covers many messages)
 *
 * Node's built-in HdrHistogram (perf_hooks.createHistogram) records in microseconds with two
 * significant figures: a fixed amount of memory, no allocation per record.
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

export const LATENCY_STAGES = ['ack', 'check', 'store', 'fsync'] as const;
export type LatencyStage = (typeof LATENCY_STAGES)[number];

/** Durations above this (µs) are counted at this value: a minute is already an outage. */
const HIGHEST_US = 60_000_000;

export interface StageSummary {
  /** Durations recorded in the window. */
  n: number;
  /** In ms, to 0.01 ms; null when n is 0. */
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

export interface LatencyWindow {
  /** Wall-clock start and end of the window (ms since the epoch). */
  fromMs: number;
  toMs: number;
  stages: Record<LatencyStage, StageSummary>;
}

export interface LatencyRecorder {
  /** Records one duration of `stage`, in ms (performance.now() differences). */
  record(stage: LatencyStage, ms: number): void;
  /** Ends the window if `windowMs` has passed since it began: its summary, else undefined. */
  roll(nowMs: number): LatencyWindow | undefined;
}

const msOf = (us: number): number => Math.round(us / 10) / 100;

export function createLatencyRecorder(options: { windowMs: number; startMs: number }): LatencyRecorder {
  const histograms = new Map<LatencyStage, RecordableHistogram>(
    LATENCY_STAGES.map((s) => [s, createHistogram({ lowest: 1, highest: HIGHEST_US, figures: 2 })]),
  );
  let fromMs = options.startMs;

  function summary(h: RecordableHistogram): StageSummary {
    const n = h.count;
    if (n === 0) return { n, p50: null, p90: null, p99: null, max: null };
    return { n, p50: msOf(h.percentile(50)), p90: msOf(h.percentile(90)), p99: msOf(h.percentile(99)), max: msOf(h.max) };
  }

  return {
    record(stage, ms) {
      // The histogram takes integers from 1 to HIGHEST_US; a clock step backwards reads as 1 µs.
      const us = Math.min(HIGHEST_US, Math.max(1, Math.round(ms * 1000)));
      histograms.get(stage)!.record(us);
    },
    roll(nowMs) {
      if (nowMs - fromMs < options.windowMs) return undefined;
      const stages = {} as Record<LatencyStage, StageSummary>;
      for (const [stage, h] of histograms) {
        stages[stage] = summary(h);
        h.reset();
      }
      const window = { fromMs, toMs: nowMs, stages };
      fromMs = nowMs;
      return window;
    },
  };
}

/** A recorder that keeps nothing, for parts used without a gateway (tests, tools). */
export const NO_LATENCY: LatencyRecorder = { record: () => undefined, roll: () => undefined };
