/**
 * `edgegw sim`: a fleet of simulated devices against a running gateway (device-sim/). It
 * registers its devices in the gateway's data directory itself (`device add` under the
 * hood), keeps their flash files next to it, runs the chosen profiles, and ends with the
 * verified report: exit 0 only when every expectation held.
 */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EdgegwError } from '../common/errors.js';
import { createLogger } from '../common/log.js';
import { systemClock } from '../common/clock.js';
import type { CoseAlg } from '../protocol/index.js';
import type { CloudClient, FleetReport } from '../device-sim/index.js';
// The profile list is light (it is shown by --help); the simulator, the gateway's registry
// and mqtt.js are loaded when the command runs, so that `edgegw --help` stays fast.
import { HOSTILE_PROFILES, PROFILES } from '../device-sim/profiles/index.js';
import { renderReport } from '../device-sim/report.js';

const simModule = () => import('../device-sim/index.js');
const gatewayModule = () => import('../gateway/index.js');

/** `60s`, `2m`, `1500ms`, `1h`, or a bare number of seconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (m === null) throw new EdgegwError('EDGEGW_USAGE', `not a duration: ${v} (try 60s, 2m, 500ms)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
  if (!Number.isFinite(ms) || ms <= 0 || ms > 24 * 3_600_000) throw new EdgegwError('EDGEGW_USAGE', `duration out of range: ${v}`);
  return Math.round(ms);
}

export function positiveInt(name: string, min = 1) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new EdgegwError('EDGEGW_USAGE', `${name} must be an integer >= ${min}, got ${v}`);
    return n;
  };
}

export function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new EdgegwError('EDGEGW_USAGE', `${name} must be a positive number, got ${v}`);
    return n;
  };
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** Prints the report (text or JSON) and fails with EDGEGW_SIM_EXPECTATION_FAILED when it did not hold. */
export function finishWithReport(report: FleetReport, json: boolean, write: (s: string) => void = (s) => void process.stdout.write(s)): void {
  write(json ? `${JSON.stringify(report)}\n` : `${renderReport(report)}\n`);
  if (!report.ok) {
    const failed = report.expectations.filter((e) => !e.pass).map((e) => e.name);
    throw new EdgegwError('EDGEGW_SIM_EXPECTATION_FAILED', `${failed.length} expectation(s) did not hold: ${failed.join('; ')}`);
  }
}

interface SimFlags {
  dataDir: string;
  host: string;
  mqttsPort: number;
  mqttPort?: number;
  devices: number;
  rate: number;
  duration: number;
  profile: string[];
  ramp?: number;
  fleetDir?: string;
  idPrefix: string;
  alg: string;
  cloud?: string;
  cloudCa?: string;
  cloudCert?: string;
  cloudKey?: string;
  publishRate: number;
  publishBurst: number;
  connectTimeoutMs: number;
  maxPayloadBytes: number;
  json?: boolean;
  logLevel: string;
}

export function registerSim(program: Command): void {
  const profileList = [...PROFILES.values()].map((p) => `  ${p.name.padEnd(14)} ${p.summary}`).join('\n');
  program
    .command('sim')
    .description('run a fleet of simulated devices, honest and hostile, against a gateway and verify what it did')
    .requiredOption('--data-dir <dir>', "the gateway's data directory (devices are registered there; counters read from it)")
    .requiredOption('--mqtts-port <n>', "the gateway's mqtts port", positiveInt('--mqtts-port'))
    .option('--mqtt-port <n>', "the gateway's plain listener port (needed by the token profile)", positiveInt('--mqtt-port'))
    .option('--host <addr>', "the gateway's address", '127.0.0.1')
    .option('--devices <n>', 'honest devices', positiveInt('--devices', 0), 100)
    .option('--rate <r>', 'telemetry messages per second per device', positiveNumber('--rate'), 1)
    .option('--duration <d>', 'how long the fleet runs: 60s, 2m, 500ms', parseDuration, 60_000)
    .option('--profile <p>', 'add devices of a profile: NAME, NAME:COUNT, comma lists, or all (one of each attacker); repeatable', collect, [])
    .option('--ramp <d>', 'spread the connects over this long (default: 10 ms per device, at least 1 s)', parseDuration)
    .option('--fleet-dir <dir>', "where the devices' flash files live (default: <data-dir>/sim-fleet)")
    .option('--id-prefix <p>', 'device ids are <prefix>-<profile>-<n>', 'sim')
    .option('--alg <alg>', 'EdDSA, ES256 or mixed (every fourth device ES256)', 'mixed')
    .option('--cloud <url>', 'cloud-sim URL, to check that every honest message reached the cloud')
    .option('--cloud-ca <file>', "CA of the cloud's server certificate")
    .option('--cloud-cert <file>', 'client certificate for the cloud (the gateway\'s)')
    .option('--cloud-key <file>', 'client key for the cloud')
    .option('--publish-rate <n>', "the gateway's per-device publish rate limit (what it was started with)", positiveNumber('--publish-rate'), 50)
    .option('--publish-burst <n>', "the gateway's publish burst", positiveInt('--publish-burst'), 1000)
    .option('--connect-timeout-ms <n>', "the gateway's CONNECT timeout", positiveInt('--connect-timeout-ms'), 10_000)
    .option('--max-payload-bytes <n>', "the gateway's largest accepted payload", positiveInt('--max-payload-bytes'), 16 * 1024)
    .option('--json', 'print the report as JSON')
    .option('--log-level <level>', 'fatal|error|warn|info|debug', 'warn')
    .addHelpText('after', `\nProfiles:\n${profileList}\n`)
    .action(async (o: SimFlags) => {
      const { createCloudClient, createObserver, createProgressView, parsePlan, runFleet } = await simModule();
      const { dataPaths, loadOrCreateIdentity, openRegistrar } = await gatewayModule();
      const alg = o.alg as CoseAlg | 'mixed';
      if (alg !== 'EdDSA' && alg !== 'ES256' && alg !== 'mixed') throw new EdgegwError('EDGEGW_USAGE', `--alg must be EdDSA, ES256 or mixed, got ${o.alg}`);
      const cloudFlags = [o.cloud, o.cloudCa, o.cloudCert, o.cloudKey];
      if (cloudFlags.some((v) => v !== undefined) && cloudFlags.some((v) => v === undefined)) {
        throw new EdgegwError('EDGEGW_USAGE', '--cloud, --cloud-ca, --cloud-cert and --cloud-key go together');
      }
      if (!existsSync(dataPaths(o.dataDir).identity)) throw new EdgegwError('EDGEGW_USAGE', `${o.dataDir} is not a gateway data directory (run edgegw start first)`);
      const plan = parsePlan(o.devices, o.profile, HOSTILE_PROFILES);
      const log = createLogger({ level: o.logLevel });
      const identity = loadOrCreateIdentity(o.dataDir);
      const registrar = await openRegistrar({ log, clock: systemClock }, o.dataDir);
      let cloud: CloudClient | undefined;
      const view = createProgressView(process.stderr);
      try {
        if (o.cloud !== undefined) {
          cloud = createCloudClient({ url: o.cloud, caPem: readFileSync(o.cloudCa!, 'utf8'), certPem: readFileSync(o.cloudCert!, 'utf8'), keyPem: readFileSync(o.cloudKey!, 'utf8') });
        }
        const report = await runFleet(
          {
            log,
            clock: systemClock,
            register: (req) => registrar.register(req),
            observer: createObserver(o.dataDir, cloud),
            onProgress: (p) => view.update(p),
          },
          {
            host: o.host,
            mqttsPort: o.mqttsPort,
            mqttPort: o.mqttPort ?? null,
            caPem: readFileSync(registrar.pki.caFile, 'utf8'),
            gatewayId: identity.gatewayId,
            gatewayPublicKey: identity.publicKey,
            facts: { publishRatePerSec: o.publishRate, publishBurst: o.publishBurst, connectTimeoutMs: o.connectTimeoutMs, maxPayloadBytes: o.maxPayloadBytes, maxPacketBytes: o.maxPayloadBytes + 1024 },
          },
          {
            plan,
            ratePerDevice: o.rate,
            durationMs: o.duration,
            fleetDir: o.fleetDir ?? join(o.dataDir, 'sim-fleet'),
            idPrefix: o.idPrefix,
            alg,
            ...(o.ramp === undefined ? {} : { rampMs: o.ramp }),
          },
        );
        view.stop();
        finishWithReport(report, o.json === true);
      } finally {
        view.stop();
        cloud?.close();
        registrar.close();
      }
    });
}
