/** Order statistics and samplers shared by the benchmarks. */
import { statSync } from 'node:fs';

/** The median (the mean of the middle two for an even count); NaN when there is nothing. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The p-th percentile (0..100, nearest rank below); NaN when there is nothing. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * The largest a file grew (the gateway's -wal file), sampled every `everyMs` until `stop()`,
 * which takes one last sample and returns the largest size in bytes. The timer does not keep
 * the process alive.
 */
export function sampleLargestSize(path: string, everyMs = 250): { stop(): number } {
  const size = (): number => statSync(path, { throwIfNoEntry: false })?.size ?? 0;
  let largest = size();
  const timer = setInterval(() => {
    largest = Math.max(largest, size());
  }, everyMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      largest = Math.max(largest, size());
      return largest;
    },
  };
}
