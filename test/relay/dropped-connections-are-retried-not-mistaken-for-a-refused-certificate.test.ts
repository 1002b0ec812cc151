// A cloud that drops half its connections without an answer looks, from the client, like one
// that refuses the client certificate after a TLS 1.3 handshake. The relay's probe tells them
// apart: drops are retried until everything is delivered, and the relay never halts.
import t from 'tap';
import { createRelay } from '../../gateway/relay/index.js';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../helpers/tmp.js';
import { collectAlerts, fill, makeFleet, openStore, relayOptions, startCloud, waitFor } from './fixtures/fleet.js';

t.test('dropped connections: retried, probed, never halted, all delivered once', async (t) => {
  const fleet = makeFleet(3, 'drop');
  const store = openStore(t, tempDir(t));
  const cloud = await startCloud(t, tempDir(t), fleet, { faults: { dropRate: 0.5 } });
  const total = await fill(store, fleet, 40);
  const { alerts, events } = collectAlerts();
  const relay = createRelay(
    { store, log: silentLogger(), clock: systemClock, alerts },
    relayOptions(cloud.ready, { batchMaxRecords: 10, maxInFlight: 2, authProbeMs: 200, authProbeIntervalMs: 0, retry: { initialDelayMs: 10, maxDelayMs: 50 }, breaker: { threshold: 1000 } }),
  );
  await relay.start();
  t.teardown(() => relay.stop());
  await waitFor('outbox drained', () => store.counters.get('outbox_rows') === 0, 30_000);
  t.ok(cloud.sim.stats().faults.dropped > 0, `${cloud.sim.stats().faults.dropped} connections dropped`);
  t.ok(relay.stats().retries > 0);
  t.same(events.filter((e) => e.kind === 'relay_halted'), [], 'never mistaken for a refused certificate');
  t.equal(cloud.sim.stats().stored.records, total);
  t.equal(cloud.sim.stats().rejectedRecords, 0);
});
