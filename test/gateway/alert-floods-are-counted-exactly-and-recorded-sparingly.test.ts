// A refusal costs an attacker nothing and a record costs the gateway a row and a log line:
// per (kind, code, device, address) the first events of a window are recorded one by one,
// the rest counted and summarised, and the audit table keeps a bounded number of rows.
import t from 'tap';
import { join } from 'node:path';
import { createAlerts, type RaisedEvent } from '../../gateway/alerts/index.js';
import { createStore } from '../../gateway/store/index.js';
import { manualClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../helpers/tmp.js';

const limits = { maxOutboxRows: 1000, maxOutboxBytes: 1 << 20, maxBatchRows: 2000 };
const refusal = (address: string) => ({ kind: 'limit', code: 'EDGEGW_BROKER_CONN_RATE_LIMITED', severity: 'warning' as const, address });

t.test('a flood is recorded a burst at a time, then summarised, and counted exactly', async (t) => {
  const clock = manualClock(1_700_000_000_000);
  const store = createStore({ clock, log: silentLogger() }, { path: join(tempDir(t), 'gw.db'), ...limits });
  t.teardown(() => store.close());
  const alerts = createAlerts({ clock, log: silentLogger(), sink: { audit: (e) => store.ingest.audit(e) } }, { floodWindowMs: 60_000, floodBurst: 5 });
  t.teardown(() => alerts.stop());
  const seen: RaisedEvent[] = [];
  alerts.subscribe((e) => seen.push(e));

  for (let i = 0; i < 1000; i++) alerts.raise(refusal('10.0.0.9'));
  alerts.raise(refusal('10.0.0.10'));
  t.equal(alerts.counts().EDGEGW_BROKER_CONN_RATE_LIMITED, 1001, 'every event counted');
  t.equal(seen.filter((e) => e.address === '10.0.0.9').length, 5, 'the flooding address: its first 5 recorded');
  t.equal(seen.filter((e) => e.address === '10.0.0.10').length, 1, 'another address is not drowned by it');

  // The window ends: the next event starts a new one, after a summary of the suppressed.
  clock.advance(60_000);
  alerts.raise(refusal('10.0.0.9'));
  const summary = seen.find((e) => e.kind === 'events_suppressed');
  t.ok(summary, 'a summary event');
  t.equal(summary!.address, '10.0.0.9');
  t.equal(summary!.code, 'EDGEGW_BROKER_CONN_RATE_LIMITED');
  t.match(summary!.detail, /^995 more "limit" events in 60 s/);

  // A flood that stops is summarised by the sweep.
  for (let i = 0; i < 20; i++) alerts.raise(refusal('10.0.0.11'));
  clock.advance(61_000);
  alerts.sweep();
  t.match(seen.filter((e) => e.kind === 'events_suppressed' && e.address === '10.0.0.11').map((e) => e.detail), [/^15 more/]);

  store.ingest.flushNow();
  const rows = store.recentAudit(10_000);
  t.equal(rows.length, seen.length, 'the audit trail holds what was recorded, not 1,000 rows');
  t.ok(rows.length < 30);
});

t.test('the keys tracked are bounded: past the bound, new keys share one per kind and code', async (t) => {
  const clock = manualClock(0);
  const alerts = createAlerts({ clock, log: silentLogger() }, { floodBurst: 2, maxFloodKeys: 100 });
  t.teardown(() => alerts.stop());
  let recorded = 0;
  alerts.subscribe(() => recorded++);
  for (let i = 0; i < 10_000; i++) alerts.raise(refusal(`10.1.${i >> 8}.${i & 255}`));
  t.equal(alerts.counts().EDGEGW_BROKER_CONN_RATE_LIMITED, 10_000);
  t.equal(recorded, 100 + 2, 'each of the 100 tracked addresses once, then 2 for all the others together');
});

t.test('the audit table keeps its newest rows up to a bound', async (t) => {
  const clock = manualClock(0);
  const store = createStore({ clock, log: silentLogger() }, { path: join(tempDir(t), 'gw.db'), ...limits });
  t.teardown(() => store.close());
  for (let i = 0; i < 2500; i++) store.ingest.audit({ tsMs: i, kind: 'acl', detail: String(i) });
  store.ingest.flushNow();
  t.equal(store.pruneAudit(1000), 1500, 'the oldest 1,500 removed');
  const rows = store.recentAudit(5000);
  t.equal(rows.length, 1000);
  t.equal(rows[0]!.detail, '2499', 'the newest kept');
  t.equal(rows.at(-1)!.detail, '1500');
  t.equal(store.pruneAudit(1000), 0, 'nothing more to prune');
});
