import t from 'tap';
import fc from 'fast-check';
import { backoffDelay } from '../../device-sim/index.js';

const opts = { initialMs: 500, maxMs: 30_000 };

t.test('the delay doubles per attempt, keeps half of it fixed, and is capped', (t) => {
  t.equal(backoffDelay(0, opts, () => 0), 250, 'attempt 0, no jitter: half of 500');
  t.equal(backoffDelay(0, opts, () => 0.999999), 500);
  t.equal(backoffDelay(3, opts, () => 0), 2000, 'attempt 3: 500 * 8 / 2');
  t.equal(backoffDelay(40, opts, () => 0.999999), 30_000, 'capped at maxMs');
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 100 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
      const base = Math.min(opts.maxMs, opts.initialMs * 2 ** attempt);
      const d = backoffDelay(attempt, opts, () => r);
      return d >= Math.floor(base / 2) && d <= base;
    }),
  );
  t.end();
});

t.test('a fleet that lost its gateway at once spreads its reconnects out', (t) => {
  const delays = Array.from({ length: 1000 }, () => backoffDelay(4, opts, Math.random));
  const distinct = new Set(delays.map((d) => Math.floor(d / 100))).size;
  t.ok(distinct >= 30, `1000 devices fall into ${distinct} different 100 ms slots`);
  t.end();
});
