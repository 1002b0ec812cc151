/**
 * `npm run bench` (node dist/bench/run.js [name ...] [--json] [--duration-ms N] [--load F] [--rounds N]): runs the
 * named benchmarks, or all of them, one after the other in this process, and prints a
 * table per benchmark or, with --json, one JSON document with every figure.
 * A benchmark registers itself by one entry in BENCHES.
 */
import { benchVerify, formatVerifyTable } from './verify.js';
import { benchIngest, formatIngestTable, type IngestRunConfig } from './ingest.js';
import { benchSim, formatSimTable } from './sim.js';
import { benchRelay, formatRelayTable } from './relay.js';
import { benchHandoff, formatHandoffTable } from './handoff.js';

export interface BenchOptions {
  /** Measuring time per measured path, in ms. */
  durationMs: number;
  /** relay: offered load during the backlog drain, as a fraction of the live maximum. */
  load?: number;
  /** ingest, pretenuring: rounds per measurement (their median is reported). */
  rounds?: number;
}

export interface BenchEntry {
  /** One line for the listing and the table heading. */
  title: string;
  run(opts: BenchOptions): Promise<{ figures: unknown; table: string }>;
}

/** 100 devices as the gateway runs, then with pretenuring back on (V8's default), twice over. */
const PRETENURING_RUNS: IngestRunConfig[] = [0, 1].flatMap(() => [
  { devices: 100, verifyWorkers: 'auto' as const },
  { devices: 100, verifyWorkers: 'auto' as const, nodeFlags: ['--allocation-site-pretenuring'] },
]);

export const BENCHES: Record<string, BenchEntry> = {
  verify: {
    title: 'COSE_Sign1 verification: decode + verify (ours) vs the raw checks of node:crypto and libsodium vs noble',
    async run(opts) {
      const figures = await benchVerify({ durationMs: opts.durationMs });
      return { figures, table: formatVerifyTable(figures) };
    },
  },
  ingest: {
    title: 'end-to-end QoS 1 ingest over TLS (100 and 1,000 devices) vs raw node:crypto and libsodium verify, p99 PUBACK at half rate, RSS per device',
    async run(opts) {
      const figures = await benchIngest({ durationMs: Math.max(3000, opts.durationMs * 2), ...(opts.rounds === undefined ? {} : { rounds: opts.rounds }) });
      return { figures, table: formatIngestTable(figures) };
    },
  },
  pretenuring: {
    title: "the gateway with and without V8's allocation-site pretenuring (cli/node-flags.ts), interleaved: maximum, p99 PUBACK and main-thread GC pauses at half and a quarter of it",
    async run(opts) {
      const figures = await benchIngest({ durationMs: Math.max(3000, opts.durationMs * 2), runs: PRETENURING_RUNS, rounds: opts.rounds ?? 1 });
      return { figures, table: formatIngestTable(figures) };
    },
  },
  relay: {
    title: 'relay to cloud-sim over mTLS: live ingest vs relayed, relay capacity (>= 2x ingest), 1,000,000-record backlog drain under live ingest',
    async run(opts) {
      const figures = await benchRelay({ durationMs: Math.max(5000, opts.durationMs * 2), ...(opts.load === undefined ? {} : { loadFraction: opts.load }) });
      return { figures, table: formatRelayTable(figures) };
    },
  },
  handoff: {
    title: 'a round trip to a worker thread (postMessage there and back), back to back and after idle pauses, vs one raw Ed25519 verify',
    async run() {
      const figures = await benchHandoff();
      return { figures, table: formatHandoffTable(figures) };
    },
  },
  sim: {
    title: 'device simulator: largest fleet one process sustains at 1 msg/s per device against a co-located gateway',
    async run(opts) {
      // Each fleet size needs a steady window of several seconds after its ramp.
      const figures = await benchSim({ durationMs: Math.max(10_000, opts.durationMs * 5) });
      return { figures, table: formatSimTable(figures) };
    },
  },
};

function usage(message: string): never {
  process.stderr.write(`bench: ${message}\nusage: node dist/bench/run.js [${Object.keys(BENCHES).join('|')} ...] [--json] [--duration-ms N] [--load F] [--rounds N]\n`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const names: string[] = [];
  let json = false;
  let durationMs = 2000;
  let load: number | undefined;
  let rounds: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') json = true;
    else if (a === '--duration-ms') {
      durationMs = Number(argv[++i]);
      if (!Number.isInteger(durationMs) || durationMs <= 0) usage('--duration-ms needs a positive integer');
    } else if (a === '--load') {
      load = Number(argv[++i]);
      if (!(load > 0 && load <= 1)) usage('--load needs a fraction in (0, 1]');
    } else if (a === '--rounds') {
      rounds = Number(argv[++i]);
      if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 20)) usage('--rounds needs an integer from 1 to 20');
    } else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else if (!(a in BENCHES)) usage(`unknown bench ${a}`);
    else names.push(a);
  }
  const selected = names.length > 0 ? names : Object.keys(BENCHES);
  const results: Record<string, unknown> = {};
  for (const name of selected) {
    const bench = BENCHES[name]!;
    if (!json) process.stdout.write(`\n## ${name}: ${bench.title}\n`);
    const { figures, table } = await bench.run({ durationMs, ...(load === undefined ? {} : { load }), ...(rounds === undefined ? {} : { rounds }) });
    results[name] = figures;
    if (!json) process.stdout.write(`${table}\n`);
  }
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ node: process.version, platform: `${process.platform}-${process.arch}`, durationMs, results }, null, 2)}\n`,
    );
  }
}

await main(process.argv.slice(2));
