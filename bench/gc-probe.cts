/**
 * Loaded into the gateway by bench/ingest.ts only (`node --expose-gc --require`), never by
 * the product: on SIGWINCH it runs a full garbage collection and prints one JSON line of
 * memory figures on stdout, so that the bench can tell the memory a connected device keeps
 * from the garbage its handshake left behind.
 */
const collect = (globalThis as { gc?: () => void }).gc;
process.on('SIGWINCH', () => {
  if (collect === undefined) return;
  collect();
  collect();
  const m = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ msg: 'bench-memory', rssKiB: m.rss >> 10, heapUsedKiB: m.heapUsed >> 10, externalKiB: m.external >> 10 })}\n`);
});
