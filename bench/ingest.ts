/**
 * End-to-end QoS 1 ingest over TLS: mqtt.js devices -> broker -> verify -> group commit ->
 * PUBACK, against a real `edgegw start` child process on loopback. Figures, all from one run:
 *  - raw baselines: node:crypto Ed25519 verifications/s on one core and on every core
 *    (worker threads), measured first in this run, and libsodium's where it loads (the
 *    library the gateway uses by default: protocol/ed25519.ts);
 *  - max throughput with N devices (acks/s), and its ratio to the all-core raw rates measured
 *    just before and after, in several rounds: the median and the range are reported, since
 *    this machine's speed drifts within minutes. The ratio to node:crypto's rate is the one
 *    issue 3 set its target on; the ratio to the same library's rate is like for like;
 *  - PUBACK latency p50/p99 at half and at a quarter of the median maximum, for two arrival
 *    patterns (each device on its own timer; independent devices, i.e. Poisson arrivals),
 *    in as many rounds;
 *  - gateway RSS per connected TLS device: its growth over the connects, and what stays after
 *    a full garbage collection (bench/gc-probe.cts, loaded into the gateway only here).
 * The load generator shares the machine with the gateway, so the ratio is a floor.
 */
import { generateKeyPairSync, sign as nodeSign, verify as nodeVerify, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import { openRegistrar } from '../gateway/index.js';
import { createLogger } from '../common/log.js';
import { systemClock } from '../common/clock.js';
import { libsodiumStatus, nodeSigner, rawPublicKeyOf, signSign1, encodeTelemetryPayload, telemetryTopic, verifyEd25519Libsodium, type Ed25519Verifier, type Ed25519VerifierChoice } from '../protocol/index.js';
import { edgegwArgv, NODE_FLAGS } from '../cli/node-flags.js';
import { median, percentile, sampleLargestSize } from './stats.js';

/** One saturation round: the raw rate measured just before and just after it. */
export interface SaturationRound {
  acksPerSec: number;
  rawAllCoresAround: [number, number];
  ratioToRawAllCores: number;
  /** libsodium's raw all-core rate before and after, and the ratio to it (null where it does not load). */
  rawSodiumAllCoresAround: [number, number] | null;
  ratioToRawSodiumAllCores: number | null;
  /** CPU used while saturated, in cores: the gateway process (all threads) and this load generator. */
  gatewayCores: number;
  loadGeneratorCores: number;
}

export interface IngestFigures {
  rawVerifyPerSecOneCore: number;
  rawVerifyPerSecAllCores: number;
  /** libsodium's raw rates, null where it does not load. */
  rawSodiumPerSecOneCore: number | null;
  rawSodiumPerSecAllCores: number | null;
  cores: number;
  runs: {
    devices: number;
    /** The Ed25519 library the gateway used (its ready line). */
    ed25519Verifier: Ed25519Verifier;
    /** Verification worker threads in the gateway (0 = on its main thread). */
    verifyWorkers: number | 'auto';
    /** Publishes in flight per device at saturation. */
    window: number;
    /** Node.js flags given to the gateway after the executable's own. */
    nodeFlags: string[];
    /** Median over the rounds. */
    maxAcksPerSec: number;
    /**
     * Median over the rounds of each round's rate against the raw all-core rate measured just
     * before and just after it (their mean): the host's speed drifts within minutes here.
     */
    ratioToRawAllCores: number;
    ratioRange: [number, number];
    /** The same against libsodium's raw rate, median and range; null where it does not load. */
    ratioToRawSodiumAllCores: number | null;
    sodiumRatioRange: [number, number] | null;
    rounds: SaturationRound[];
    /** Medians over the rounds. */
    gatewayCores: number;
    loadGeneratorCores: number;
    /** At half the maximum, per-device timers: median over the rounds. */
    halfRateTarget: number;
    halfRateAchieved: number;
    p50Ms: number;
    p99Ms: number;
    /** The latency curve: half and a quarter of the maximum, both arrival patterns. */
    latency: LatencyFigure[];
    /** The gateway's RSS growth over the connects, a second after the last, per device. */
    rssPerDeviceKiB: number;
    /** What a connection keeps, per device: RSS and JS heap after a full GC, from the end of the first 50 connects to the end of the last. */
    keptPerDeviceKiB: { rss: number; heap: number };
    /**
     * The largest the gateway's -wal file was, sampled every 250 ms from the first round to
     * the last latency round: the log is written from its start again after each checkpoint
     * (every second), so it stays near a second's writes.
     */
    walMaxMiB: number;
  }[];
}

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const note = (msg: string) => process.stderr.write(`bench ingest: ${msg}\n`);
const utf8 = new TextEncoder();

type RawLibrary = Ed25519Verifier;

// The raw checks' key and signature, made once per run and shared by every raw rate below.
// The workers get bytes: a worker that generated its own key pair and exported it as JWK
// deadlocked twice in Node 20.20 (a GC inside the export ran the key-generation job's
// destructor, which waited for the lock the export held: gdb, 2026-11-30), so nothing
// key-generating runs in them.
let rawKeysMade: { spki: Buffer; raw: Buffer; msg: Buffer; sig: Buffer } | undefined;
const rawKeys = () => (rawKeysMade ??= (() => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const msg = Buffer.alloc(120, 7);
  return {
    spki: publicKey.export({ type: 'spki', format: 'der' }),
    raw: Buffer.from(rawPublicKeyOf('EdDSA', privateKey)),
    msg,
    sig: nodeSign(null, msg, privateKey),
  };
})());

function rawVerifyRate(durationMs: number, library: RawLibrary): number {
  const { spki, raw, msg, sig } = rawKeys();
  const publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const check = library === 'libsodium' ? () => verifyEd25519Libsodium(raw, msg, sig) : () => nodeVerify(null, msg, publicKey, sig);
  let n = 0;
  const end = performance.now() + durationMs;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) check();
    n += 100;
  }
  return n / (durationMs / 1000);
}

// Where the eval'd workers below load sodium-native from (resolved here, not from their cwd).
const SODIUM_PATH = libsodiumStatus().available ? createRequire(import.meta.url).resolve('sodium-native') : null;

async function rawVerifyRateAllCores(durationMs: number, cores: number, library: RawLibrary): Promise<number> {
  const src = `
    const { parentPort, workerData } = require('node:worker_threads');
    const c = require('node:crypto');
    const { spki, raw, msg, sig } = workerData.keys;
    const publicKey = c.createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    const sodium = workerData.sodium === null ? null : require(workerData.sodium);
    const check = sodium ? () => sodium.crypto_sign_verify_detached(sig, msg, raw) : () => c.verify(null, msg, publicKey, sig);
    if (!check()) throw new Error('raw check refused a good signature');
    let n = 0; const end = performance.now() + workerData.ms;
    while (performance.now() < end) { for (let i = 0; i < 100; i++) check(); n += 100; }
    parentPort.postMessage(n);`;
  const sodium = library === 'libsodium' ? SODIUM_PATH : null;
  const counts = await Promise.all(
    Array.from({ length: cores }, () => new Promise<number>((resolve, reject) => {
      const w = new Worker(src, { eval: true, workerData: { ms: durationMs, sodium, keys: rawKeys() } });
      w.once('message', resolve);
      w.once('error', reject);
    })),
  );
  return counts.reduce((a, b) => a + b, 0) / (durationMs / 1000);
}

/** Both raw all-core rates, one after the other; libsodium's is null where it does not load. */
async function rawRatesAllCores(durationMs: number, cores: number): Promise<{ node: number; sodium: number | null }> {
  const node = await rawVerifyRateAllCores(durationMs, cores, 'node');
  const sodium = SODIUM_PATH === null ? null : await rawVerifyRateAllCores(durationMs, cores, 'libsodium');
  return { node, sodium };
}

/** The gateway's memory right after a full garbage collection (bench/gc-probe.cts). */
interface GcMemory {
  rssKiB: number;
  heapUsedKiB: number;
  externalKiB: number;
}

interface BenchGateway {
  child: ChildProcess;
  port: number;
  caFile: string;
  ed25519Verifier: Ed25519Verifier;
  /** Asks the gateway for a full GC and its memory after it. */
  memoryAfterGc(): Promise<GcMemory>;
  /** The main thread's GC pauses since the gateway started (nothing is collected for it). */
  gcPauses(): Promise<GcPauses>;
}

/** The gateway main thread's garbage-collection pauses since start (bench/gc-probe.cts). */
interface GcPauses {
  scavenges: number;
  scavengeMs: number;
  /** Full collections and their incremental steps. */
  others: number;
  otherMs: number;
}

const GC_PROBE = fileURLToPath(new URL('./gc-probe.cjs', import.meta.url));

function startGateway(dataDir: string, verifyWorkers: number | 'auto', ed25519Verifier: Ed25519VerifierChoice, nodeFlags: readonly string[]): Promise<BenchGateway> {
  const workerArgs = verifyWorkers === 'auto' ? [] : ['--verify-workers', String(verifyWorkers)];
  const argv = edgegwArgv(CLI, ['start', '--data-dir', dataDir, '--host', '127.0.0.1', '--mqtts-port', '0', '--publish-rate', '1000000', '--log-level', 'error', '--ed25519-verifier', ed25519Verifier, ...workerArgs]);
  // After the executable's own flags, so that one of them can be turned back (V8: the last wins).
  argv.splice(NODE_FLAGS.length, 0, ...nodeFlags);
  // The probe only answers a signal; the gateway runs as `edgegw start` does otherwise.
  const child = spawn(process.execPath, ['--expose-gc', '--require', GC_PROBE, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
  /** Pending questions to the probe, per answer kind, answered in order. */
  const waiters = new Map<string, ((r: unknown) => void)[]>();
  /** Asks the probe with a signal; a gateway that does not answer within 10 s fails the bench rather than hanging it. */
  const ask = <T>(signal: NodeJS.Signals, answer: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the gateway did not answer ${signal} within 10 s`)), 10_000);
      const queue = waiters.get(answer) ?? [];
      waiters.set(answer, queue);
      queue.push((r) => {
        clearTimeout(timer);
        resolve(r as T);
      });
      child.kill(signal);
    });
  return new Promise((resolve, reject) => {
    let ready = false;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let r: { msg?: string; mqttsPort: number; caFile: string; ed25519Verifier: Ed25519Verifier } & GcMemory & GcPauses;
      try {
        r = JSON.parse(line) as typeof r;
      } catch {
        return;
      }
      if (r.msg === 'bench-memory' || r.msg === 'bench-gc') {
        waiters.get(r.msg)?.shift()?.(r);
        return;
      }
      if (ready || r.msg !== 'ready') return;
      ready = true;
      resolve({
        child,
        port: r.mqttsPort,
        caFile: r.caFile,
        ed25519Verifier: r.ed25519Verifier,
        memoryAfterGc: () => ask<GcMemory>('SIGWINCH', 'bench-memory'),
        gcPauses: () => ask<GcPauses>('SIGUSR2', 'bench-gc'),
      });
    });
    child.once('exit', (code) => reject(new Error(`gateway exited ${code}`)));
  });
}

/** CPU seconds (user + system) a process has used, all threads, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * The whole machine's CPU time from /proc/stat, in clock ticks: busy (everything but idle and
 * iowait) and all, summed over the CPUs, and how many CPUs that is.
 */
function machineTicks(): { busy: number; all: number; cpus: number } {
  const lines = readFileSync('/proc/stat', 'utf8').split('\n');
  // user nice system idle iowait irq softirq steal (guest time is already in user and nice).
  const t = lines[0]!.split(/\s+/).slice(1, 9).map(Number);
  const all = t.reduce((a, b) => a + b, 0);
  return { busy: all - t[3]! - t[4]!, all, cpus: lines.filter((l) => /^cpu\d/.test(l)).length };
}

/** Busy cores of the whole machine between two readings. */
function machineBusyCores(a: ReturnType<typeof machineTicks>, b: ReturnType<typeof machineTicks>): number {
  const all = b.all - a.all;
  return all > 0 ? ((b.busy - a.busy) / all) * b.cpus : 0;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

interface BenchDevice {
  id: string;
  key: KeyObject;
  certPem: string;
  keyPem: string;
  seq: number;
  signer: ReturnType<typeof nodeSigner>;
  /** Messages signed ahead of time, so the load generator spends its CPU on sending. */
  queue: { topic: string; payload: Buffer }[];
  client?: MqttClient;
}

function presign(devices: BenchDevice[], total: number): void {
  const per = Math.ceil(total / devices.length);
  for (const d of devices) for (let i = 0; i < per; i++) d.queue.push(sign(d));
}

function message(d: BenchDevice): { topic: string; payload: Buffer } {
  return d.queue.shift() ?? sign(d);
}

function sign(d: BenchDevice): { topic: string; payload: Buffer } {
  const topic = telemetryTopic(d.id, 'bench');
  const payload = encodeTelemetryPayload({ seq: ++d.seq, ts: Date.now(), body: { v: d.seq } });
  return { topic, payload: Buffer.from(signSign1(d.signer, payload, utf8.encode(topic))) };
}

/**
 * How the offered load arrives:
 *  - 'timers': every device publishes from its own `setInterval`, the timers started evenly
 *    spread. Timers in one process drift into step (each is re-armed from the turn it ran in),
 *    so the devices come to publish in bunches: kind to batching, an optimistic case.
 *  - 'poisson': independent devices. The aggregate is a Poisson process at the target rate and
 *    each arrival goes to a device chosen at random (a device may have two in flight).
 */
export type Arrivals = 'timers' | 'poisson';

export interface LatencyFigure {
  /** Offered rate as a fraction of the measured maximum. */
  fraction: number;
  arrivals: Arrivals;
  target: number;
  /** Medians over the rounds. */
  achieved: number;
  p50Ms: number;
  p99Ms: number;
  /** Each round's p99, in order. */
  p99RoundsMs: number[];
  /** Gateway CPU (all threads) while recording, in cores: median over the rounds. */
  gatewayCores: number;
  /** The same per message, in µs: what a message costs when it arrives at this rate. */
  gatewayUsPerMessage: number;
  /**
   * The load generator's own event-loop delay while recording, p99 in ms (median over the
   * rounds): how late this process can be to read a PUBACK that has arrived, which the
   * latency figures include. It shares the two cores with the gateway.
   */
  generatorLoopDelayP99Ms: number;
  /**
   * The gateway main thread's garbage-collection pauses while recording, ms per second
   * (median over the rounds): time in which its event loop could not answer anything.
   */
  gatewayGcMsPerS: number;
  /** This load generator's CPU while recording, in cores (median over the rounds). */
  generatorCores: number;
  /**
   * The whole machine's busy CPU while recording, in cores (median over the rounds): gateway,
   * load generator, kernel and anything else. How close to full the shared cores run.
   */
  machineBusyCores: number;
}

const LATENCY_FRACTIONS = [0.5, 0.25];
const ARRIVALS: Arrivals[] = ['timers', 'poisson'];

/** Starts offering `target` msgs/s with the given arrival pattern; `send` publishes one. */
function offer(devices: BenchDevice[], target: number, arrivals: Arrivals, send: (d: BenchDevice) => void): () => void {
  const count = devices.length;
  if (arrivals === 'timers') {
    const perDeviceIntervalMs = (1000 * count) / target;
    const stops = devices.map((d, i) => {
      let timer: NodeJS.Timeout | undefined;
      const start = setTimeout(() => {
        timer = setInterval(() => send(d), perDeviceIntervalMs);
      }, (i / count) * perDeviceIntervalMs);
      return () => {
        clearTimeout(start);
        if (timer) clearInterval(timer);
      };
    });
    return () => stops.forEach((stop) => stop());
  }
  // Exponential gaps, scheduled against absolute times so that a late timer catches up
  // instead of lowering the rate.
  let next = performance.now();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    const now = performance.now();
    while (!stopped && next <= now) {
      next += (-Math.log(1 - Math.random()) * 1000) / target;
      send(devices[Math.floor(Math.random() * count)]!);
    }
    if (!stopped) timer = setTimeout(tick, Math.max(0, next - performance.now()));
  };
  tick();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}

/**
 * Offers `target` msgs/s; after a settling second (queues of the previous phase drain), each
 * PUBACK's latency is recorded for `durationMs`.
 */
async function measureLatencyOnce(
  devices: BenchDevice[],
  gw: BenchGateway,
  target: number,
  arrivals: Arrivals,
  durationMs: number,
): Promise<{ achieved: number; p50Ms: number; p99Ms: number; gatewayCores: number; loopDelayP99Ms: number; gcMsPerS: number; generatorCores: number; machineCores: number }> {
  const gatewayPid = gw.child.pid!;
  for (const d of devices) d.queue.length = 0;
  // Random device choice spreads unevenly: a margin, and message() signs if one runs dry.
  presign(devices, target * (1 + durationMs / 1000) * 1.5);
  const latencies: number[] = [];
  let sent = 0;
  let recording = false;
  const stop = offer(devices, target, arrivals, (d) => {
    const m = message(d);
    const ts = performance.now();
    if (!recording) {
      d.client!.publish(m.topic, m.payload, { qos: 1 });
      return;
    }
    sent++;
    d.client!.publish(m.topic, m.payload, { qos: 1 }, () => latencies.push(performance.now() - ts));
  });
  await new Promise((r) => setTimeout(r, 1000));
  // Asked before recording starts, so that the wait for the answer is in no window.
  const gc0 = await gw.gcPauses();
  recording = true;
  const loop = monitorEventLoopDelay({ resolution: 2 });
  loop.enable();
  const p0 = performance.now();
  const cpu0 = cpuSeconds(gatewayPid);
  const own0 = process.cpuUsage();
  const machine0 = machineTicks();
  await new Promise((r) => setTimeout(r, durationMs));
  stop();
  loop.disable();
  const machineCores = machineBusyCores(machine0, machineTicks());
  const own = process.cpuUsage(own0);
  const elapsedS = (performance.now() - p0) / 1000;
  const gatewayCores = (cpuSeconds(gatewayPid) - cpu0) / elapsedS;
  const generatorCores = (own.user + own.system) / 1e6 / elapsedS;
  const gc1 = await gw.gcPauses();
  const gcMsPerS = (gc1.scavengeMs + gc1.otherMs - gc0.scavengeMs - gc0.otherMs) / elapsedS;
  const achieved = sent / elapsedS;
  await new Promise((r) => setTimeout(r, 1000));
  return { achieved, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), gatewayCores, loopDelayP99Ms: loop.percentile(99) / 1e6, gcMsPerS, generatorCores, machineCores };
}

async function measureLatency(
  devices: BenchDevice[],
  gw: BenchGateway,
  target: number,
  fraction: number,
  arrivals: Arrivals,
  durationMs: number,
  rounds: number,
): Promise<LatencyFigure> {
  const results: Awaited<ReturnType<typeof measureLatencyOnce>>[] = [];
  for (let r = 0; r < rounds; r++) results.push(await measureLatencyOnce(devices, gw, target, arrivals, durationMs));
  const cores = median(results.map((x) => x.gatewayCores));
  const achieved = median(results.map((x) => x.achieved));
  return {
    fraction,
    arrivals,
    target: Math.round(target),
    achieved: Math.round(achieved),
    p50Ms: round2(median(results.map((x) => x.p50Ms))),
    p99Ms: round2(median(results.map((x) => x.p99Ms))),
    p99RoundsMs: results.map((x) => round2(x.p99Ms)),
    gatewayCores: round2(cores),
    gatewayUsPerMessage: Math.round((cores * 1e6) / achieved),
    generatorLoopDelayP99Ms: round2(median(results.map((x) => x.loopDelayP99Ms))),
    gatewayGcMsPerS: round2(median(results.map((x) => x.gcMsPerS))),
    generatorCores: round2(median(results.map((x) => x.generatorCores))),
    machineBusyCores: round2(median(results.map((x) => x.machineCores))),
  };
}

const round2 = (x: number): number => Number(x.toFixed(2));

export interface IngestRunConfig {
  devices: number;
  verifyWorkers: number | 'auto';
  /** Publishes each device keeps in flight at saturation (default: 2,000 over all devices, at least 2). */
  window?: number;
  /** The gateway's Ed25519 library (default 'auto'). */
  ed25519Verifier?: Ed25519VerifierChoice;
  /** Node.js flags for the gateway after the executable's own (cli/node-flags.ts), e.g. to turn one back. */
  nodeFlags?: string[];
}

/** The default saturation window: 2,000 publishes in flight in all, at least 2 per device. */
export const defaultWindow = (devices: number): number => Math.max(2, Math.ceil(2000 / devices));

/**
 * 100 devices with verification inline and on workers (to keep the faster), the workers once
 * more with node:crypto's Ed25519 instead of libsodium's (what the library choice is worth),
 * then 1,000: once with the same 2,000 publishes in flight in all (2 per device), once with
 * each device pipelining as the 100 do (20 in flight each).
 */
export const DEFAULT_INGEST_RUNS: IngestRunConfig[] = [
  { devices: 100, verifyWorkers: 0 },
  { devices: 100, verifyWorkers: 'auto' },
  { devices: 100, verifyWorkers: 'auto', ed25519Verifier: 'node' },
  { devices: 1000, verifyWorkers: 'auto' },
  { devices: 1000, verifyWorkers: 'auto', window: 20 },
];

/** Saturation rounds and latency rounds per configuration. */
export const DEFAULT_ROUNDS = 3;

export async function benchIngest(opts: { durationMs: number; runs?: IngestRunConfig[]; rounds?: number }): Promise<IngestFigures> {
  const roundsPerRun = opts.rounds ?? DEFAULT_ROUNDS;
  const cores = availableParallelism();
  const rawMs = Math.min(opts.durationMs, 2000);
  const rawOne = rawVerifyRate(rawMs, 'node');
  const sodiumOne = SODIUM_PATH === null ? null : rawVerifyRate(rawMs, 'libsodium');
  const rawAll = await rawRatesAllCores(rawMs, cores);
  const figures: IngestFigures = {
    rawVerifyPerSecOneCore: Math.round(rawOne),
    rawVerifyPerSecAllCores: Math.round(rawAll.node),
    rawSodiumPerSecOneCore: sodiumOne === null ? null : Math.round(sodiumOne),
    rawSodiumPerSecAllCores: rawAll.sodium === null ? null : Math.round(rawAll.sodium),
    cores,
    runs: [],
  };

  for (const run of opts.runs ?? DEFAULT_INGEST_RUNS) {
    const count = run.devices;
    const window = run.window ?? defaultWindow(count);
    const dataDir = mkdtempSync(join(tmpdir(), 'edgegw-bench-'));
    const label = `${count} devices, verify workers ${run.verifyWorkers}, ${window} in flight, Ed25519 ${run.ed25519Verifier ?? 'auto'}${run.nodeFlags?.length ? `, gateway flags ${run.nodeFlags.join(' ')}` : ''}`;
    note(`${label}: registering and connecting`);
    try {
      const registrar = await openRegistrar({ log: createLogger({ level: 'error' }), clock: systemClock }, dataDir);
      const devices: BenchDevice[] = [];
      for (let i = 0; i < count; i++) {
        const { privateKey } = generateKeyPairSync('ed25519');
        const pub = rawPublicKeyOf('EdDSA', privateKey);
        const reg = await registrar.register({ id: `b${i}`, alg: 'EdDSA', pub });
        devices.push({ id: `b${i}`, key: privateKey, certPem: reg.certPem, keyPem: createPrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' })).export({ type: 'pkcs8', format: 'pem' }) as string, seq: 0, signer: nodeSigner('EdDSA', privateKey), queue: [] });
      }
      registrar.close();
      const gw = await startGateway(dataDir, run.verifyWorkers, run.ed25519Verifier ?? 'auto', run.nodeFlags ?? []);
      const ca = readFileSync(gw.caFile, 'utf8');
      await new Promise((r) => setTimeout(r, 500));
      const rssBefore = rssKiB(gw.child.pid!);
      // Staggered connects, 50 at a time. The memory a connection keeps is measured from the
      // end of the first 50, whose connects also compile and warm up the code they run.
      const FIRST = 50;
      let gcAfterFirst: GcMemory | undefined;
      for (let i = 0; i < devices.length; i += 50) {
        if (i === FIRST) gcAfterFirst = await gw.memoryAfterGc();
        await Promise.all(devices.slice(i, i + 50).map((d) => new Promise<void>((resolve, reject) => {
          const options: IClientOptions & { allowPartialTrustChain: boolean } = {
            protocol: 'mqtts', host: '127.0.0.1', port: gw.port, clientId: d.id, cert: d.certPem, key: d.keyPem, ca,
            servername: 'localhost', allowPartialTrustChain: true, reconnectPeriod: 0, keepalive: 60, protocolVersion: 4,
          };
          const c = mqtt.connect(options);
          c.once('connect', () => {
            (c.stream as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
            d.client = c;
            resolve();
          });
          c.once('error', reject);
        })));
      }
      await new Promise((r) => setTimeout(r, 1000));
      const rssPerDevice = (rssKiB(gw.child.pid!) - rssBefore) / count;
      // What each connection keeps, once the garbage of the handshakes is collected.
      const gcAfter = await gw.memoryAfterGc();
      const later = count - FIRST;
      const keptPerDevice = gcAfterFirst === undefined || later <= 0
        ? { rss: Number.NaN, heap: Number.NaN }
        : { rss: (gcAfter.rssKiB - gcAfterFirst.rssKiB) / later, heap: (gcAfter.heapUsedKiB - gcAfterFirst.heapUsedKiB) / later };

      const walSampler = sampleLargestSize(join(dataDir, 'edgegw.db-wal'));

      const rounds: SaturationRound[] = [];
      // The raw rate right before and right after each saturation round, with the gateway
      // idle: the "after" of one round is the "before" of the next.
      let rawBefore = await rawRatesAllCores(1000, cores);
      for (let r = 0; r < roundsPerRun; r++) {
        note(`${label}: saturation round ${r + 1} of ${roundsPerRun}`);
        // Enough pre-signed messages for the warm-up and the measured window at up to 24,000/s
        // (the raw 2-core verify rate of an idle machine); signing on the fly would slow the
        // load generator, which shares the cores.
        for (const d of devices) d.queue.length = 0;
        presign(devices, 24_000 * (1 + opts.durationMs / 1000));
        const round = await saturate(devices, gw.child.pid!, opts.durationMs, window);
        const rawAfter = await rawRatesAllCores(1000, cores);
        const sodiumBefore = rawBefore.sodium;
        const sodiumAfter = rawAfter.sodium;
        rounds.push({
          ...round,
          rawAllCoresAround: [Math.round(rawBefore.node), Math.round(rawAfter.node)],
          ratioToRawAllCores: Number((round.acksPerSec / ((rawBefore.node + rawAfter.node) / 2)).toFixed(3)),
          rawSodiumAllCoresAround: sodiumBefore === null || sodiumAfter === null ? null : [Math.round(sodiumBefore), Math.round(sodiumAfter)],
          ratioToRawSodiumAllCores: sodiumBefore === null || sodiumAfter === null ? null : Number((round.acksPerSec / ((sodiumBefore + sodiumAfter) / 2)).toFixed(3)),
        });
        rawBefore = rawAfter;
      }
      const maxRate = median(rounds.map((r) => r.acksPerSec));
      const ratios = rounds.map((r) => r.ratioToRawAllCores);
      const sodiumRatios = rounds.flatMap((r) => (r.ratioToRawSodiumAllCores === null ? [] : [r.ratioToRawSodiumAllCores]));

      // Phase 2: PUBACK latency at half and at a quarter of the maximum rate.
      const latency: LatencyFigure[] = [];
      for (const fraction of LATENCY_FRACTIONS) {
        for (const arrivals of ARRIVALS) {
          note(`${label}: latency at ${fraction} of the maximum, ${arrivals}`);
          latency.push(await measureLatency(devices, gw, maxRate * fraction, fraction, arrivals, opts.durationMs, roundsPerRun));
        }
      }
      const walMax = walSampler.stop();
      const half = latency[0]!;
      for (const d of devices) d.client?.end(true);
      gw.child.kill('SIGTERM');
      await new Promise((r) => gw.child.once('exit', r));
      figures.runs.push({
        devices: count,
        ed25519Verifier: gw.ed25519Verifier,
        verifyWorkers: run.verifyWorkers,
        window,
        nodeFlags: run.nodeFlags ?? [],
        maxAcksPerSec: Math.round(maxRate),
        ratioToRawAllCores: Number(median(ratios).toFixed(3)),
        ratioRange: [Math.min(...ratios), Math.max(...ratios)],
        ratioToRawSodiumAllCores: sodiumRatios.length === 0 ? null : Number(median(sodiumRatios).toFixed(3)),
        sodiumRatioRange: sodiumRatios.length === 0 ? null : [Math.min(...sodiumRatios), Math.max(...sodiumRatios)],
        rounds,
        gatewayCores: median(rounds.map((r) => r.gatewayCores)),
        loadGeneratorCores: median(rounds.map((r) => r.loadGeneratorCores)),
        halfRateTarget: half.target,
        halfRateAchieved: half.achieved,
        p50Ms: half.p50Ms,
        p99Ms: half.p99Ms,
        latency,
        rssPerDeviceKiB: Number(rssPerDevice.toFixed(1)),
        keptPerDeviceKiB: { rss: Number(keptPerDevice.rss.toFixed(1)), heap: Number(keptPerDevice.heap.toFixed(1)) },
        walMaxMiB: Number((walMax / 1048576).toFixed(1)),
      });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  return figures;
}

/** One saturation round: every device keeps a window of publishes in flight. */
async function saturate(devices: BenchDevice[], gatewayPid: number, durationMs: number, window: number): Promise<Omit<SaturationRound, 'rawAllCoresAround' | 'ratioToRawAllCores' | 'rawSodiumAllCoresAround' | 'ratioToRawSodiumAllCores'>> {
  let acks = 0;
  let running = true;
  const pumps = devices.map((d) => new Promise<void>((resolve) => {
    let inflight = 0;
    const pump = (): void => {
      while (running && inflight < window) {
        const m = message(d);
        inflight++;
        d.client!.publish(m.topic, m.payload, { qos: 1 }, () => {
          inflight--;
          acks++;
          if (running) pump();
          else if (inflight === 0) resolve();
        });
      }
    };
    pump();
  }));
  await new Promise((r) => setTimeout(r, 1000)); // warm-up
  const a0 = acks;
  const t0 = performance.now();
  const gwCpu0 = cpuSeconds(gatewayPid);
  const ownCpu0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, durationMs));
  const elapsedS = (performance.now() - t0) / 1000;
  const acksPerSec = Math.round((acks - a0) / elapsedS);
  const gatewayCores = Number(((cpuSeconds(gatewayPid) - gwCpu0) / elapsedS).toFixed(2));
  const ownCpu = process.cpuUsage(ownCpu0);
  const loadGeneratorCores = Number(((ownCpu.user + ownCpu.system) / 1e6 / elapsedS).toFixed(2));
  running = false;
  await Promise.race([Promise.all(pumps), new Promise((r) => setTimeout(r, 5000))]);
  return { acksPerSec, gatewayCores, loadGeneratorCores };
}

export function formatIngestTable(f: IngestFigures): string {
  const lines = [
    `raw node:crypto Ed25519 verify: ${f.rawVerifyPerSecOneCore}/s on one core, ${f.rawVerifyPerSecAllCores}/s on ${f.cores} cores`,
    f.rawSodiumPerSecOneCore === null
      ? 'raw libsodium Ed25519 verify: not available here'
      : `raw libsodium Ed25519 verify: ${f.rawSodiumPerSecOneCore}/s on one core, ${f.rawSodiumPerSecAllCores}/s on ${f.cores} cores`,
    '',
    'devices | Ed25519 library | verify workers | in flight per device | max acks/s, median (rounds) | ratio to raw node:crypto all-core, median (range) | ratio to raw libsodium all-core, median (range) | raw node / libsodium before-after, per round | CPU cores gateway + load generator (gateway µs/msg) | RSS/device KiB: growth over the connects; kept per connection after a full GC, past the first 50 (of it JS heap) | largest -wal file MiB',
  ];
  /** The library column, with any flags the gateway was given beyond its own. */
  const library = (r: IngestFigures['runs'][number]): string => (r.nodeFlags.length === 0 ? r.ed25519Verifier : `${r.ed25519Verifier} [${r.nodeFlags.join(' ')}]`);
  for (const r of f.runs) {
    const rates = r.rounds.map((x) => x.acksPerSec).join(', ');
    const raws = r.rounds
      .map((x) => `${x.rawAllCoresAround[0]}-${x.rawAllCoresAround[1]}${x.rawSodiumAllCoresAround ? ` / ${x.rawSodiumAllCoresAround[0]}-${x.rawSodiumAllCoresAround[1]}` : ''}`)
      .join(', ');
    const sodium = r.ratioToRawSodiumAllCores === null ? '-' : `${r.ratioToRawSodiumAllCores} (${r.sodiumRatioRange![0]}-${r.sodiumRatioRange![1]})`;
    lines.push(`${r.devices} | ${library(r)} | ${r.verifyWorkers} | ${r.window} | ${r.maxAcksPerSec} (${rates}) | ${r.ratioToRawAllCores} (${r.ratioRange[0]}-${r.ratioRange[1]}) | ${sodium} | ${raws} | ${r.gatewayCores} + ${r.loadGeneratorCores} (${Math.round((r.gatewayCores * 1e6) / r.maxAcksPerSec)}) | ${r.rssPerDeviceKiB}; ${r.keptPerDeviceKiB.rss} (${r.keptPerDeviceKiB.heap}) | ${r.walMaxMiB}`);
  }
  lines.push('', `devices | Ed25519 library | verify workers | in flight per device at max | fraction of max | arrivals | target/achieved per s | p50 ms | p99 ms, median (rounds) | gateway cores (µs/msg) | load generator event-loop delay p99 ms | gateway main-thread GC pauses ms/s | load generator cores | machine busy cores, of ${f.cores}`);
  for (const r of f.runs) {
    for (const l of r.latency) {
      lines.push(`${r.devices} | ${library(r)} | ${r.verifyWorkers} | ${r.window} | ${l.fraction} | ${l.arrivals} | ${l.target}/${l.achieved} | ${l.p50Ms} | ${l.p99Ms} (${l.p99RoundsMs.join(', ')}) | ${l.gatewayCores} (${l.gatewayUsPerMessage}) | ${l.generatorLoopDelayP99Ms} | ${l.gatewayGcMsPerS} | ${l.generatorCores} | ${l.machineBusyCores}`);
    }
  }
  return lines.join('\n');
}
