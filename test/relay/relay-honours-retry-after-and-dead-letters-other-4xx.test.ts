// PROTOCOL.md §8 status handling against a real cloud-sim with injected faults:
// 429 + Retry-After is honoured (no request before it, the breaker stays closed), 5xx is
// retried until it succeeds with nothing lost, and any other 4xx moves the batch to the
// dead-letter table with an alert while the queue moves on.
import t from 'tap';
import { createRelay } from '../../gateway/relay/index.js';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../helpers/tmp.js';
import { collectAlerts, fill, makeFleet, openStore, relayOptions, startCloud, waitFor } from './fixtures/fleet.js';

t.test('429 with Retry-After: the next attempt waits for it, then delivery completes', async (t) => {
  const fleet = makeFleet(2, 'ra');
  const store = openStore(t, tempDir(t));
  const cloud = await startCloud(t, tempDir(t), fleet, { faults: { status: 429, retryAfterS: 2 } });
  await fill(store, fleet, 10);
  const { alerts, events } = collectAlerts();
  // A backoff far shorter than Retry-After: only Retry-After can explain a 2 s gap.
  const relay = createRelay(
    { store, log: silentLogger(), clock: systemClock, alerts },
    relayOptions(cloud.ready, { maxInFlight: 1, retry: { initialDelayMs: 10, maxDelayMs: 50 }, breaker: { threshold: 1 } }),
  );
  const seen: number[] = [];
  let lastCount = 0;
  const poll = setInterval(() => {
    const n = cloud.sim.stats().ingestRequests;
    if (n !== lastCount) seen.push(Date.now());
    lastCount = n;
  }, 10);
  t.teardown(() => clearInterval(poll));
  await relay.start();
  t.teardown(() => relay.stop());

  await waitFor('two requests seen', () => seen.length >= 2, 10_000);
  t.equal(cloud.sim.stats().faults.injectedStatus, 2, 'both answered 429');
  t.ok(seen[1]! - seen[0]! >= 1900, `second request ${seen[1]! - seen[0]!} ms after the first (Retry-After: 2)`);
  t.equal(relay.stats().lastFailure?.code, 'EDGEGW_RELAY_UNAVAILABLE');
  t.equal(relay.stats().breaker, 'closed', '429 means the cloud is alive: the circuit stays closed even at threshold 1');
  t.equal(store.counters.get('outbox_rows'), 20, 'nothing removed while refused');

  cloud.sim.setFaults({ status: null, retryAfterS: null });
  await waitFor('outbox drained', () => store.counters.get('outbox_rows') === 0, 10_000);
  t.equal(cloud.sim.stats().stored.records, 20);
  t.equal(store.outbox.deadLetterCount(), 0);
  t.same(events.filter((e) => e.kind === 'relay_dead_letter'), []);
});

t.test('500s are retried with backoff until accepted; nothing is lost or dead-lettered', async (t) => {
  const fleet = makeFleet(3, 'five');
  const store = openStore(t, tempDir(t));
  const cloud = await startCloud(t, tempDir(t), fleet, { faults: { failureRate: 0.6, failureStatus: 503 } });
  const total = await fill(store, fleet, 40);
  const { alerts } = collectAlerts();
  const relay = createRelay(
    { store, log: silentLogger(), clock: systemClock, alerts },
    relayOptions(cloud.ready, { batchMaxRecords: 10, retry: { initialDelayMs: 5, maxDelayMs: 40 }, breaker: { threshold: 1000 } }),
  );
  await relay.start();
  t.teardown(() => relay.stop());
  await waitFor('outbox drained', () => store.counters.get('outbox_rows') === 0, 20_000);
  t.ok(relay.stats().retries > 0, `retried ${relay.stats().retries} times`);
  t.ok(cloud.sim.stats().faults.injectedStatus > 0);
  t.equal(cloud.sim.stats().stored.records, total, 'every record stored once');
  t.equal(store.outbox.deadLetterCount(), 0, 'a 5xx never dead-letters');
});

t.test('400: the batch goes to dead letters with an alert, and the queue moves on', async (t) => {
  const fleet = makeFleet(1, 'bad');
  const store = openStore(t, tempDir(t));
  const cloud = await startCloud(t, tempDir(t), fleet, { faults: { status: 400 } });
  await fill(store, fleet, 10);
  const { alerts, events } = collectAlerts();
  const relay = createRelay({ store, log: silentLogger(), clock: systemClock, alerts }, relayOptions(cloud.ready, { batchMaxRecords: 10, maxInFlight: 1 }));
  await relay.start();
  t.teardown(() => relay.stop());

  await waitFor('dead letters', () => store.outbox.deadLetterCount() === 10, 10_000);
  t.equal(store.counters.get('outbox_rows'), 0, 'the refused batch left the outbox');
  const dl = store.outbox.deadLetters(20);
  t.equal(dl.length, 10);
  t.equal(dl[0]!.status, 400, 'the cloud status is recorded');
  t.match(dl[0]!.reason, /EDGEGW_RELAY_REJECTED/);
  t.equal(new Set(dl.map((d) => d.batch_id)).size, 1, 'one batch id for the batch');
  const alert = events.find((e) => e.kind === 'relay_dead_letter');
  t.equal(alert?.code, 'EDGEGW_RELAY_REJECTED');
  t.equal(alert?.severity, 'critical');
  t.equal(alert?.deviceId, 'bad-0');
  t.equal(relay.stats().deadLetteredRecords, 10);
  t.equal(cloud.sim.stats().ingestRequests, 1, 'a 4xx is not retried');

  // The queue is not stuck behind the refused batch: later records flow once the cloud takes them.
  cloud.sim.setFaults({ status: null });
  await fill(store, fleet, 5);
  await waitFor('next records delivered', () => store.counters.get('outbox_rows') === 0, 10_000);
  t.equal(cloud.sim.stats().stored.records, 5);
  t.equal(store.outbox.deadLetterCount(), 10, 'only the refused batch is in dead letters');
});
