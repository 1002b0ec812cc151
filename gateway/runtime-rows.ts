/**
 * What the gateway writes for `edgegw status` each second: only what changed. An idle
 * gateway then writes nothing at all, so its SD card is not worn and its disk not flushed
 * three times a second for a heartbeat (docs/performance.md, "An idle gateway").
 *
 * - `connected`: when the number of connected devices changes.
 * - `memory`: at most once a minute, and only when a figure moved by 1 MiB or more.
 * - `latency`: each window that had traffic, and the first quiet window after one (status
 *   then shows a quiet window); further quiet windows are not written again.
 *
 * Whether the gateway runs is its process mark (liveness.ts), written once at start.
 */
import type { LatencyWindow } from './latency.js';

export interface MemoryMiB {
  rss: number;
  heapUsed: number;
  external: number;
}

/** The longest `memory` goes unwritten while it changes, ms; what status shows is at most this old. */
export const MEMORY_EVERY_MS = 60_000;
/** A memory figure must move by this much (MiB) to be written again. */
const MEMORY_STEP_MIB = 1;

export type RuntimeRows = ReturnType<typeof createRuntimeRows>;

export function createRuntimeRows() {
  let connected: number | undefined;
  let memory: { value: MemoryMiB; atMs: number } | undefined;
  let lastWindowQuiet = true;

  const moved = (a: MemoryMiB, b: MemoryMiB): boolean =>
    Math.abs(a.rss - b.rss) >= MEMORY_STEP_MIB || Math.abs(a.heapUsed - b.heapUsed) >= MEMORY_STEP_MIB || Math.abs(a.external - b.external) >= MEMORY_STEP_MIB;

  return {
    /** The rows to write now (possibly none), and they are taken as written. */
    changes(nowMs: number, input: { connected: number; memory: MemoryMiB; window?: LatencyWindow }): Record<string, string> {
      const out: Record<string, string> = {};
      if (input.connected !== connected) {
        out.connected = String(input.connected);
        connected = input.connected;
      }
      if (memory === undefined || (nowMs - memory.atMs >= MEMORY_EVERY_MS && moved(input.memory, memory.value))) {
        out.memory = JSON.stringify(input.memory);
        memory = { value: input.memory, atMs: nowMs };
      }
      if (input.window !== undefined) {
        const quiet = Object.values(input.window.stages).every((s) => s.n === 0);
        if (!quiet || !lastWindowQuiet) out.latency = JSON.stringify(input.window);
        lastWindowQuiet = quiet;
      }
      return out;
    },
    /** The last rows could not be written (a full disk): the next call writes them all again. */
    forget(): void {
      connected = undefined;
      memory = undefined;
      lastWindowQuiet = false;
    },
  };
}
