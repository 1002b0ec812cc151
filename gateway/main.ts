/**
 * The composition root: the one place that knows every stage of the gateway and wires
 * them in data-flow order (zigbee2mqtt's lib/controller.ts is the model).
 *
 *   broker -> policy -> ingest (verify/, worker pool) -> store (outbox) -> relay -> cloud
 *                                      \-> alerts (audit trail, live events)
 *
 * start() brings the parts up in order; stop() takes them down in reverse and keeps going
 * when one part fails, so the database is always closed cleanly.
 */
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import { EdgegwError } from '../common/errors.js';
import { createPki, type Pki } from '../provisioning/pki/index.js';
import {
  commandTopic,
  encodeCommandPayload,
  signSign1,
  importPublicKey,
  kidOf,
  decodeSign1,
  verifySign1,
  parseRotationBody,
  parsePopPayload,
  selectEd25519Verifier,
  type CoseAlg,
  type Ed25519Verifier,
} from '../protocol/index.js';
import { createBroker, type Broker } from '../broker/index.js';
import { createStore, DEFAULT_STORE_LIMITS, type Store } from './store/index.js';
import { createAlerts, type Alerts } from './alerts/index.js';
import { createVerifierPool, type VerifierPool } from './verify/pool.js';
import { createIngest, type IngestOutcome } from './ingest.js';
import { createPolicy } from './policy.js';
import { createRegistryView, type CachedRegistry } from './registry-view.js';
import { loadOrCreateIdentity, dataPaths, type GatewayIdentity } from './identity.js';
import type { GatewayConfig } from './config.js';
import { createRelay } from './relay/index.js';
import { createLatencyRecorder, type LatencyRecorder } from './latency.js';
import { ownMark } from './liveness.js';
import { createRuntimeRows, type MemoryMiB } from './runtime-rows.js';

export interface ReadyInfo {
  msg: 'ready';
  gatewayId: string;
  mqttsPort: number;
  mqttPort: number | null;
  caFile: string;
  dataDir: string;
  gatewayPublicKey: string;
  verifyWorkers: number;
  /** The library that checks Ed25519 signatures (config `ed25519Verifier`). */
  ed25519Verifier: Ed25519Verifier;
}

export interface Gateway {
  start(): Promise<ReadyInfo>;
  stop(): Promise<void>;
  /** Sends a signed command (PROTOCOL.md §6) to a device. */
  sendCommand(deviceId: string, name: string, body: unknown, ttlMs?: number): Promise<void>;
  readonly store: Store;
  readonly alerts: Alerts;
  /** Checks sent to the verify workers since start, and in how many batches (zeros without workers). */
  verifyStats(): { batches: number; jobs: number };
}

const utf8 = new TextEncoder();

/** The process's memory, MiB to a tenth, for `edgegw status` (a Raspberry Pi has little). */
function memoryMiB(): MemoryMiB {
  const m = process.memoryUsage();
  const mib = (bytes: number): number => Math.round(bytes / 104_857.6) / 10;
  return { rss: mib(m.rss), heapUsed: mib(m.heapUsed), external: mib(m.external) };
}

export interface GatewayDeps {
  log: Logger;
  clock: Clock;
  /** The verify workers' module, only for tests that run a worker failing on purpose. */
  verifyWorkerUrl?: URL;
}

export function createGateway(deps: GatewayDeps, config: GatewayConfig): Gateway {
  const { log, clock } = deps;
  const paths = dataPaths(config.dataDir);
  let identity: GatewayIdentity | undefined;
  let store: Store | undefined;
  let pki: Pki | undefined;
  let alerts: Alerts | undefined;
  let pool: VerifierPool | undefined;
  let registry: CachedRegistry | undefined;
  let broker: Broker | undefined;
  let relay: ReturnType<typeof createRelay> | undefined;
  const timers: NodeJS.Timeout[] = [];
  let connected = 0;
  let highWaterRaised = false;
  let latency: LatencyRecorder | undefined;
  const runtimeRows = createRuntimeRows();
  let runtimeWriteFailed = false;
  let stopped = false;

  async function sendCommand(deviceId: string, name: string, body: unknown, ttlMs = 3_600_000): Promise<void> {
    if (!identity || !store || !broker) throw new Error('gateway not started');
    const topic = commandTopic(deviceId, name);
    const now = clock.now();
    const payload = encodeCommandPayload({ seq: store.nextCommandSeq(deviceId), ts: now, body, expiry: now + ttlMs });
    // The command's seq (and, for `rotated`, the new key) must outlive a power cut before
    // the device acts on it, or a restarted gateway could reuse the seq or forget the key.
    await store.sync();
    await broker.publish(topic, signSign1(identity.signer, payload, utf8.encode(topic)));
  }

  /** PROTOCOL.md §5: the outer message passed §3; now the body and its proof of possession. */
  async function rotateKey(deviceId: string, outcome: Extract<IngestOutcome, { status: 'accepted' }>, topic: string): Promise<void> {
    const body = parseRotationBody(outcome.verified.body);
    const refuse = (detail: string): void =>
      alerts!.raise({ kind: 'key_rotation_refused', code: 'EDGEGW_COSE_BAD_SIGNATURE', severity: 'critical', deviceId, detail });
    if (!body.ok) return refuse(`bad rotation body: ${body.reason}`);
    const alg = body.value.alg as CoseAlg;
    const key = importPublicKey(alg, body.value.publicKey);
    if (!key.ok) return refuse('new key is not a valid public key');
    const pop = decodeSign1(body.value.pop);
    if (!pop.ok) return refuse(`pop: ${pop.reason}`);
    const sig = verifySign1(pop.value, key.value, utf8.encode(topic));
    if (!sig.ok) return refuse('proof of possession of the new key failed');
    const popPayload = parsePopPayload(pop.value.payload);
    if (!popPayload.ok || popPayload.value.deviceId !== deviceId || popPayload.value.seq !== outcome.verified.seq) {
      return refuse('proof of possession does not name this device and seq');
    }
    const kid = kidOf(body.value.publicKey);
    store!.registry.rotateKey(deviceId, { alg, pub: body.value.publicKey, kid }, config.keyGraceS * 1000);
    const cert = await pki!.issueDeviceCert({ deviceId, alg, publicKeyRaw: body.value.publicKey });
    store!.registry.recordCert({ serial: cert.serialHex, deviceId, kid, notAfterMs: cert.notAfterMs });
    registry!.reload();
    alerts!.raise({ kind: 'key_rotated', severity: 'info', deviceId, detail: Buffer.from(kid).toString('hex') });
    await sendCommand(deviceId, 'rotated', new Map<number, unknown>([[1, kid], [2, cert.der]]));
  }

  function watchRegistry(): void {
    if (!store || !registry) return;
    if (store.changedExternally()) {
      for (const deviceId of registry.reload()) {
        if (broker?.disconnect(deviceId)) {
          alerts!.raise({ kind: 'session_closed', code: 'EDGEGW_BROKER_DEVICE_NOT_ACTIVE', severity: 'warning', deviceId, detail: 'device revoked or quarantined' });
        }
      }
    }
  }

  function watchOutbox(): void {
    if (!store) return;
    const usage = store.ingest.usage();
    const frac = Math.max(usage.rows / config.outbox.maxRows, usage.bytes / config.outbox.maxBytes);
    if (frac >= config.outbox.highWaterFraction && !highWaterRaised) {
      highWaterRaised = true;
      alerts!.raise({ kind: 'outbox_high_water', code: 'EDGEGW_STORE_OUTBOX_FULL', severity: 'critical', detail: `outbox at ${Math.round(frac * 100)}%` });
    } else if (frac < config.outbox.highWaterFraction * 0.9) highWaterRaised = false;
    const window = latency?.roll(clock.now());
    const changes = runtimeRows.changes(clock.now(), { connected, memory: memoryMiB(), ...(window ? { window } : {}) });
    if (Object.keys(changes).length === 0) return;
    try {
      store.setRuntime(changes);
      runtimeWriteFailed = false;
    } catch (err) {
      // A full disk: status's rows wait for the next tick; the gateway goes on (ingest says so itself).
      runtimeRows.forget();
      if (!runtimeWriteFailed) log.warn({ err }, 'could not record the runtime for edgegw status; retrying each second');
      runtimeWriteFailed = true;
    }
  }

  return {
    get store() {
      if (!store) throw new Error('gateway not started');
      return store;
    },
    get alerts() {
      if (!alerts) throw new Error('gateway not started');
      return alerts;
    },
    sendCommand,
    verifyStats: () => pool?.stats() ?? { batches: 0, jobs: 0 },
    async start() {
      stopped = false;
      // First: a verifier asked for by name that cannot load stops the start before any I/O.
      const verifier = selectEd25519Verifier(config.ed25519Verifier);
      if (!verifier.ok) throw new EdgegwError(verifier.reason, verifier.detail);
      identity = loadOrCreateIdentity(config.dataDir, config.gatewayId);
      latency = createLatencyRecorder({ windowMs: config.latencyWindowS * 1000, startMs: clock.now() });
      store = createStore({ clock, log, latency }, {
        path: paths.db,
        maxOutboxRows: config.outbox.maxRows,
        maxOutboxBytes: config.outbox.maxBytes,
        maxBatchRows: DEFAULT_STORE_LIMITS.maxBatchRows,
      });
      const s = store;
      // A window from a previous run is not this gateway's. The process mark tells `edgegw
      // status` that this gateway runs (liveness.ts).
      store.setRuntime({ latency: 'null', process: JSON.stringify(ownMark()) });
      alerts = createAlerts({ clock, log, sink: { audit: (e) => s.ingest.audit(e) } }, { floodWindowMs: config.alerts.floodWindowMs, floodBurst: config.alerts.floodBurst });
      pki = createPki({ log, clock }, { dir: paths.pki, serverNames: [...config.serverNames] });
      await pki.ensure();
      registry = createRegistryView(store.registry);
      const workers = config.verifyWorkers === 'auto' ? Math.max(1, availableParallelism()) : config.verifyWorkers;
      if (workers > 0) {
        pool = createVerifierPool({ log }, { size: workers, inlineWhenIdle: config.verifyInlineWhenIdle, ed25519Verifier: verifier.value, ...(deps.verifyWorkerUrl ? { workerUrl: deps.verifyWorkerUrl } : {}) });
        await pool.start();
      }
      const ingest = createIngest(
        { store, alerts, clock, log, registry, latency, ...(pool ? { pool } : {}) },
        { maxPayloadBytes: config.maxPayloadBytes, allowedAlgs: config.allowedAlgs, freshnessMs: config.freshnessS * 1000 },
      );
      const policy = createPolicy(
        {
          store,
          alerts,
          clock,
          ingest,
          registry,
          latency,
          hooks: {
            onKeyRotation: (deviceId, outcome, topic) => {
              rotateKey(deviceId, outcome, topic).catch((err: unknown) => log.error({ err, deviceId }, 'key rotation failed'));
            },
            onConnectionCountChanged: (n) => {
              connected = n;
            },
            refreshRegistry: watchRegistry,
          },
        },
        { gatewayId: identity.gatewayId, connectTokenWindowS: config.connectTokenWindowS },
      );
      const tls = pki.serverTls();
      broker = createBroker(
        { log, clock, policy },
        {
          host: config.host,
          mqttsPort: config.mqttsPort,
          mqttPort: config.mqttPort,
          mqttHost: config.mqttHost,
          tls: { key: tls.key, cert: tls.cert, ca: tls.ca },
          limits: config.limits,
          maxPacketBytes: config.maxPayloadBytes + 1024,
          keepaliveMinS: config.limits.keepaliveMinS,
          keepaliveMaxS: config.limits.keepaliveMaxS,
          connectTimeoutMs: config.limits.connectTimeoutMs,
          publishRatePerSec: config.limits.publishRatePerSec,
          publishBurst: config.limits.publishBurst,
        },
      );
      const ports = await broker.start();
      if (config.upstream) {
        relay = createRelay(
          { store, log, clock, alerts },
          {
            // The relay's tuning first: the keys below are the gateway's (parseConfig refuses them in it).
            ...config.upstream.tuning,
            url: config.upstream.url,
            caPem: readFileSync(config.upstream.caFile, 'utf8'),
            certPem: readFileSync(config.upstream.certFile, 'utf8'),
            // By path, so the relay refuses a key file readable by group or others.
            keyFile: config.upstream.keyFile,
            gatewayId: identity.gatewayId,
          },
        );
        await relay.start();
      }
      timers.push(setInterval(watchRegistry, 500), setInterval(watchOutbox, 1000), setInterval(() => store?.registry.retireExpiredKeys(), 60_000),
        setInterval(() => store?.pruneAudit(config.alerts.auditMaxRows), 60_000));
      for (const t of timers) t.unref();
      watchOutbox();
      return {
        msg: 'ready',
        gatewayId: identity.gatewayId,
        mqttsPort: ports.mqttsPort,
        mqttPort: ports.mqttPort,
        caFile: pki.caFile,
        dataDir: config.dataDir,
        gatewayPublicKey: Buffer.from(identity.publicKey).toString('hex'),
        verifyWorkers: workers,
        ed25519Verifier: verifier.value,
      };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearInterval(t);
      const steps: [string, () => Promise<void> | void][] = [
        ['relay', async () => relay?.stop()],
        ['broker', async () => broker?.stop()],
        ['verify pool', async () => pool?.stop()],
        ['alerts', () => alerts?.stop()],
        ['store', () => {
          try {
            // `edgegw status` says stopped at once (and heartbeatMs '0' for a status of before).
            store?.setRuntime({ connected: '0', process: 'null', heartbeatMs: '0', latency: 'null', memory: 'null' });
          } catch (err) {
            // A full disk must not keep the queued commits from being flushed by close().
            log.warn({ err }, 'could not record the stop for edgegw status');
          }
          // Everything is committed and closed when close() returns; the promise is the
          // checkpoint worker letting go of the files too (and SQLite removing the -wal).
          return store?.close();
        }],
      ];
      for (const [name, step] of steps) {
        try {
          await step();
        } catch (err) {
          log.error({ err, part: name }, 'stop failed; continuing');
        }
      }
    },
  };
}
