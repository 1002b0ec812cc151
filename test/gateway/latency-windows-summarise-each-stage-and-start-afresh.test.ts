// The recorder behind `edgegw status`'s latencyMs: per-stage percentiles over fixed windows.
import t from 'tap';
import { createLatencyRecorder, LATENCY_STAGES } from '../../gateway/latency.js';

t.test('a window ends after windowMs and summarises what each stage recorded in it', async (t) => {
  const rec = createLatencyRecorder({ windowMs: 1000, startMs: 10_000 });
  for (let ms = 1; ms <= 100; ms++) rec.record('ack', ms);
  rec.record('fsync', 2.5);
  t.equal(rec.roll(10_999), undefined, 'not before the window has run its length');
  const w = rec.roll(11_000)!;
  t.same({ fromMs: w.fromMs, toMs: w.toMs }, { fromMs: 10_000, toMs: 11_000 });
  t.equal(w.stages.ack.n, 100);
  // HdrHistogram with two significant figures: within 1 % of the exact order statistic.
  const near = (got: number | null, want: number): boolean => got !== null && Math.abs(got - want) <= want * 0.01;
  t.ok(near(w.stages.ack.p50, 50), `p50 ${w.stages.ack.p50}`);
  t.ok(near(w.stages.ack.p90, 90), `p90 ${w.stages.ack.p90}`);
  t.ok(near(w.stages.ack.p99, 99), `p99 ${w.stages.ack.p99}`);
  t.ok(near(w.stages.ack.max, 100), `max ${w.stages.ack.max}`);
  t.equal(w.stages.fsync.n, 1);
  t.ok(near(w.stages.fsync.max, 2.5), `fsync ${w.stages.fsync.max}`);
  for (const stage of ['check', 'store'] as const) t.same(w.stages[stage], { n: 0, p50: null, p90: null, p99: null, max: null }, `${stage} empty`);
  t.same(Object.keys(w.stages), [...LATENCY_STAGES]);
});

t.test('the next window starts empty, from the end of the last', async (t) => {
  const rec = createLatencyRecorder({ windowMs: 500, startMs: 0 });
  rec.record('store', 7);
  t.equal(rec.roll(600)!.stages.store.n, 1);
  t.equal(rec.roll(1000), undefined, 'the second window began at 600');
  const second = rec.roll(1100)!;
  t.equal(second.fromMs, 600);
  for (const stage of LATENCY_STAGES) t.equal(second.stages[stage].n, 0, `${stage} starts afresh`);
});

t.test('durations out of range are clamped, not lost or thrown', async (t) => {
  const rec = createLatencyRecorder({ windowMs: 1, startMs: 0 });
  rec.record('check', -3); // a clock step backwards
  rec.record('check', 0.0001);
  rec.record('check', 10 * 60_000); // ten minutes: counted at the one-minute ceiling
  const w = rec.roll(1)!;
  t.equal(w.stages.check.n, 3);
  t.ok(w.stages.check.p50! <= 0.01, 'the tiny ones count as 1 µs');
  t.ok(Math.abs(w.stages.check.max! - 60_000) <= 600, `max ${w.stages.check.max} at the ceiling`);
});
