/**
 * `edgegw cloud-sim`: runs the cloud simulator (cloud-sim/) until SIGINT/SIGTERM. Prints one
 * JSON line on stdout when it listens — `{"msg":"ready","port","url","caFile","clientCertFile",
 * "clientKeyFile"}` — which is what `edgegw start --upstream ...` needs. Logs go to stderr.
 */
import type { Command } from 'commander';
import { EdgegwError } from '../common/errors.js';
import { createLogger } from '../common/log.js';
import { systemClock } from '../common/clock.js';
import { createCloudSim, parseFaults, type FaultsInput } from '../cloud-sim/index.js';

function intOption(name: string, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n > max) throw new EdgegwError('EDGEGW_USAGE', `${name} must be an integer from 0 to ${max}, got ${v}`);
    return n;
  };
}

function rateOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d*\.?\d+$/.test(v) || n > 1) throw new EdgegwError('EDGEGW_USAGE', `${name} must be a fraction from 0 to 1, got ${v}`);
    return n;
  };
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

interface Flags {
  dataDir: string;
  port: number;
  host: string;
  devices?: string;
  serverName: string[];
  gatewayCn: string;
  failRate?: number;
  failStatus?: number;
  status?: number;
  retryAfter?: number;
  latencyMs?: number;
  answerDelayMs?: number;
  dropRate?: number;
  verifyWorkers?: number;
  logLevel: string;
}

export function registerCloudSim(program: Command): void {
  program
    .command('cloud-sim')
    .description('run an mTLS ingest endpoint (PROTOCOL.md §8) that re-verifies, deduplicates and stores records')
    .requiredOption('--data-dir <dir>', 'its CA, certificates, the files for the gateway and its database')
    .option('--port <n>', 'HTTPS port, 0 = pick a free one', intOption('--port', 65535), 8443)
    .option('--host <addr>', 'listen address', '127.0.0.1')
    .option('--devices <file>', 'device export (edgegw device export), re-read when it changes')
    .option('--server-name <name>', 'extra DNS name or IP in the server certificate (repeatable)', collect, [])
    .option('--gateway-cn <cn>', 'CN of the gateway client certificate written on first start', 'gateway')
    .option('--fail-rate <f>', 'fraction of ingest requests answered with --fail-status', rateOption('--fail-rate'))
    .option('--fail-status <code>', 'status for --fail-rate (default 500)', intOption('--fail-status', 599))
    .option('--status <code>', 'answer every ingest request with this status (429, 500, 400, ...)', intOption('--status', 599))
    .option('--retry-after <s>', 'Retry-After seconds sent with injected statuses', intOption('--retry-after', 86_400))
    .option('--latency-ms <ms>', 'added before every ingest request is processed', intOption('--latency-ms', 600_000))
    .option('--answer-delay-ms <ms>', 'added after a batch is stored, before the answer', intOption('--answer-delay-ms', 600_000))
    .option('--drop-rate <f>', 'fraction of ingest connections dropped without an answer', rateOption('--drop-rate'))
    .option('--verify-workers <n>', 'worker threads for signature checks, 0 = main thread (default: one per core, up to 4)', intOption('--verify-workers', 64))
    .option('--log-level <level>', 'fatal|error|warn|info|debug', 'info')
    .action(async (o: Flags) => {
      const faults: FaultsInput = {
        ...(o.failRate === undefined ? {} : { failureRate: o.failRate }),
        ...(o.failStatus === undefined ? {} : { failureStatus: o.failStatus }),
        ...(o.status === undefined ? {} : { status: o.status }),
        ...(o.retryAfter === undefined ? {} : { retryAfterS: o.retryAfter }),
        ...(o.latencyMs === undefined ? {} : { latencyMs: o.latencyMs }),
        ...(o.answerDelayMs === undefined ? {} : { answerDelayMs: o.answerDelayMs }),
        ...(o.dropRate === undefined ? {} : { dropRate: o.dropRate }),
      };
      try {
        parseFaults(faults);
      } catch (err) {
        throw new EdgegwError('EDGEGW_USAGE', (err as Error).message);
      }
      const log = createLogger({ level: o.logLevel });
      const sim = createCloudSim(
        { log, clock: systemClock },
        {
          dataDir: o.dataDir,
          port: o.port,
          host: o.host,
          ...(o.devices === undefined ? {} : { devicesFile: o.devices }),
          serverNames: o.serverName,
          gatewayCn: o.gatewayCn,
          ...(o.verifyWorkers === undefined ? {} : { verifyWorkers: o.verifyWorkers }),
          faults,
        },
      );
      let stopping = false;
      const shutdown = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'stopping');
        void sim.stop().then(() => process.exit(0));
      };
      process.on('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGTERM', () => shutdown('SIGTERM'));
      const ready = await sim.start();
      process.stdout.write(`${JSON.stringify(ready)}\n`);
      await new Promise<never>(() => undefined);
    });
}
