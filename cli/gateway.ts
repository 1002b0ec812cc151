/**
 * `edgegw start`, `edgegw status` and `edgegw device ...`: running the gateway and managing
 * its registry. Machine-readable output goes to stdout as JSON; logs go to stderr.
 */
import type { Command } from 'commander';
import { writeFileSync, existsSync } from 'node:fs';
import { EdgegwError } from '../common/errors.js';
import { createLogger } from '../common/log.js';
import { systemClock } from '../common/clock.js';
import type { CoseAlg } from '../protocol/index.js';
import type { LatencyWindow } from '../gateway/latency.js';

/**
 * A JSON row of the gateway's `runtime` table, if it has the shape `valid` checks; null when
 * there is none or it cannot be read. A damaged row must not cost the user the counts: status
 * still prints them.
 */
function runtimeRow<T>(text: string | undefined, valid: (v: Record<string, unknown>) => boolean): T | null {
  try {
    const v = JSON.parse(text ?? 'null') as unknown;
    return v !== null && typeof v === 'object' && valid(v as Record<string, unknown>) ? (v as T) : null;
  } catch {
    return null;
  }
}

/** The gateway's last latency window. */
const latencyWindowOf = (text: string | undefined) =>
  runtimeRow<LatencyWindow>(text, (w) => typeof w.fromMs === 'number' && typeof w.toMs === 'number' && typeof w.stages === 'object');

/** The gateway's memory as last written (gateway/runtime-rows.ts: at most a minute old). */
const memoryOf = (text: string | undefined) =>
  runtimeRow<{ rss: number; heapUsed: number; external: number }>(text, (m) => typeof m.rss === 'number' && typeof m.heapUsed === 'number' && typeof m.external === 'number');

// The gateway is loaded when a command runs, not when the CLI starts: `edgegw cose ...`
// and `--help` stay fast.
const gatewayModule = () => import('../gateway/index.js');

/**
 * A number flag: what is not a number is a usage error here; the range is the configuration
 * schema's to judge, so that every out-of-range value (flags and file alike) is listed at once.
 */
function numberOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new EdgegwError('EDGEGW_USAGE', `${name} must be a number, got ${JSON.stringify(v)}`);
    return n;
  };
}

function hexOption(name: string) {
  return (v: string): Uint8Array => {
    if (!/^([0-9a-fA-F]{2})+$/.test(v)) throw new EdgegwError('EDGEGW_USAGE', `${name} must be hex`);
    return new Uint8Array(Buffer.from(v, 'hex'));
  };
}

function algOption(v: string): CoseAlg {
  if (v !== 'EdDSA' && v !== 'ES256') throw new EdgegwError('EDGEGW_USAGE', `--alg must be EdDSA or ES256, got ${v}`);
  return v;
}

function print(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const quietLog = () => createLogger({ level: 'warn' });

export function registerGateway(program: Command): void {
  program
    .command('start')
    .description('run the gateway: broker, verification, store and relay (PROTOCOL.md §2-§8)')
    .option('--config <file>', 'JSON configuration file (flags override it)')
    .option('--data-dir <dir>', 'data directory (database, keys, certificates)')
    .option('--host <addr>', 'address of the mqtts listener (default 0.0.0.0)')
    .option('--mqtts-port <n>', 'mqtts port, 0 = pick a free one (default 8883)', numberOption('--mqtts-port'))
    .option('--mqtt-port <n>', 'plain listener port for devices without TLS (off unless given)', numberOption('--mqtt-port'))
    .option('--mqtt-host <addr>', 'address of the plain listener (default 127.0.0.1)')
    .option('--gateway-id <id>', 'gateway id (default: the one stored in the data dir)')
    .option('--verify-workers <n>', "signature worker threads, 0 = main thread (default 'auto')", numberOption('--verify-workers'))
    .option('--ed25519-verifier <lib>', "Ed25519 library: auto|libsodium|node (default 'auto': libsodium where it loads)")
    .option('--max-payload-bytes <n>', 'largest accepted MQTT payload (default 16384)', numberOption('--max-payload-bytes'))
    .option('--publish-rate <n>', 'per-device publish rate limit, messages/s (default 50)', numberOption('--publish-rate'))
    .option('--max-outbox-rows <n>', 'outbox bound in rows', numberOption('--max-outbox-rows'))
    .option('--max-outbox-bytes <n>', 'outbox bound in bytes', numberOption('--max-outbox-bytes'))
    .option('--upstream <url>', 'cloud ingest base URL (https://...)')
    .option('--upstream-ca <file>', "CA certificate that signed the cloud's server certificate")
    .option('--upstream-cert <file>', "the gateway's client certificate for the cloud")
    .option('--upstream-key <file>', "the gateway's client key for the cloud (mode 0600)")
    .option('--log-level <level>', 'fatal|error|warn|info|debug (default info)')
    .action(async (o: Record<string, string | number | undefined>) => {
      const upstreamFlags = [o.upstream, o.upstreamCa, o.upstreamCert, o.upstreamKey];
      if (upstreamFlags.some((v) => v !== undefined) && upstreamFlags.some((v) => v === undefined)) {
        throw new EdgegwError('EDGEGW_USAGE', '--upstream, --upstream-ca, --upstream-cert and --upstream-key go together');
      }
      const { createGateway, loadConfig } = await gatewayModule();
      const config = loadConfig(o.config as string | undefined, {
        dataDir: o.dataDir,
        host: o.host,
        mqttsPort: o.mqttsPort,
        mqttPort: o.mqttPort,
        mqttHost: o.mqttHost,
        gatewayId: o.gatewayId,
        verifyWorkers: o.verifyWorkers,
        ed25519Verifier: o.ed25519Verifier,
        maxPayloadBytes: o.maxPayloadBytes,
        logLevel: o.logLevel,
        limits: o.publishRate === undefined ? undefined : { publishRatePerSec: o.publishRate },
        outbox: o.maxOutboxRows === undefined && o.maxOutboxBytes === undefined ? undefined : {
          ...(o.maxOutboxRows === undefined ? {} : { maxRows: o.maxOutboxRows }),
          ...(o.maxOutboxBytes === undefined ? {} : { maxBytes: o.maxOutboxBytes }),
        },
        upstream: o.upstream === undefined ? undefined : { url: o.upstream, caFile: o.upstreamCa, certFile: o.upstreamCert, keyFile: o.upstreamKey },
      });
      const log = createLogger({ level: config.logLevel });
      const gateway = createGateway({ log, clock: systemClock }, config);
      let stopping: Promise<void> | undefined;
      const shutdown = (signal: string): void => {
        if (stopping) return;
        log.info({ signal }, 'stopping');
        stopping = gateway.stop().then(() => {
          log.info('stopped');
          process.exit(0);
        });
      };
      process.on('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGTERM', () => shutdown('SIGTERM'));
      const ready = await gateway.start();
      print(ready);
      await new Promise<never>(() => undefined);
    });

  program
    .command('status')
    .description('counts from a gateway data dir, also while the gateway runs (JSON)')
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (o: { dataDir: string }) => {
      const { readStatus, dataPaths, parseMark, isRunning } = await gatewayModule();
      const path = dataPaths(o.dataDir).db;
      if (!existsSync(path)) throw new EdgegwError('EDGEGW_STORE_IO', `no gateway database in ${o.dataDir}`);
      const s = readStatus(path);
      const rejected: Record<string, number> = {};
      const refused: Record<string, number> = {};
      for (const [k, v] of Object.entries(s.counters)) {
        if (k.startsWith('rejected.')) rejected[k.slice(9)] = v;
        if (k.startsWith('refused.')) refused[k.slice(8)] = v;
      }
      // The gateway's process (gateway/liveness.ts); a gateway of before that wrote a heartbeat instead.
      const mark = parseMark(s.runtime.process);
      const running = mark !== undefined ? isRunning(mark) : Date.now() - Number(s.runtime.heartbeatMs ?? 0) < 5_000;
      const window = latencyWindowOf(s.runtime.latency);
      print({
        accepted: s.counters.accepted ?? 0,
        duplicates: s.counters.duplicates ?? 0,
        rejected,
        refused,
        outbox: { rows: s.counters.outbox_rows ?? 0, bytes: s.counters.outbox_bytes ?? 0 },
        relayed: s.counters.relayed ?? 0,
        deadLetters: s.deadLetters,
        connected: running ? Number(s.runtime.connected ?? 0) : 0,
        running,
        // The last complete window (gateway/latency.ts); null until one has ended, or when stopped.
        latencyMs: running && window !== null ? { windowS: Math.round((window.toMs - window.fromMs) / 1000), endedAtMs: window.toMs, ...window.stages } : null,
        memoryMiB: running ? memoryOf(s.runtime.memory) : null,
      });
    });

  const device = program.command('device').description('manage the device registry');

  device
    .command('add')
    .description('register a device and its public key (PROTOCOL.md §1), optionally writing its client certificate')
    .requiredOption('--data-dir <dir>', 'data directory')
    .requiredOption('--id <deviceId>', 'device id, ^[A-Za-z0-9_-]{1,64}$')
    .requiredOption('--alg <alg>', 'EdDSA or ES256', algOption)
    .requiredOption('--pub <hex>', 'raw public key: Ed25519 32 bytes, P-256 65 bytes 04||X||Y', hexOption('--pub'))
    .option('--cert-out <file>', 'write the PEM client certificate (CN = id) here')
    .action(async (o: { dataDir: string; id: string; alg: CoseAlg; pub: Uint8Array; certOut?: string }) => {
      const { openRegistrar } = await gatewayModule();
      const registrar = await openRegistrar({ log: quietLog(), clock: systemClock }, o.dataDir);
      try {
        const reg = await registrar.register({ id: o.id, alg: o.alg, pub: o.pub });
        if (o.certOut) writeFileSync(o.certOut, reg.certPem, { mode: 0o644 });
        print({ deviceId: reg.deviceId, kid: Buffer.from(reg.kid).toString('hex'), serial: reg.serialHex, certFile: o.certOut ?? null, caFile: registrar.pki.caFile });
      } finally {
        registrar.close();
      }
    });

  const openStore = async (dataDir: string) => {
    const { createStore, dataPaths } = await gatewayModule();
    const path = dataPaths(dataDir).db;
    if (!existsSync(path)) throw new EdgegwError('EDGEGW_STORE_IO', `no gateway database in ${dataDir}`);
    return createStore({ log: quietLog(), clock: systemClock }, { path, maxOutboxRows: 1, maxOutboxBytes: 1, maxBatchRows: 1 });
  };
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

  device
    .command('list')
    .description('list devices (JSON lines)')
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (o: { dataDir: string }) => {
      const store = await openStore(o.dataDir);
      try {
        for (const d of store.registry.listDevices()) print({ id: d.id, status: d.status, keys: store.registry.keysOf(d.id).map((k) => ({ kid: hex(k.kid), alg: k.alg, status: k.status })) });
      } finally {
        store.close();
      }
    });

  device
    .command('show <deviceId>')
    .description('one device with its keys and certificates (JSON)')
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (deviceId: string, o: { dataDir: string }) => {
      const store = await openStore(o.dataDir);
      try {
        const d = store.registry.requireDevice(deviceId);
        print({
          ...d,
          keys: store.registry.keysOf(deviceId).map((k) => ({ kid: hex(k.kid), alg: k.alg, pub: hex(k.pub), status: k.status, retireAtMs: k.retireAtMs })),
          certs: store.registry.certsOf(deviceId).map((c) => ({ serial: c.serial, notAfterMs: c.notAfterMs, revokedMs: c.revokedMs })),
        });
      } finally {
        store.close();
      }
    });

  for (const [verb, status] of [['revoke', 'revoked'], ['quarantine', 'quarantined'], ['activate', 'active']] as const) {
    device
      .command(`${verb} <deviceId>`)
      .description(`mark a device ${status}; a running gateway applies it within a second${verb === 'activate' ? '' : ' and closes its session'}`)
      .requiredOption('--data-dir <dir>', 'data directory')
      .action(async (deviceId: string, o: { dataDir: string }) => {
        const store = await openStore(o.dataDir);
        try {
          store.registry.setStatus(deviceId, status);
          print({ deviceId, status });
        } finally {
          store.close();
        }
      });
  }

  device
    .command('export')
    .description('JSON of device ids, kids, algs and public keys, for the cloud side')
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--out <file>', 'write to a file instead of stdout')
    .action(async (o: { dataDir: string; out?: string }) => {
      const store = await openStore(o.dataDir);
      try {
        const devices = store.registry.listDevices().map((d) => ({
          id: d.id,
          status: d.status,
          keys: store.registry.keysOf(d.id).map((k) => ({ kid: hex(k.kid), alg: k.alg, pub: hex(k.pub), status: k.status })),
        }));
        const out = JSON.stringify({ version: 1, devices }, null, 2) + '\n';
        if (o.out) writeFileSync(o.out, out);
        else process.stdout.write(out);
      } finally {
        store.close();
      }
    });
}
