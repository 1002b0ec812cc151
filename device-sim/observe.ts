/**
 * How the fleet sees the rest of the system, to check its predictions: the gateway's
 * counters straight from its data directory (what `edgegw status` prints; SQLite in WAL mode
 * lets a reader in while the gateway writes), and the cloud simulator's inspection routes
 * over mutual TLS (`GET /v1/stats`, `GET /v1/records?dev=&since=`).
 */
import { Agent, request } from 'node:https';
import { existsSync } from 'node:fs';
import { EdgegwError } from '../common/errors.js';
import { dataPaths, readStatus } from '../gateway/index.js';
import type { FleetObserver } from './fleet.js';
import type { GatewayCounts } from './report.js';

/** The gateway's counters as `edgegw status` groups them. */
export function readGatewayCounts(dataDir: string): GatewayCounts {
  const path = dataPaths(dataDir).db;
  if (!existsSync(path)) throw new EdgegwError('EDGEGW_STORE_IO', `no gateway database in ${dataDir}`);
  const { counters } = readStatus(path);
  const rejected: Record<string, number> = {};
  const refused: Record<string, number> = {};
  for (const [k, v] of Object.entries(counters)) {
    if (k.startsWith('rejected.')) rejected[k.slice('rejected.'.length)] = v;
    else if (k.startsWith('refused.')) refused[k.slice('refused.'.length)] = v;
  }
  return { accepted: counters.accepted ?? 0, duplicates: counters.duplicates ?? 0, rejected, refused, outboxRows: counters.outbox_rows ?? 0 };
}

export interface CloudAccess {
  /** https://host:port of the cloud simulator. */
  readonly url: string;
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CloudClient {
  /** Records the cloud holds. */
  count(): Promise<number>;
  /** Seqs the cloud holds for one device. */
  seqs(deviceId: string): Promise<Set<number>>;
  /** Devices the cloud knows from its device export. */
  devices(): Promise<number>;
  close(): void;
}

// Inspection answers are small JSON pages; anything larger is not the cloud simulator.
const MAX_ANSWER_BYTES = 32 * 1024 * 1024;
const PAGE = 10_000;

export function createCloudClient(access: CloudAccess): CloudClient {
  const base = new URL(access.url);
  const agent = new Agent({ keepAlive: true, maxSockets: 4, ca: access.caPem, cert: access.certPem, key: access.keyPem });

  function get(path: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const req = request(new URL(path, base), { method: 'GET', agent, timeout: 15_000 }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) req.destroy(new Error('answer too large'));
          else chunks.push(c);
        });
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new EdgegwError('EDGEGW_INTERNAL', `cloud ${path}: HTTP ${res.statusCode}`));
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch (err) {
            reject(new EdgegwError('EDGEGW_INTERNAL', `cloud ${path}: not JSON`, { cause: err }));
          }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => reject(new EdgegwError('EDGEGW_INTERNAL', `cloud ${path}: ${err.message}`, { cause: err })));
      req.end();
    });
  }

  async function stats(): Promise<{ stored?: { records?: number }; devices?: number }> {
    return (await get('/v1/stats')) as { stored?: { records?: number }; devices?: number };
  }

  return {
    async count() {
      return (await stats()).stored?.records ?? 0;
    },
    async devices() {
      return (await stats()).devices ?? 0;
    },
    async seqs(deviceId) {
      const out = new Set<number>();
      let since = 0;
      for (;;) {
        const page = (await get(`/v1/records?dev=${encodeURIComponent(deviceId)}&since=${since}&limit=${PAGE}`)) as {
          records: { seq: number; id: number }[];
          next: number;
        };
        for (const r of page.records) out.add(r.seq);
        if (page.records.length < PAGE) return out;
        since = page.next;
      }
    },
    close() {
      agent.destroy();
    },
  };
}

/** An observer of a gateway data directory and, optionally, a cloud. */
export function createObserver(dataDir: string, cloud?: CloudClient): FleetObserver {
  const observer: FleetObserver = { gateway: async () => readGatewayCounts(dataDir) };
  if (cloud !== undefined) {
    observer.cloudSeqs = (id) => cloud.seqs(id);
    observer.cloudCount = () => cloud.count();
  }
  return observer;
}
