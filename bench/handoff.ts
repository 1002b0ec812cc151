/**
 * What handing one message to a worker thread and back costs, against what the work it moves
 * costs: one raw Ed25519 `crypto.verify` on this thread, measured in the same run.
 *
 * The gateway sends each turn's signature checks to a worker in one postMessage and gets one
 * answer back (gateway/verify/pool.ts). Under load many checks share that round trip; at
 * moderate rates a message often travels alone, and both threads have gone idle in between.
 * This bench measures the round trip (main → echo worker → main) three ways:
 *   - back to back: the next message leaves as soon as the answer is in (no thread sleeps);
 *   - after a 1 ms and a 5 ms pause on a timer: both threads sleep between messages, as at
 *     moderate rates.
 * Each paced run is paired with the same timer loop without a worker, so the figure is what
 * the hand-off adds, not the timer: the median over 5 such pairs. CPU is the process's (both
 * threads), from getrusage.
 */
import { verify as cryptoVerify, generateKeyPairSync, sign } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { median, percentile } from './stats.js';

export interface HandoffOptions {
  /** Round trips per measurement (default 2,000). */
  trips?: number;
}

export interface HandoffRow {
  /** Pause between round trips, ms (0: back to back). */
  pauseMs: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  /** CPU the hand-off adds per round trip, both threads, µs (the timer loop's own CPU subtracted). */
  cpuUs: number;
  /** cpuUs / the CPU of one raw verify. */
  overVerify: number;
}

export interface HandoffFigures {
  /** One raw Ed25519 verify on this thread, µs of CPU. */
  verifyUs: number;
  rows: HandoffRow[];
}

const ECHO = `const { parentPort } = require('node:worker_threads'); parentPort.on('message', (m) => parentPort.postMessage(m));`;

function cpuNowUs(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}

function rawVerifyUs(): number {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const msg = Buffer.alloc(120, 7);
  const sig = sign(null, msg, privateKey);
  for (let i = 0; i < 200; i++) cryptoVerify(null, msg, publicKey, sig);
  const n = 4000;
  const c0 = cpuNowUs();
  for (let i = 0; i < n; i++) if (!cryptoVerify(null, msg, publicKey, sig)) throw new Error('verify failed');
  return (cpuNowUs() - c0) / n;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `trips` round trips through `send`, pausing `pauseMs` between them; latency per trip and CPU per trip. */
async function loop(trips: number, pauseMs: number, send: (() => Promise<void>) | undefined): Promise<{ lat: number[]; cpuUs: number }> {
  const lat: number[] = [];
  const c0 = cpuNowUs();
  for (let i = 0; i < trips; i++) {
    if (pauseMs > 0) await sleep(pauseMs);
    if (send === undefined) continue;
    const t = performance.now();
    await send();
    lat.push((performance.now() - t) * 1000);
  }
  return { lat, cpuUs: (cpuNowUs() - c0) / trips };
}

const ROUNDS = 5;

export async function benchHandoff(options: HandoffOptions = {}): Promise<HandoffFigures> {
  const trips = options.trips ?? 2000;
  const verifyUs = rawVerifyUs();
  const worker = new Worker(ECHO, { eval: true });
  await new Promise<void>((resolve, reject) => {
    worker.once('online', resolve);
    worker.once('error', reject);
  });
  let answer: (() => void) | undefined;
  worker.on('message', () => answer?.());
  const send = () =>
    new Promise<void>((resolve) => {
      answer = resolve;
      worker.postMessage(1);
    });
  const rows: HandoffRow[] = [];
  try {
    await loop(200, 0, send);
    for (const pauseMs of [0, 1, 5]) {
      // Paced runs alternate with their timer-only twin, ROUNDS times, and the median of the
      // differences is taken: CPU time is accounted coarsely, and the host's load drifts.
      const n = pauseMs === 0 ? trips : Math.ceil(trips / (2 * pauseMs));
      const lat: number[] = [];
      const added: number[] = [];
      for (let r = 0; r < (pauseMs === 0 ? 1 : ROUNDS); r++) {
        const withWorker = await loop(n, pauseMs, send);
        const timerOnly = pauseMs === 0 ? { cpuUs: 0 } : await loop(n, pauseMs, undefined);
        lat.push(...withWorker.lat);
        added.push(withWorker.cpuUs - timerOnly.cpuUs);
      }
      const cpuUs = Math.max(0, median(added));
      rows.push({ pauseMs, p50Us: percentile(lat, 50), p99Us: percentile(lat, 99), maxUs: percentile(lat, 100), cpuUs, overVerify: cpuUs / verifyUs });
    }
  } finally {
    await worker.terminate();
  }
  return { verifyUs, rows };
}

export function formatHandoffTable(f: HandoffFigures): string {
  const us = (x: number) => x.toFixed(0);
  const lines = [
    `raw Ed25519 crypto.verify on this thread: ${f.verifyUs.toFixed(1)} µs of CPU`,
    '',
    '| pause between round trips | round trip p50 | p99 | max | CPU the hand-off adds (both threads) | / one raw verify |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of f.rows) {
    lines.push(`| ${r.pauseMs === 0 ? 'none (back to back)' : `${r.pauseMs} ms`} | ${us(r.p50Us)} µs | ${us(r.p99Us)} µs | ${us(r.maxUs)} µs | ${us(r.cpuUs)} µs | ${r.overVerify.toFixed(2)} |`);
  }
  return lines.join('\n');
}
