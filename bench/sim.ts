/**
 * How many devices one simulator process sustains at 1 msg/s each against a real gateway
 * (a child process of the built CLI, as `edgegw demo` runs it), so a user knows how many
 * simulator processes a fleet test needs. Fleets of growing size run one after another
 * (devices are registered once and reused); for each, over the steady part of the run:
 * devices online, messages acknowledged per second against those offered, the simulator's
 * own CPU (of one core) and event-loop delay, the gateway's CPU, and resident memory.
 * A step is sustained when every device is online and at least 95 % of the offered
 * messages were acknowledged; the run stops at the first step that is not.
 *
 * Both processes share this machine's cores, so the figure is for a co-located gateway;
 * the simulator's CPU share says how much of that limit is the simulator's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { silentLogger } from '../common/log.js';
import { systemClock } from '../common/clock.js';
import { openRegistrar } from '../gateway/index.js';
import { createObserver, runFleet, type FleetProgress } from '../device-sim/index.js';
import { edgegwArgv } from '../cli/node-flags.js';

export interface SimBenchOptions {
  /** Steady measuring time per fleet size, ms (the ramp comes before it). */
  durationMs: number;
  /** Fleet sizes to try, in order. */
  steps?: readonly number[];
  /** Messages per second per device. Default 1. */
  rate?: number;
}

export interface SimStepFigures {
  devices: number;
  online: number;
  offeredPerSec: number;
  ackedPerSec: number;
  /** Time to boot and connect every device. */
  rampMs: number;
  /** Simulator CPU, percent of one core, over the steady window. */
  simCpuPct: number;
  /** Gateway CPU, percent of one core (null where /proc is not available). */
  gatewayCpuPct: number | null;
  loopDelayP99Ms: number;
  simRssMb: number;
  sustained: boolean;
}

export interface SimBenchFigures {
  cores: number;
  loadAvg1m: number;
  ratePerDevice: number;
  steps: SimStepFigures[];
  /** The largest fleet that was sustained (0 if none). */
  maxSustainedDevices: number;
}

const DEFAULT_STEPS = [250, 500, 1000, 2000, 4000];
const CLK_TCK = 100;

/** utime + stime of a process in ms, from /proc (Linux). */
function procCpuMs(pid: number): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

function startGateway(cliPath: string, dataDir: string): Promise<{ proc: ChildProcess; ready: Record<string, unknown> }> {
  const proc = spawn(process.execPath, edgegwArgv(cliPath, ['start', '--data-dir', dataDir, '--host', '127.0.0.1', '--mqtts-port', '0', '--log-level', 'error']), {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`gateway exited with ${code} before it was ready`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        const msg = JSON.parse(line) as Record<string, unknown>;
        if (msg.msg === 'ready') {
          proc.removeAllListeners('exit');
          resolve({ proc, ready: msg });
        }
      } catch {
        // not a JSON line
      }
    });
  });
}

export async function benchSim(opts: SimBenchOptions): Promise<SimBenchFigures> {
  const rate = opts.rate ?? 1;
  const cliPath = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  const workDir = mkdtempSync(join(tmpdir(), 'edgegw-bench-sim-'));
  const gwDir = join(workDir, 'gateway');
  const { proc, ready } = await startGateway(cliPath, gwDir);
  const log = silentLogger();
  const registrar = await openRegistrar({ log, clock: systemClock }, gwDir);
  const steps: SimStepFigures[] = [];
  try {
    for (const devices of opts.steps ?? DEFAULT_STEPS) {
      const loop = monitorEventLoopDelay({ resolution: 10 });
      let first: { t: number; acked: number; cpu: NodeJS.CpuUsage; gw: number | null } | undefined;
      let last: { t: number; acked: number; online: number; cpu: NodeJS.CpuUsage; gw: number | null } | undefined;
      let rampMs = 0;
      const sample = (p: FleetProgress): void => {
        if (p.phase !== 'run') return;
        const now = { t: performance.now(), acked: p.acked, cpu: process.cpuUsage(), gw: procCpuMs(proc.pid!) };
        if (first === undefined) {
          // The steady window starts once every device has had its first period.
          first = now;
          rampMs = p.elapsedMs;
          loop.enable();
        } else last = { ...now, online: p.online };
      };
      await runFleet(
        {
          log,
          clock: systemClock,
          register: (req) => registrar.register(req),
          observer: createObserver(gwDir),
          onProgress: sample,
        },
        {
          host: '127.0.0.1',
          mqttsPort: Number(ready.mqttsPort),
          mqttPort: null,
          caPem: readFileSync(String(ready.caFile), 'utf8'),
          gatewayId: String(ready.gatewayId),
          gatewayPublicKey: new Uint8Array(Buffer.from(String(ready.gatewayPublicKey), 'hex')),
        },
        { plan: new Map([['honest', devices]]), ratePerDevice: rate, durationMs: opts.durationMs, fleetDir: join(workDir, 'fleet'), idPrefix: 'bench', settleTimeoutMs: 5_000 },
      );
      loop.disable();
      if (first === undefined || last === undefined) throw new Error(`fleet of ${devices}: no steady window was measured`);
      const wallMs = last.t - first.t;
      const cpuMs = (last.cpu.user - first.cpu.user + last.cpu.system - first.cpu.system) / 1000;
      const ackedPerSec = ((last.acked - first.acked) * 1000) / wallMs;
      const step: SimStepFigures = {
        devices,
        online: last.online,
        offeredPerSec: devices * rate,
        ackedPerSec: Math.round(ackedPerSec),
        rampMs: Math.round(rampMs),
        simCpuPct: Math.round((cpuMs / wallMs) * 100),
        gatewayCpuPct: last.gw === null || first.gw === null ? null : Math.round(((last.gw - first.gw) / wallMs) * 100),
        loopDelayP99Ms: Math.round(loop.percentile(99) / 1e6),
        simRssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
        sustained: last.online === devices && ackedPerSec >= 0.95 * devices * rate,
      };
      steps.push(step);
      if (!step.sustained) break;
    }
  } finally {
    registrar.close();
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    rmSync(workDir, { recursive: true, force: true });
  }
  return {
    cores: availableParallelism(),
    loadAvg1m: Math.round(loadavg()[0]! * 10) / 10,
    ratePerDevice: rate,
    steps,
    maxSustainedDevices: steps.filter((s) => s.sustained).reduce((m, s) => Math.max(m, s.devices), 0),
  };
}

export function formatSimTable(f: SimBenchFigures): string {
  const head = ['devices', 'online', 'offered/s', 'acked/s', 'ramp s', 'sim CPU %', 'gw CPU %', 'loop p99 ms', 'sim RSS MB', 'sustained'];
  const rows = f.steps.map((s) => [
    s.devices,
    s.online,
    s.offeredPerSec,
    s.ackedPerSec,
    (s.rampMs / 1000).toFixed(1),
    s.simCpuPct,
    s.gatewayCpuPct ?? '-',
    s.loopDelayP99Ms,
    s.simRssMb,
    s.sustained ? 'yes' : 'no',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells: (string | number)[]): string => cells.map((c, i) => String(c).padStart(widths[i]!)).join('  ');
  return [
    `${f.cores} cores, load ${f.loadAvg1m}, ${f.ratePerDevice} msg/s per device; gateway co-located`,
    line(head),
    ...rows.map(line),
    `largest fleet sustained by one simulator process: ${f.maxSustainedDevices} devices`,
  ].join('\n');
}
