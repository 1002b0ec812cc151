// The retry schedule is exponential with full jitter (AWS Architecture Blog, "Exponential
// Backoff And Jitter", 2015: sleep = random_between(0, min(cap, base * 2^attempt))), and
// Retry-After is read in both forms of RFC 9110 §10.2.3 and clamped. The batch id and body
// are stable for the same records (what makes a re-sent batch recognisable).
import t from 'tap';
import { retryBackoff, parseRetryAfter, batchId, encodeBatch, DEFAULT_RELAY_OPTIONS } from '../../gateway/relay/index.js';
import { decode } from '../../protocol/cbor.js';
import type { OutboxRecord } from '../../gateway/store/index.js';

t.test('attempt n waits a uniform draw from [0, min(max, initial * 2^n))', async (t) => {
  const retry = { initialDelayMs: 100, maxDelayMs: 1600, maxRetryAfterMs: 0 };
  const samples: number[][] = Array.from({ length: 8 }, () => []);
  for (let run = 0; run < 2000; run++) {
    let b = retryBackoff(retry).next(undefined);
    for (let n = 0; n < 8; n++) {
      samples[n]!.push(b.duration);
      b = b.next(undefined);
    }
  }
  for (let n = 0; n < 8; n++) {
    const cap = Math.min(1600, 100 * 2 ** n);
    const s = samples[n]!;
    const mean = s.reduce((a, b) => a + b, 0) / s.length;
    t.ok(s.every((d) => d >= 0 && d < cap), `attempt ${n}: every delay in [0, ${cap})`);
    // Full jitter has mean cap/2 and reaches near 0; "equal jitter" would sit in [cap/2, cap).
    t.ok(Math.abs(mean - cap / 2) < cap * 0.06, `attempt ${n}: mean ${mean.toFixed(0)} ≈ ${cap / 2}`);
    t.ok(Math.min(...s) < cap * 0.05, `attempt ${n}: some delays near zero`);
  }
});

t.test('Retry-After: delay-seconds, HTTP-date, clamping, garbage ignored', async (t) => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  t.equal(parseRetryAfter('3', now, 60_000), 3000);
  t.equal(parseRetryAfter(['5', '9'], now, 60_000), 5000, 'the first of repeated headers');
  t.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now, 60_000), 10_000, 'HTTP-date');
  t.equal(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now, 60_000), 0, 'a date in the past means now');
  t.equal(parseRetryAfter('86400', now, 300_000), 300_000, 'clamped to maxRetryAfterMs');
  t.equal(parseRetryAfter('soon', now, 60_000), undefined);
  t.equal(parseRetryAfter('-5', now, 60_000), undefined);
  t.equal(parseRetryAfter(undefined, now, 60_000), undefined);
});

t.test('the batch id and body depend only on the gateway and the records', async (t) => {
  const rec = (id: number, seq: number): OutboxRecord => ({ id, deviceId: 'd-1', kid: new Uint8Array(8).fill(1), seq, ts: 5, rxMs: 6, topic: 'd/d-1/t/x', cose: new Uint8Array([0xd2, 0x84]) });
  const a = [rec(10, 1), rec(12, 2)];
  t.equal(batchId('gw', a), batchId('gw', [rec(10, 1), rec(12, 2)]), 'stable');
  t.not(batchId('gw', a), batchId('gw2', a), 'per gateway');
  t.not(batchId('gw', a), batchId('gw', [rec(10, 1), rec(11, 2)]), 'per id set');
  t.match(batchId('gw', a), /^10-12-[A-Za-z0-9_-]{22}$/, 'first-last-digest: readable and within the cloud key grammar');
  t.same(encodeBatch('gw', a), encodeBatch('gw', [rec(10, 1), rec(12, 2)]), 'deterministic body');
  const decoded = decode(encodeBatch('gw', a)) as Map<string, unknown>[];
  t.same([...decoded[0]!.keys()].sort(), ['cose', 'dev', 'gw', 'kid', 'rx', 'seq', 'topic', 'ts'], 'PROTOCOL.md §8 record keys');
  t.same(decoded[1]!.get('seq'), 2);
  t.equal(DEFAULT_RELAY_OPTIONS.retry.maxDelayMs, 30_000, 'documented defaults are exported');
});
