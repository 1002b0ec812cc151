// `edgegw status` on a running gateway: the latency of each ingest stage over the last window,
// from real publishes over TLS, checked on real workers, committed to a real SQLite file.
import t from 'tap';
import { join } from 'node:path';
import type { Clock } from '../../common/clock.js';
import { openDatabase } from '../../gateway/store/index.js';
import { ownMark } from '../../gateway/liveness.js';
import { startGateway } from '../helpers/gateway.js';
import { makeDevice, connectDevice, signedTelemetry, publishQos1 } from '../helpers/devices.js';
import { runCli } from '../helpers/cli.js';

t.setTimeout(120_000);

interface Stage { n: number; p50: number | null; p90: number | null; p99: number | null; max: number | null }
type Latency = { windowS: number; endedAtMs: number; ack: Stage; check: Stage; store: Stage; fsync: Stage } | null;

async function statusLatency(dataDir: string): Promise<Latency> {
  const res = await runCli(['status', '--data-dir', dataDir]);
  if (res.code !== 0) throw new Error(res.stderr);
  return (JSON.parse(res.stdout) as { latencyMs: Latency }).latencyMs;
}

/** The gateway looks at its window once a second; wait for the next one. */
async function nextWindow(dataDir: string, after: number): Promise<NonNullable<Latency>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const l = await statusLatency(dataDir);
    if (l !== null && l.endedAtMs > after) return l;
    if (Date.now() > deadline) throw new Error(`no latency window ended after ${after}; last seen ${JSON.stringify(l)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const HOUR_MS = 3_600_000;

t.test('ack, check, store and fsync latencies of the last window, and an empty window after it', async (t) => {
  // An hour's window that ends when the test moves this clock an hour on: every publish below
  // falls into one window, however slow the machine. The clock keeps pace with real time in
  // between.
  let offsetMs = 0;
  const clock: Clock = { now: () => Date.now() + offsetMs };
  const gw = await startGateway(t, { verifyWorkers: 2, verifyInlineWhenIdle: false, latencyWindowS: 3600 }, clock);
  t.equal(await statusLatency(gw.dataDir), null, 'null before any window has ended');

  const dev = await makeDevice(gw.registrar, 'sensor-lat', 'EdDSA');
  const client = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
  t.teardown(() => void client.end(true));
  const messages = Array.from({ length: 20 }, (_, i) => signedTelemetry(dev, i + 1));
  for (const m of messages) await publishQos1(client, m.topic, m.payload);
  // A QoS 1 redelivery: checked and acknowledged, not stored again.
  await publishQos1(client, messages[19]!.topic, messages[19]!.payload);
  t.equal(gw.gateway.store.counters.get('accepted'), 20);
  t.equal(gw.gateway.store.counters.get('duplicates'), 1);

  // The gateway's memory, as last written (in this test, this process's).
  const running = JSON.parse((await runCli(['status', '--data-dir', gw.dataDir])).stdout) as { memoryMiB: { rss: number; heapUsed: number; external: number } | null };
  const mem = running.memoryMiB;
  const ownRssMiB = process.memoryUsage().rss / 2 ** 20;
  t.ok(mem !== null && mem.rss > mem.heapUsed && mem.heapUsed > 0 && mem.external > 0, `memoryMiB while running: ${JSON.stringify(mem)}`);
  t.ok(mem !== null && mem.rss > ownRssMiB / 2 && mem.rss < ownRssMiB * 2, `its rss is this process's (${ownRssMiB.toFixed(1)} MiB now)`);

  const before = clock.now();
  offsetMs += HOUR_MS;
  const l = await nextWindow(gw.dataDir, before);
  t.equal(l.ack.n, 21, 'every PUBLISH handed to ingest');
  t.equal(l.check.n, 21, 'every signature checked, the duplicate too');
  t.equal(l.store.n, 20, 'only the stored messages waited for the store');
  t.ok(l.fsync.n >= 1, `${l.fsync.n} flushes of the write-ahead log`);
  for (const stage of ['ack', 'check', 'store', 'fsync'] as const) {
    const s = l[stage];
    t.ok(s.p50! > 0 && s.p50! <= s.p90! && s.p90! <= s.p99! && s.p99! <= s.max!, `${stage}: 0 < p50 <= p90 <= p99 <= max (${JSON.stringify(s)})`);
  }
  // Each message's acknowledgement waited for its check and its commit (within the 1 % of the histogram).
  t.ok(l.ack.max! * 1.01 >= l.store.max!, `ack max ${l.ack.max} >= store max ${l.store.max}`);
  t.ok(l.ack.max! * 1.01 >= l.check.max!, `ack max ${l.ack.max} >= check max ${l.check.max}`);

  const second = clock.now();
  offsetMs += HOUR_MS;
  const empty = await nextWindow(gw.dataDir, second);
  for (const stage of ['ack', 'check', 'store'] as const) t.same(empty[stage], { n: 0, p50: null, p90: null, p99: null, max: null }, `${stage}: nothing in a quiet window`);

  await gw.gateway.stop();
  await gw.gateway.stop(); // a second stop does nothing
  const after = JSON.parse((await runCli(['status', '--data-dir', gw.dataDir])).stdout) as { running: boolean; connected: number; latencyMs: Latency; accepted: number; memoryMiB: unknown };
  t.same({ running: after.running, connected: after.connected, latencyMs: after.latencyMs, memoryMiB: after.memoryMiB }, { running: false, connected: 0, latencyMs: null, memoryMiB: null }, 'stopped at once, not after the heartbeat goes stale');
  t.equal(after.accepted, 20, 'the counts stay');

  // A damaged latency row (a hand edit, another tool) while the gateway looks alive: the counts still print.
  const db = openDatabase(join(gw.dataDir, 'edgegw.db'), {});
  db.prepare("UPDATE runtime SET value = ? WHERE key = 'latency'").run('{"fromMs": 1, "sta');
  db.prepare("INSERT OR REPLACE INTO runtime (key, value) VALUES ('memory', ?)").run('{"rss": "lots"}');
  // Alive: the process mark of a running process (this one).
  db.prepare("UPDATE runtime SET value = ? WHERE key = 'process'").run(JSON.stringify(ownMark()));
  db.close();
  const damaged = await runCli(['status', '--data-dir', gw.dataDir]);
  t.equal(damaged.code, 0, damaged.stderr);
  const d = JSON.parse(damaged.stdout) as { running: boolean; latencyMs: Latency; accepted: number; memoryMiB: unknown };
  t.same({ running: d.running, latencyMs: d.latencyMs, accepted: d.accepted, memoryMiB: d.memoryMiB }, { running: true, latencyMs: null, accepted: 20, memoryMiB: null });

  // A gateway of before the process mark wrote a heartbeat each second: a fresh one still reads as running.
  const legacy = openDatabase(join(gw.dataDir, 'edgegw.db'), {});
  legacy.prepare("DELETE FROM runtime WHERE key = 'process'").run();
  legacy.prepare("UPDATE runtime SET value = ? WHERE key = 'heartbeatMs'").run(String(Date.now()));
  legacy.close();
  t.equal((JSON.parse((await runCli(['status', '--data-dir', gw.dataDir])).stdout) as { running: boolean }).running, true, 'a fresh heartbeat of before');
});
