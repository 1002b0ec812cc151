/**
 * The relay, end to end, in one run: a real `edgegw start` child process with `--upstream`
 * to a real `edgegw cloud-sim` child process (mutual TLS on loopback, every record
 * re-verified by the cloud), mqtt.js devices publishing QoS 1 over TLS. Figures:
 *  - live: ingest acks/s with devices saturating the gateway and the relay running, the
 *    records/s reaching the cloud in the same window, and the outbox's peak (a relay that
 *    keeps up holds it near one batch age of ingest);
 *  - capacity: the relay's drain rate of a backlog with no ingest, and its ratio to the live
 *    ingest rate (issue 4: the relay must never be the bottleneck, ≥ 2×);
 *  - backlog: a 1,000,000-record outbox drained after an outage while devices keep publishing
 *    at a quarter of the live maximum: drain time, the gateway's peak RSS (VmHWM), and the
 *    ingest rate and p99 PUBACK latency during the drain against the same offered load without
 *    a backlog.
 * Backlogs are written straight into the stopped gateway's store through its ingest path
 * (real signed COSE_Sign1 messages), which is what an outage leaves behind.
 */
import { generateKeyPairSync, createPrivateKey, type KeyObject } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import mqtt, { type MqttClient } from 'mqtt';
import { Agent, request } from 'undici';
import { openRegistrar, dataPaths, createStore, readStatus } from '../gateway/index.js';
import { DEFAULT_STORE_LIMITS } from '../gateway/store/index.js';
import { buildDeviceExport } from '../cloud-sim/index.js';
import { createLogger } from '../common/log.js';
import { systemClock } from '../common/clock.js';
import { nodeSigner, rawPublicKeyOf, signSign1, encodeTelemetryPayload, telemetryTopic, type Signer } from '../protocol/index.js';
import { edgegwArgv } from '../cli/node-flags.js';
import { defaultWindow } from './ingest.js';
import { percentile, sampleLargestSize } from './stats.js';

export interface RelayFigures {
  devices: number;
  live: { ingestPerSec: number; relayedPerSec: number; peakOutboxRows: number };
  /** walMaxMiB: the largest the gateway's -wal file grew in the phase (the relay's deletions alone). */
  capacity: { records: number; seconds: number; perSec: number; ratioToIngest: number; walMaxMiB: number };
  backlog: {
    records: number;
    fillSeconds: number;
    /** False when the time limit ended the phase first: the figures are then for what drained. */
    completed: boolean;
    drainSeconds: number;
    /** Backlog records gone from the outbox per second (the relay also carried live ingest). */
    drainPerSec: number;
    peakRssMiB: number;
    offeredPerSec: number;
    ingestWithoutBacklogPerSec: number;
    ingestDuringDrainPerSec: number;
    ingestRatio: number;
    p99WithoutBacklogMs: number;
    p99DuringDrainMs: number;
    /** The largest the gateway's -wal file grew during the drain, with live ingest. */
    walMaxMiB: number;
  };
  cloud: { stored: number; rejected: number; duplicates: number };
}

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const utf8 = new TextEncoder();

interface Dev {
  id: string;
  signer: Signer;
  key: KeyObject;
  pub: Uint8Array;
  seq: number;
  certPem?: string;
  keyPem?: string;
  client?: MqttClient;
}

function makeDevices(prefix: string, n: number): Dev[] {
  return Array.from({ length: n }, (_, i) => {
    const { privateKey } = generateKeyPairSync('ed25519');
    return { id: `${prefix}${i}`, signer: nodeSigner('EdDSA', privateKey), key: privateKey, pub: rawPublicKeyOf('EdDSA', privateKey), seq: 0 };
  });
}

function signed(d: Dev): { topic: string; cose: Uint8Array; seq: number; ts: number } {
  const topic = telemetryTopic(d.id, 'bench');
  const seq = ++d.seq;
  const ts = Date.now();
  return { topic, seq, ts, cose: signSign1(d.signer, encodeTelemetryPayload({ seq, ts, body: { v: seq } }), utf8.encode(topic)) };
}

function child(args: string[]): Promise<{ proc: ChildProcess; ready: Record<string, unknown> }> {
  const proc = spawn(process.execPath, edgegwArgv(CLI, args), { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', (line) => resolve({ proc, ready: JSON.parse(line) as Record<string, unknown> }));
    proc.once('exit', (code) => reject(new Error(`${args[0]} exited ${code}`)));
  });
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await exited;
}

function peakRssKiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Progress on stderr: the run takes minutes, and stdout is for the figures. */
const note = (msg: string) => process.stderr.write(`bench relay: ${msg}\n`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes `records` signed messages of `devs` into the stopped gateway's outbox. */
async function fillBacklog(dbPath: string, devs: Dev[], records: number): Promise<number> {
  const t0 = performance.now();
  const store = createStore({ clock: systemClock, log: createLogger({ level: 'error' }) }, { path: dbPath, ...DEFAULT_STORE_LIMITS, maxOutboxRows: 10_000_000, maxOutboxBytes: 8 << 30 });
  try {
    for (let done = 0; done < records; ) {
      const chunk = Math.min(10_000, records - done);
      const commits: Promise<void>[] = [];
      for (let i = 0; i < chunk; i++) {
        const d = devs[(done + i) % devs.length]!;
        const m = signed(d);
        commits.push(store.ingest.commit({ deviceId: d.id, kid: d.signer.kid, seq: m.seq, ts: m.ts, rxMs: m.ts, topic: m.topic, cose: m.cose }));
      }
      await Promise.all(commits);
      done += chunk;
    }
  } finally {
    store.close();
  }
  return (performance.now() - t0) / 1000;
}

async function connectAll(devs: Dev[], port: number, ca: string): Promise<void> {
  for (let i = 0; i < devs.length; i += 50) {
    await Promise.all(devs.slice(i, i + 50).map((d) => new Promise<void>((resolve, reject) => {
      const c = mqtt.connect({
        protocol: 'mqtts', host: '127.0.0.1', port, clientId: d.id, cert: d.certPem!, key: d.keyPem!, ca,
        servername: 'localhost', allowPartialTrustChain: true, reconnectPeriod: 0, keepalive: 60, protocolVersion: 4,
      } as mqtt.IClientOptions);
      c.once('connect', () => {
        d.client = c;
        resolve();
      });
      c.once('error', reject);
    })));
  }
}

function disconnectAll(devs: Dev[]): void {
  for (const d of devs) d.client?.end(true);
}

/**
 * Saturating load: each device keeps a window of publishes in flight. Returns acks/s over the
 * measured window, after a warm-up; `window` is called at its start and end.
 */
async function saturate(devs: Dev[], durationMs: number, window: { start(): Promise<void>; end(): Promise<void> }): Promise<number> {
  const inflightMax = defaultWindow(devs.length);
  let acks = 0;
  let running = true;
  const pumps = devs.map((d) => new Promise<void>((resolve) => {
    let inflight = 0;
    const pump = (): void => {
      while (running && inflight < inflightMax) {
        const m = signed(d);
        inflight++;
        d.client!.publish(m.topic, Buffer.from(m.cose), { qos: 1 }, () => {
          inflight--;
          acks++;
          if (running) pump();
          else if (inflight === 0) resolve();
        });
      }
    };
    pump();
  }));
  await sleep(1000);
  await window.start();
  const a0 = acks;
  const t0 = performance.now();
  await sleep(durationMs);
  const rate = (acks - a0) / ((performance.now() - t0) / 1000);
  await window.end();
  running = false;
  await Promise.race([Promise.all(pumps), sleep(5000)]);
  return rate;
}

/** Open-loop load at `perSec`, spread evenly over the devices, until `until()` says stop. */
async function offered(devs: Dev[], perSec: number, until: () => Promise<boolean>): Promise<{ ackedPerSec: number; p99Ms: number }> {
  const intervalMs = (1000 * devs.length) / perSec;
  const latencies: number[] = [];
  let acked = 0;
  const timers = devs.map((d, i) => {
    let timer: NodeJS.Timeout | undefined;
    const start = setTimeout(() => {
      timer = setInterval(() => {
        const m = signed(d);
        const ts = performance.now();
        d.client!.publish(m.topic, Buffer.from(m.cose), { qos: 1 }, () => {
          acked++;
          latencies.push(performance.now() - ts);
        });
      }, intervalMs);
    }, (i / devs.length) * intervalMs);
    return () => {
      clearTimeout(start);
      if (timer) clearInterval(timer);
    };
  });
  const t0 = performance.now();
  while (!(await until())) await sleep(250);
  const seconds = (performance.now() - t0) / 1000;
  for (const s of timers) s();
  const ackedPerSec = acked / seconds;
  await sleep(1000);
  return { ackedPerSec, p99Ms: percentile(latencies, 99) };
}

export async function benchRelay(opts: {
  durationMs: number;
  backlogRecords?: number;
  capacityRecords?: number;
  devices?: number;
  drainLimitMs?: number;
  /** Offered load in phases 2 and 4, as a fraction of the live maximum (default 0.25). */
  loadFraction?: number;
}): Promise<RelayFigures> {
  const backlogRecords = opts.backlogRecords ?? 1_000_000;
  const capacityRecords = opts.capacityRecords ?? 200_000;
  const liveCount = opts.devices ?? 100;
  const root = mkdtempSync(join(tmpdir(), 'edgegw-bench-relay-'));
  const gwDir = join(root, 'gateway');
  const cloudDir = join(root, 'cloud');
  const procs: ChildProcess[] = [];
  const live = makeDevices('live', liveCount);
  const backlogDevs = makeDevices('bk', 50);
  try {
    // Devices registered with the gateway, and the same fleet exported to the cloud.
    const registrar = await openRegistrar({ log: createLogger({ level: 'error' }), clock: systemClock }, gwDir);
    for (const d of [...live, ...backlogDevs]) {
      const reg = await registrar.register({ id: d.id, alg: 'EdDSA', pub: d.pub });
      d.certPem = reg.certPem;
      d.keyPem = createPrivateKey(d.key.export({ type: 'pkcs8', format: 'pem' })).export({ type: 'pkcs8', format: 'pem' }) as string;
    }
    registrar.close();
    const devicesFile = join(root, 'devices.json');
    writeFileSync(devicesFile, buildDeviceExport([...live, ...backlogDevs].map((d) => ({ id: d.id, alg: 'EdDSA', pub: d.pub, kid: d.signer.kid }))));

    const cloud = await child(['cloud-sim', '--data-dir', cloudDir, '--port', '0', '--devices', devicesFile, '--log-level', 'error']);
    procs.push(cloud.proc);
    const c = cloud.ready as { url: string; caFile: string; clientCertFile: string; clientKeyFile: string };
    const agent = new Agent({ connect: { ca: readFileSync(c.caFile, 'utf8'), cert: readFileSync(c.clientCertFile, 'utf8'), key: readFileSync(c.clientKeyFile, 'utf8') } });
    const cloudStats = async () => (await (await request(`${c.url}/v1/stats`, { dispatcher: agent })).body.json()) as { stored: { records: number; rejected: number }; duplicateRecords: number };

    const gatewayArgs = ['start', '--data-dir', gwDir, '--host', '127.0.0.1', '--mqtts-port', '0', '--publish-rate', '1000000', '--log-level', 'error',
      '--upstream', c.url, '--upstream-ca', c.caFile, '--upstream-cert', c.clientCertFile, '--upstream-key', c.clientKeyFile];
    const startGateway = async () => {
      const g = await child(gatewayArgs);
      procs.push(g.proc);
      return { proc: g.proc, port: g.ready.mqttsPort as number, ca: readFileSync(g.ready.caFile as string, 'utf8') };
    };
    const outboxRows = () => readStatus(dataPaths(gwDir).db).counters.outbox_rows ?? 0;
    const waitDrained = async (timeoutMs: number) => {
      const until = performance.now() + timeoutMs;
      while (outboxRows() > 0 && performance.now() < until) await sleep(200);
      if (outboxRows() > 0) throw new Error(`the outbox did not drain within ${timeoutMs} ms`);
    };

    // 1. Live: devices saturate the gateway while the relay runs.
    note(`live phase, ${liveCount} devices`);
    let gw = await startGateway();
    await connectAll(live, gw.port, gw.ca);
    let s0 = 0;
    let t0 = 0;
    let relayedPerSec = 0;
    let peakOutbox = 0;
    const sampler = setInterval(() => (peakOutbox = Math.max(peakOutbox, outboxRows())), 250);
    const ingestPerSec = await saturate(live, opts.durationMs, {
      async start() {
        s0 = (await cloudStats()).stored.records;
        t0 = performance.now();
        peakOutbox = 0;
      },
      async end() {
        relayedPerSec = ((await cloudStats()).stored.records - s0) / ((performance.now() - t0) / 1000);
      },
    });
    clearInterval(sampler);
    await waitDrained(120_000);

    const fraction = opts.loadFraction ?? 0.25;
    note(`live ingest ${Math.round(ingestPerSec)}/s, relayed ${Math.round(relayedPerSec)}/s; offered ${fraction} of it`);
    // 2. The same fleet at a fraction of that rate (a quarter by default: a gateway sized for
    // its fleet, with room for the drain after an outage), no backlog: the baseline for phase 4.
    const offeredPerSec = Math.max(100, Math.round(ingestPerSec * fraction));
    const baseEnd = performance.now() + opts.durationMs;
    const base = await offered(live, offeredPerSec, async () => performance.now() >= baseEnd);
    disconnectAll(live);
    await stop(gw.proc);

    // 3. Capacity: a backlog drained with no ingest at all.
    note(`capacity phase: ${capacityRecords} records`);
    await fillBacklog(dataPaths(gwDir).db, backlogDevs, capacityRecords);
    // Timed from the gateway's ready line (process start-up is not the relay's), over the rows left then.
    const walPath = `${dataPaths(gwDir).db}-wal`;
    gw = await startGateway();
    const c0 = performance.now();
    const capRows = outboxRows();
    const capWal = sampleLargestSize(walPath);
    await waitDrained(600_000);
    const capSeconds = (performance.now() - c0) / 1000;
    const capWalMax = capWal.stop();
    await stop(gw.proc);

    note(`capacity ${Math.round(capRows / capSeconds)}/s; filling ${backlogRecords} records`);
    // 4. A 1,000,000-record backlog, drained while the fleet keeps publishing at the phase-2 rate.
    const fillSeconds = await fillBacklog(dataPaths(gwDir).db, backlogDevs, backlogRecords);
    note(`filled in ${fillSeconds.toFixed(0)} s; draining with live ingest at ${offeredPerSec}/s`);
    const d0 = performance.now();
    gw = await startGateway();
    const drainWal = sampleLargestSize(walPath);
    await connectAll(live, gw.port, gw.ca);
    // Drained: what is left is the last second of live ingest, not the backlog.
    const drainLimit = performance.now() + (opts.drainLimitMs ?? 3_600_000);
    let leftAtEnd = 0;
    const during = await offered(live, offeredPerSec, async () => {
      leftAtEnd = outboxRows();
      return leftAtEnd < Math.max(1000, offeredPerSec) || performance.now() > drainLimit;
    });
    const completed = leftAtEnd < Math.max(1000, offeredPerSec);
    const drainSeconds = (performance.now() - d0) / 1000;
    const drainWalMax = drainWal.stop();
    const peakRssMiB = peakRssKiB(gw.proc.pid!) / 1024;
    disconnectAll(live);
    await waitDrained(60_000);
    await stop(gw.proc);

    const final = await cloudStats();
    await agent.close();
    return {
      devices: liveCount,
      live: { ingestPerSec: Math.round(ingestPerSec), relayedPerSec: Math.round(relayedPerSec), peakOutboxRows: peakOutbox },
      capacity: {
        records: capacityRecords,
        seconds: Number(capSeconds.toFixed(1)),
        perSec: Math.round(capRows / capSeconds),
        ratioToIngest: Number((capRows / capSeconds / ingestPerSec).toFixed(2)),
        walMaxMiB: mib(capWalMax),
      },
      backlog: {
        records: backlogRecords,
        fillSeconds: Number(fillSeconds.toFixed(1)),
        completed,
        drainSeconds: Number(drainSeconds.toFixed(1)),
        drainPerSec: Math.round((backlogRecords - (completed ? 0 : leftAtEnd)) / drainSeconds),
        peakRssMiB: Number(peakRssMiB.toFixed(1)),
        offeredPerSec,
        ingestWithoutBacklogPerSec: Math.round(base.ackedPerSec),
        ingestDuringDrainPerSec: Math.round(during.ackedPerSec),
        ingestRatio: Number((during.ackedPerSec / base.ackedPerSec).toFixed(2)),
        p99WithoutBacklogMs: Number(base.p99Ms.toFixed(1)),
        p99DuringDrainMs: Number(during.p99Ms.toFixed(1)),
        walMaxMiB: mib(drainWalMax),
      },
      cloud: { stored: final.stored.records, rejected: final.stored.rejected, duplicates: final.duplicateRecords },
    };
  } finally {
    disconnectAll(live);
    for (const p of procs) await stop(p);
    rmSync(root, { recursive: true, force: true });
  }
}

const mib = (bytes: number): number => Number((bytes / 1048576).toFixed(1));

export function formatRelayTable(f: RelayFigures): string {
  const b = f.backlog;
  return [
    `live, ${f.devices} devices saturating: ingest ${f.live.ingestPerSec} acks/s, relayed to the cloud ${f.live.relayedPerSec} records/s in the same window, outbox peak ${f.live.peakOutboxRows} rows`,
    `relay capacity (${f.capacity.records} records, no ingest): ${f.capacity.perSec} records/s in ${f.capacity.seconds} s = ${f.capacity.ratioToIngest}x the live ingest rate, largest -wal file ${f.capacity.walMaxMiB} MiB`,
    `backlog of ${b.records} (filled in ${b.fillSeconds} s): ${b.completed ? 'drained in' : 'NOT drained within'} ${b.drainSeconds} s (${b.drainPerSec} records/s), gateway peak RSS ${b.peakRssMiB} MiB, largest -wal file ${b.walMaxMiB} MiB`,
    `ingest at ${b.offeredPerSec}/s offered: ${b.ingestWithoutBacklogPerSec}/s without a backlog (p99 ${b.p99WithoutBacklogMs} ms), ${b.ingestDuringDrainPerSec}/s during the drain (p99 ${b.p99DuringDrainMs} ms) = ${Math.round(b.ingestRatio * 100)}%`,
    `cloud: ${f.cloud.stored} records stored, ${f.cloud.rejected} failed re-verification, ${f.cloud.duplicates} duplicates dropped`,
  ].join('\n');
}
