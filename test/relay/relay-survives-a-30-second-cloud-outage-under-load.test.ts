// Issue 4, done-when: the cloud is down for 30 s while devices keep sending. Nothing is lost,
// everything is delivered once after recovery, ingest keeps its rate during the outage (the
// outbox absorbs it), and the circuit breaker opens and closes again with events. The cloud
// runs in its own process (`edgegw cloud-sim` from the build, so its verification work does not
// share the gateway's event loop) and goes down by SIGKILL.
import t from 'tap';
import { setTimeout as delay } from 'node:timers/promises';
import { createRelay } from '../../gateway/relay/index.js';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../helpers/tmp.js';
import { allRecords, collectAlerts, makeFleet, nextMessage, openStore, relayOptions, reverifyAll, startCloudProcess, waitFor } from './fixtures/fleet.js';

const OUTAGE_MS = 30_000;
const TICK_MS = 10;
const PER_TICK = 4; // 400 messages/s offered, from 10 devices

t.test('a 30 s cloud outage under load: no loss, delivered once, ingest unaffected', async (t) => {
  const fleet = makeFleet(10, 'out');
  const store = openStore(t, tempDir(t));
  const cloudDir = tempDir(t);
  const first = await startCloudProcess(t, cloudDir, fleet, { verifyWorkers: 0 });
  const port = first.cloud.port;
  const { alerts, events } = collectAlerts();
  const relay = createRelay(
    { store, log: silentLogger(), clock: systemClock, alerts },
    relayOptions(first.cloud, {
      batchMaxRecords: 200,
      retry: { initialDelayMs: 50, maxDelayMs: 1000 },
      breaker: { threshold: 3, halfOpenAfterMs: 500, maxHalfOpenAfterMs: 1000 },
      timeouts: { connectMs: 1000, headersMs: 2000, bodyMs: 2000, requestMs: 3000 },
    }),
  );
  await relay.start();
  t.teardown(() => relay.stop());

  // Devices keep publishing at a fixed offered rate; each commit is the real group-commit path.
  let committed = 0;
  let running = true;
  let next = 0;
  const pending = new Set<Promise<void>>();
  const ingest = (async () => {
    while (running) {
      for (let i = 0; i < PER_TICK; i++) {
        const p = store.ingest.commit(nextMessage(fleet[next++ % fleet.length]!, Date.now())).then(() => {
          committed++;
          pending.delete(p);
        });
        pending.add(p);
      }
      await delay(TICK_MS);
    }
    await Promise.all(pending);
  })();
  t.teardown(async () => {
    running = false;
    await ingest;
  });

  const rate = async (ms: number): Promise<number> => {
    const c0 = committed;
    const t0 = Date.now();
    await delay(ms);
    return ((committed - c0) * 1000) / (Date.now() - t0);
  };

  const before = await rate(3000);
  t.ok(relay.stats().acceptedRecords > 0, 'records flow while the cloud is up');

  await first.kill();
  const outageStart = Date.now();
  const during = await rate(OUTAGE_MS);
  const backlog = store.counters.get('outbox_rows');
  t.ok(backlog > before * 20, `the outbox absorbed the outage (${backlog} rows waiting)`);
  t.ok(during >= before * 0.8, `ingest during the outage ${during.toFixed(0)}/s vs ${before.toFixed(0)}/s before (>= 80%)`);
  t.ok(events.some((e) => e.kind === 'relay_circuit_open' && e.code === 'EDGEGW_RELAY_CIRCUIT_OPEN'), 'the breaker opened with an event');
  t.ok(['open', 'half-open'].includes(relay.stats().breaker));
  t.ok(['EDGEGW_RELAY_UNAVAILABLE', 'EDGEGW_RELAY_CIRCUIT_OPEN'].includes(relay.stats().lastFailure?.code ?? ''), 'failures recorded as unavailable or circuit open');
  t.ok(Date.now() - outageStart >= OUTAGE_MS);

  // The cloud comes back on the same port with its database (what it stored before is kept).
  const second = await startCloudProcess(t, cloudDir, fleet, { port, verifyWorkers: 0 });
  await delay(2000);
  running = false;
  await ingest;
  const total = committed;
  await waitFor('backlog delivered', () => store.counters.get('outbox_rows') === 0, 60_000);
  t.ok(events.some((e) => e.kind === 'relay_circuit_closed'), 'the breaker closed again with an event');
  t.equal(relay.stats().breaker, 'closed');

  const records = await allRecords(second.cloud);
  const keys = new Set(records.map((r) => `${r.dev}/${r.seq}`));
  t.equal(records.length, total, `all ${total} committed records are at the cloud`);
  t.equal(keys.size, total, 'each exactly once');
  for (const d of fleet) {
    const seqs = records.filter((r) => r.dev === d.id).map((r) => r.seq);
    t.same(seqs, Array.from({ length: d.seq }, (_, i) => i + 1), `${d.id}: seq 1..${d.seq}, none missing, in order`);
  }
  const check = reverifyAll(records, fleet);
  t.same(check.failures, [], 'every record re-verifies end to end');
  t.equal(store.outbox.deadLetterCount(), 0, 'an outage never dead-letters');
});
