/**
 * Loaded into the gateway by bench/ingest.ts only (`node --expose-gc --require`), never by
 * the product:
 *  - on SIGWINCH it runs a full garbage collection and prints one JSON line of memory figures
 *    on stdout, so that the bench can tell the memory a connected device keeps from the
 *    garbage its handshake left behind;
 *  - on SIGUSR2 it prints the main thread's garbage-collection pauses since start (scavenges
 *    and the rest, their count and total ms), without collecting anything, so that the bench
 *    can tell what GC cost the gateway's event loop in a phase.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks';

const collect = (globalThis as { gc?: () => void }).gc;
process.on('SIGWINCH', () => {
  if (collect === undefined) return;
  collect();
  collect();
  const m = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ msg: 'bench-memory', rssKiB: m.rss >> 10, heapUsedKiB: m.heapUsed >> 10, externalKiB: m.external >> 10 })}\n`);
});

const pauses = { scavenges: 0, scavengeMs: 0, others: 0, otherMs: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) {
      pauses.scavenges++;
      pauses.scavengeMs += e.duration;
    } else {
      pauses.others++;
      pauses.otherMs += e.duration;
    }
  }
}).observe({ entryTypes: ['gc'] });
process.on('SIGUSR2', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'bench-gc', ...pauses })}\n`);
});
