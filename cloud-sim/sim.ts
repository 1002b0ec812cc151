/**
 * The cloud simulator (issue 4 §3): an HTTPS server that requires client certificates from
 * its own CA, takes `POST /v1/ingest` per PROTOCOL.md §8 (re-verify, deduplicate by
 * (dev, kid, seq) and by Idempotency-Key, store), answers inspection queries, and injects
 * faults on demand so tests, the demo and the benchmarks can make the cloud misbehave.
 *
 * Routes (all over mutual TLS):
 * - POST /v1/ingest                     the §8 uplink
 * - GET  /v1/records?dev=&since=&limit= verified records after storage id `since`
 * - GET  /v1/rejected?since=&limit=     records that failed re-verification, with the reason
 * - GET  /v1/stats                      counters
 * - GET  /v1/faults, PUT /v1/faults     read / change the injected faults (JSON)
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import { EdgegwError, isEdgegwError, type ErrorCode } from '../common/errors.js';
import { openCloudDb, type CloudDb, type IdempotentAnswer } from './db.js';
import { watchDeviceExport, type DeviceWatcher } from './devices.js';
import { decodeBatch, verifyBatch, type SignatureChecker } from './ingest.js';
// The gateway's signature worker pool, reused: the same checks on the same kind of job.
import { createVerifierPool, type VerifierPool } from '../gateway/verify/pool.js';
import { ensureCredentials, type GatewayFiles } from './credentials.js';

const FaultsSchema = z.strictObject({
  /** Fraction of ingest requests answered with `failureStatus`. */
  failureRate: z.number().min(0).max(1).default(0),
  failureStatus: z.number().int().min(400).max(599).default(500),
  /** Every ingest request is answered with this status (e.g. 429, 500, 400); null = off. */
  status: z.number().int().min(200).max(599).nullable().default(null),
  /** Retry-After (seconds) sent with injected statuses; null = none. */
  retryAfterS: z.number().int().min(0).max(86_400).nullable().default(null),
  /** Added before every ingest request is processed. */
  latencyMs: z.number().int().min(0).max(600_000).default(0),
  /** Added after a batch is stored and before the answer: the cloud has it, the gateway does not know yet. */
  answerDelayMs: z.number().int().min(0).max(600_000).default(0),
  /** Fraction of ingest requests whose connection is destroyed without an answer. */
  dropRate: z.number().min(0).max(1).default(0),
});

export type Faults = z.output<typeof FaultsSchema>;
export type FaultsInput = z.input<typeof FaultsSchema>;

export function parseFaults(input: unknown): Faults {
  const parsed = FaultsSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(faults)'}: ${i.message}`);
    throw new EdgegwError('EDGEGW_CONFIG_INVALID', `cloud-sim faults: ${problems.join('; ')}`);
  }
  return parsed.data;
}

export interface CloudSimOptions {
  dataDir: string;
  /** 0 = any free port. */
  port?: number;
  host?: string;
  /** The device export (`edgegw device export`), re-read when it changes. */
  devicesFile?: string;
  /** Names in the server certificate besides the loopback names. */
  serverNames?: string[];
  /** CN of the gateway client certificate written on first start. */
  gatewayCn?: string;
  maxBodyBytes?: number;
  /** Worker threads for the signature checks; 0 = on the main thread. Default: up to 4, one per core. */
  verifyWorkers?: number;
  faults?: FaultsInput;
}

export interface CloudSimReady extends GatewayFiles {
  msg: 'ready';
  port: number;
  url: string;
}

export interface CloudSimStats {
  requests: number;
  ingestRequests: number;
  batches: number;
  duplicateBatches: number;
  idempotencyConflicts: number;
  badRequests: number;
  /** TLS handshakes refused (no client certificate, or one from another CA). */
  tlsRefused: number;
  recordsReceived: number;
  recordsStored: number;
  duplicateRecords: number;
  rejectedRecords: number;
  faults: { dropped: number; delayed: number; injectedStatus: number };
  stored: { records: number; rejected: number };
  devices: number;
  deviceExportReloads: number;
}

export interface CloudSim {
  start(): Promise<CloudSimReady>;
  stop(): Promise<void>;
  setFaults(faults: FaultsInput): Faults;
  faults(): Faults;
  stats(): CloudSimStats;
}

const IDEMPOTENCY_KEY_RE = /^[A-Za-z0-9_.:-]{1,200}$/;
const DEFAULT_MAX_BODY = 64 * 1024 * 1024;

export function createCloudSim(deps: { log: Logger; clock: Clock; random?: () => number }, options: CloudSimOptions): CloudSim {
  const log = deps.log.child({ part: 'cloud-sim' });
  const random = deps.random ?? Math.random;
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  let faults = parseFaults(options.faults ?? {});
  let server: Server | undefined;
  let db: CloudDb | undefined;
  let devices: DeviceWatcher | undefined;
  let pool: VerifierPool | undefined;
  let checker: SignatureChecker | undefined;
  const sockets = new Set<Socket>();
  const c = {
    requests: 0, ingestRequests: 0, batches: 0, duplicateBatches: 0, idempotencyConflicts: 0, badRequests: 0, tlsRefused: 0,
    recordsReceived: 0, recordsStored: 0, duplicateRecords: 0, rejectedRecords: 0,
    faults: { dropped: 0, delayed: 0, injectedStatus: 0 },
  };

  function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  function refuse(res: ServerResponse, status: number, code: ErrorCode, message: string): void {
    if (status === 400) c.badRequests++;
    json(res, status, { code, message });
  }

  async function readBody(req: IncomingMessage): Promise<Buffer> {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > maxBody) throw new EdgegwError('EDGEGW_CLOUDSIM_TOO_LARGE', `body of ${declared} bytes; the limit is ${maxBody}`);
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const chunk of req) {
      n += (chunk as Buffer).length;
      if (n > maxBody) throw new EdgegwError('EDGEGW_CLOUDSIM_TOO_LARGE', `body over ${maxBody} bytes`);
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks, n);
  }

  function injected(res: ServerResponse, status: number): void {
    c.faults.injectedStatus++;
    const headers: Record<string, string> = faults.retryAfterS === null ? {} : { 'retry-after': String(faults.retryAfterS) };
    json(res, status, { code: 'EDGEGW_CLOUDSIM_FAULT', message: `injected ${status}` }, headers);
  }

  /** A batch whose Idempotency-Key was seen: the first answer again, or 422 for another body. */
  function answerKnown(res: ServerResponse, seen: IdempotentAnswer, digest: Buffer): void {
    if (!seen.digest.equals(digest)) {
      c.idempotencyConflicts++;
      return refuse(res, 422, 'EDGEGW_CLOUDSIM_IDEMPOTENCY_CONFLICT', 'Idempotency-Key reused with a different body');
    }
    c.duplicateBatches++;
    res.writeHead(seen.status, { 'content-type': 'application/json', 'idempotent-replayed': 'true' });
    res.end(seen.body);
  }

  async function ingest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    c.ingestRequests++;
    if (faults.dropRate > 0 && random() < faults.dropRate) {
      c.faults.dropped++;
      req.socket.destroy();
      return;
    }
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/cbor') return refuse(res, 415, 'EDGEGW_CLOUDSIM_BAD_REQUEST', 'Content-Type must be application/cbor');
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string' || !IDEMPOTENCY_KEY_RE.test(key)) {
      return refuse(res, 400, 'EDGEGW_CLOUDSIM_BAD_REQUEST', 'Idempotency-Key missing or malformed');
    }
    const body = await readBody(req);
    if (faults.latencyMs > 0) {
      c.faults.delayed++;
      await delay(faults.latencyMs);
    }
    if (faults.status !== null) return injected(res, faults.status);
    if (faults.failureRate > 0 && random() < faults.failureRate) return injected(res, faults.failureStatus);
    if (db === undefined || devices === undefined) return refuse(res, 503, 'EDGEGW_CLOUDSIM_FAULT', 'stopping');

    const digest = createHash('sha256').update(body).digest();
    const seen = db.idempotent(key);
    if (seen !== undefined) return answerKnown(res, seen, digest);
    const records = decodeBatch(body);
    const now = deps.clock.now();
    const checked = await verifyBatch(records, devices.current(now), checker);
    if (db === undefined) return refuse(res, 503, 'EDGEGW_CLOUDSIM_FAULT', 'stopping');
    // From here to the commit nothing awaits, so the check and the insert are atomic: a request
    // with the same key that committed while this one was verifying makes this one a replay.
    const raced = db.idempotent(key);
    if (raced !== undefined) return answerKnown(res, raced, digest);
    const result = db.commit(key, digest, checked.good, checked.bad, now, (n) => ({
      status: 200,
      body: JSON.stringify({ accepted: n.inserted, duplicates: n.duplicates, rejected: checked.bad.length }),
    }));
    c.batches++;
    c.recordsReceived += records.length;
    c.recordsStored += result.inserted;
    c.duplicateRecords += result.duplicates;
    c.rejectedRecords += checked.bad.length;
    if (checked.bad.length > 0) {
      log.warn({ rejected: checked.bad.length, first: checked.bad[0]!.reason }, 'records failed re-verification');
    }
    if (faults.answerDelayMs > 0) {
      c.faults.delayed++;
      await delay(faults.answerDelayMs);
    }
    res.writeHead(result.answer.status, { 'content-type': 'application/json' });
    res.end(result.answer.body);
  }

  function intParam(url: URL, name: string, dflt: number, max: number): number {
    const v = url.searchParams.get(name);
    if (v === null) return dflt;
    if (!/^\d{1,15}$/.test(v)) throw new EdgegwError('EDGEGW_CLOUDSIM_BAD_REQUEST', `${name} must be a non-negative integer`);
    return Math.min(Number(v), max);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    c.requests++;
    const url = new URL(req.url ?? '/', 'https://cloud-sim');
    const where = `${req.method} ${url.pathname}`;
    switch (where) {
      case 'POST /v1/ingest':
        return ingest(req, res);
      case 'GET /v1/records': {
        const dev = url.searchParams.get('dev') ?? undefined;
        const since = intParam(url, 'since', 0, Number.MAX_SAFE_INTEGER);
        const records = db!.records(dev, since, intParam(url, 'limit', 1000, 10_000));
        return json(res, 200, { records, next: records.length > 0 ? records[records.length - 1]!.id : since });
      }
      case 'GET /v1/rejected': {
        const since = intParam(url, 'since', 0, Number.MAX_SAFE_INTEGER);
        const rejected = db!.rejected(since, intParam(url, 'limit', 1000, 10_000));
        return json(res, 200, { rejected, next: rejected.length > 0 ? rejected[rejected.length - 1]!.id : since });
      }
      case 'GET /v1/stats':
        return json(res, 200, stats());
      case 'GET /v1/faults':
        return json(res, 200, faults);
      case 'PUT /v1/faults': {
        const body = await readBody(req);
        let input: unknown;
        try {
          input = JSON.parse(body.toString('utf8'));
        } catch {
          return refuse(res, 400, 'EDGEGW_CLOUDSIM_BAD_REQUEST', 'faults must be JSON');
        }
        try {
          return json(res, 200, setFaults(input as FaultsInput));
        } catch (err) {
          return refuse(res, 400, 'EDGEGW_CLOUDSIM_BAD_REQUEST', (err as Error).message);
        }
      }
      default:
        return json(res, 404, { code: 'EDGEGW_CLOUDSIM_BAD_REQUEST', message: `no route ${where}` });
    }
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return;
      if (isEdgegwError(err, 'EDGEGW_CLOUDSIM_TOO_LARGE')) {
        res.setHeader('connection', 'close');
        return refuse(res, 413, err.code, err.message);
      }
      if (isEdgegwError(err, 'EDGEGW_CLOUDSIM_BAD_REQUEST')) return refuse(res, 400, err.code, err.message);
      log.error({ code: (err as EdgegwError).code, message: (err as Error).message }, 'cloud-sim request failed');
      json(res, 500, { code: 'EDGEGW_INTERNAL', message: 'internal error' });
    });
  }

  function setFaults(input: FaultsInput): Faults {
    faults = parseFaults({ ...faults, ...input });
    log.info({ faults }, 'faults changed');
    return faults;
  }

  function stats(): CloudSimStats {
    return {
      ...c,
      faults: { ...c.faults },
      stored: db?.counts() ?? { records: 0, rejected: 0 },
      devices: devices?.current(deps.clock.now()).devices ?? 0,
      deviceExportReloads: devices?.reloads() ?? 0,
    };
  }

  return {
    async start() {
      const host = options.host ?? '127.0.0.1';
      const creds = await ensureCredentials(deps, {
        dataDir: options.dataDir,
        serverNames: options.serverNames ?? [],
        gatewayCn: options.gatewayCn ?? 'gateway',
      });
      devices = watchDeviceExport({ log }, options.devicesFile);
      devices.load();
      const workers = options.verifyWorkers ?? Math.min(4, availableParallelism());
      if (workers > 0) {
        const p = createVerifierPool({ log }, { size: workers });
        await p.start();
        pool = p;
        checker = (job) => p.verify({ alg: job.key.alg, kidHex: Buffer.from(job.key.kid).toString('hex'), raw: job.key.raw, toBeSigned: job.toBeSigned, signature: job.signature });
      }
      db = openCloudDb(join(options.dataDir, 'cloud.db'));
      const srv = createServer(
        {
          ...creds.server,
          requestCert: true,
          rejectUnauthorized: true,
          minVersion: 'TLSv1.2',
          headersTimeout: 15_000,
          requestTimeout: 120_000,
        },
        handle,
      );
      srv.on('connection', (s: Socket) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      });
      srv.on('tlsClientError', (err) => {
        c.tlsRefused++;
        log.debug({ code: (err as { code?: string }).code }, 'TLS handshake refused');
      });
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(options.port ?? 0, host, () => {
          srv.off('error', reject);
          resolve();
        });
      });
      server = srv;
      const port = (srv.address() as { port: number }).port;
      const ready: CloudSimReady = { msg: 'ready', port, url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, ...creds.files };
      log.info({ port }, 'cloud-sim listening');
      return ready;
    },
    async stop() {
      const srv = server;
      server = undefined;
      if (srv) {
        const closed = new Promise<void>((resolve) => srv.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await closed;
      }
      db?.close();
      db = undefined;
      devices = undefined;
      checker = undefined;
      await pool?.stop();
      pool = undefined;
    },
    setFaults,
    faults: () => faults,
    stats,
  };
}
