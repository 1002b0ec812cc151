/**
 * `edgegw demo`: the whole system on one machine, in a temporary directory, on free
 * loopback ports. The gateway and the cloud simulator run as child processes of the
 * `edgegw` executable itself (so the demo exercises exactly what a user would run); the
 * fleet runs in this process. Steps:
 *
 *   cloud     start `edgegw cloud-sim`, read its ready line (URL, CA, gateway credentials)
 *   gateway   start `edgegw start` with the cloud as its upstream, read its ready line
 *   fleet     register the devices, export their keys to the cloud, run the profiles
 *   verdict   the fleet's report, checked against what every profile should get
 *   cleanup   stop both processes (SIGTERM, then SIGKILL), remove the directory
 *
 * On failure the directory is kept, with each process's log, for a person to read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, createWriteStream, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import { EdgegwError } from '../common/errors.js';
import { openRegistrar } from '../gateway/index.js';
import { runFleet, type FleetProgress } from './fleet.js';
import { createCloudClient, createObserver, type CloudClient } from './observe.js';
import { HOSTILE_PROFILES } from './profiles/index.js';
import type { FleetReport } from './report.js';
import { edgegwArgv } from '../cli/node-flags.js';

export interface DemoOptions {
  /** The edgegw executable (dist/cli/main.js) to start the gateway and cloud-sim with. */
  readonly cliPath: string;
  /** Honest devices. Default 200. */
  readonly devices?: number;
  /** Devices per hostile profile. Default 1 (one of each). */
  readonly attackersPerProfile?: number;
  readonly durationMs?: number;
  /** Telemetry per device, messages/s. Default 1. */
  readonly ratePerDevice?: number;
  /** Keep the temporary directory even when everything passed. */
  readonly keep?: boolean;
}

export interface DemoResult {
  report: FleetReport;
  /** The temporary directory; already removed unless kept. */
  workDir: string;
  kept: boolean;
}

/**
 * Limits the demo's gateway runs with: a lower publish burst than the default 1000 keeps
 * each flood short (ordinary configuration, docs/simulator.md). The rest are the defaults.
 */
export const DEMO_GATEWAY_LIMITS = Object.freeze({ publishBurst: 100, publishRatePerSec: 50, connectTimeoutMs: 10_000 });

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly ready: Record<string, unknown>;
  readonly logFile: string;
}

/** Starts `edgegw <args>` and resolves with its JSON ready line. */
function startChild(cliPath: string, name: string, args: string[], workDir: string): Promise<Child> {
  const logFile = join(workDir, `${name}.log`);
  const log = createWriteStream(logFile);
  const proc = spawn(process.execPath, edgegwArgv(cliPath, args), { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stderr!.pipe(log);
  return new Promise((resolve, reject) => {
    const fail = (detail: string): void => {
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new EdgegwError('EDGEGW_SIM_CHILD_FAILED', `${name}: ${detail} (log: ${logFile})`));
    };
    const timer = setTimeout(() => fail(`not ready after ${READY_TIMEOUT_MS / 1000} s`), READY_TIMEOUT_MS);
    proc.once('exit', (code, signal) => fail(`exited before it was ready (code ${code}, signal ${signal})`));
    proc.once('error', (err) => fail(err.message));
    const lines = createInterface({ input: proc.stdout! });
    lines.on('line', (line) => {
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if (typeof msg === 'object' && msg !== null && (msg as { msg?: unknown }).msg === 'ready') {
        clearTimeout(timer);
        proc.removeAllListeners('exit');
        proc.removeAllListeners('error');
        lines.close();
        resolve({ name, proc, ready: msg as Record<string, unknown>, logFile });
      }
    });
  });
}

/** Runs `edgegw <args>` to completion. */
function runChild(cliPath: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, edgegwArgv(cliPath, args), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString('utf8');
    });
    proc.once('error', reject);
    proc.once('exit', (code) =>
      code === 0 ? resolve() : reject(new EdgegwError('EDGEGW_SIM_CHILD_FAILED', `edgegw ${args[0]} ${args[1] ?? ''} exited with ${code}: ${stderr.trim()}`)),
    );
  });
}

function stopChild(child: Child): Promise<void> {
  const { proc } = child;
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

function str(ready: Record<string, unknown>, key: string): string {
  const v = ready[key];
  if (typeof v !== 'string' && typeof v !== 'number') throw new EdgegwError('EDGEGW_SIM_CHILD_FAILED', `ready line has no ${key}`);
  return String(v);
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new EdgegwError('EDGEGW_SIM_CHILD_FAILED', `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function runDemo(
  deps: { log: Logger; clock: Clock; onProgress?: (p: FleetProgress) => void },
  options: DemoOptions,
): Promise<DemoResult> {
  const workDir = mkdtempSync(join(tmpdir(), 'edgegw-demo-'));
  const dirs = { cloud: join(workDir, 'cloud'), gateway: join(workDir, 'gateway'), fleet: join(workDir, 'fleet') };
  const exportFile = join(workDir, 'devices.json');
  const children: Child[] = [];
  let cloud: CloudClient | undefined;
  let ok = false;
  try {
    // ---- cloud ----------------------------------------------------------------------
    const cloudSim = await startChild(
      options.cliPath,
      'cloud-sim',
      ['cloud-sim', '--data-dir', dirs.cloud, '--port', '0', '--host', '127.0.0.1', '--devices', exportFile, '--log-level', 'warn'],
      workDir,
    );
    children.push(cloudSim);
    const upstream = {
      url: str(cloudSim.ready, 'url'),
      caFile: str(cloudSim.ready, 'caFile'),
      certFile: str(cloudSim.ready, 'clientCertFile'),
      keyFile: str(cloudSim.ready, 'clientKeyFile'),
    };
    cloud = createCloudClient({
      url: upstream.url,
      caPem: readFileSync(upstream.caFile, 'utf8'),
      certPem: readFileSync(upstream.certFile, 'utf8'),
      keyPem: readFileSync(upstream.keyFile, 'utf8'),
    });

    // ---- gateway --------------------------------------------------------------------
    const configFile = join(workDir, 'gateway-config.json');
    writeFileSync(configFile, JSON.stringify({ limits: DEMO_GATEWAY_LIMITS }, null, 2));
    const gateway = await startChild(
      options.cliPath,
      'gateway',
      [
        'start', '--config', configFile, '--data-dir', dirs.gateway, '--host', '127.0.0.1', '--mqtts-port', '0', '--mqtt-port', '0',
        '--upstream', upstream.url, '--upstream-ca', upstream.caFile, '--upstream-cert', upstream.certFile, '--upstream-key', upstream.keyFile,
        '--log-level', 'warn',
      ],
      workDir,
    );
    children.push(gateway);
    const mqttPort = Number(str(gateway.ready, 'mqttPort'));

    // ---- fleet -----------------------------------------------------------------------
    const registrar = await openRegistrar({ log: deps.log, clock: deps.clock }, dirs.gateway);
    let report: FleetReport;
    try {
      const client = cloud;
      const plan = new Map<string, number>([['honest', options.devices ?? 200]]);
      for (const name of HOSTILE_PROFILES) plan.set(name, options.attackersPerProfile ?? 1);
      // Some devices without TLS, on the plain listener with connect tokens.
      plan.set('token', Math.max(1, Math.floor((options.devices ?? 200) / 20)));
      report = await runFleet(
        {
          log: deps.log,
          clock: deps.clock,
          register: (req) => registrar.register(req),
          observer: createObserver(dirs.gateway, client),
          ...(deps.onProgress === undefined ? {} : { onProgress: deps.onProgress }),
          async onProvisioned(ids) {
            // The cloud re-verifies every record, so it must know the keys before traffic.
            const tmp = `${exportFile}.tmp`;
            await runChild(options.cliPath, ['device', 'export', '--data-dir', dirs.gateway, '--out', tmp]);
            renameSync(tmp, exportFile);
            await waitFor(async () => (await client.devices()) >= ids.length, 30_000, 'the cloud to load the device export');
          },
        },
        {
          host: '127.0.0.1',
          mqttsPort: Number(str(gateway.ready, 'mqttsPort')),
          mqttPort: Number.isInteger(mqttPort) && mqttPort > 0 ? mqttPort : null,
          caPem: readFileSync(str(gateway.ready, 'caFile'), 'utf8'),
          gatewayId: str(gateway.ready, 'gatewayId'),
          gatewayPublicKey: new Uint8Array(Buffer.from(str(gateway.ready, 'gatewayPublicKey'), 'hex')),
          facts: { publishBurst: DEMO_GATEWAY_LIMITS.publishBurst, publishRatePerSec: DEMO_GATEWAY_LIMITS.publishRatePerSec, connectTimeoutMs: DEMO_GATEWAY_LIMITS.connectTimeoutMs },
        },
        {
          plan,
          ratePerDevice: options.ratePerDevice ?? 1,
          durationMs: options.durationMs ?? 60_000,
          fleetDir: dirs.fleet,
          idPrefix: 'demo',
        },
      );
    } finally {
      registrar.close();
    }

    // ---- verdict ----------------------------------------------------------------------
    for (const child of children) {
      if (child.proc.exitCode !== null) throw new EdgegwError('EDGEGW_SIM_CHILD_FAILED', `${child.name} exited during the run (log: ${child.logFile})`);
    }
    ok = report.ok;
    return { report, workDir, kept: !ok || options.keep === true };
  } finally {
    // ---- cleanup ----------------------------------------------------------------------
    cloud?.close();
    for (const child of children.reverse()) await stopChild(child);
    if (ok && options.keep !== true) rmSync(workDir, { recursive: true, force: true });
  }
}
