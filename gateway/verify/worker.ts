/**
 * Signature verification on a worker thread. One message in, one message out per batch
 * (posting per message costs more than the verify it saves). KeyObjects are imported once
 * per kid and cached for the worker's life.
 */
import { parentPort } from 'node:worker_threads';
import { importPublicKey, verifySignatureBytes, type CoseAlg, type VerifyKey } from '../../protocol/index.js';

export interface VerifyJob {
  readonly alg: CoseAlg;
  readonly kidHex: string;
  readonly raw: Uint8Array;
  readonly toBeSigned: Uint8Array;
  readonly signature: Uint8Array;
}

export interface VerifyBatch {
  readonly id: number;
  readonly jobs: VerifyJob[];
}

export interface VerifyBatchResult {
  readonly id: number;
  /** 1 = valid, 0 = invalid, per job in order. */
  readonly results: Uint8Array;
}

const MAX_CACHED_KEYS = 100_000;
const keys = new Map<string, VerifyKey | null>();

function keyFor(job: VerifyJob): VerifyKey | null {
  const cacheKey = `${job.alg}:${job.kidHex}`;
  let k = keys.get(cacheKey);
  if (k === undefined) {
    const imported = importPublicKey(job.alg, job.raw);
    k = imported.ok ? imported.value : null;
    if (keys.size >= MAX_CACHED_KEYS) keys.clear();
    keys.set(cacheKey, k);
  }
  return k;
}

export function verifyBatch(batch: VerifyBatch): VerifyBatchResult {
  const results = new Uint8Array(batch.jobs.length);
  for (let i = 0; i < batch.jobs.length; i++) {
    const job = batch.jobs[i]!;
    const key = keyFor(job);
    results[i] = key !== null && verifySignatureBytes(key, job.toBeSigned, job.signature) ? 1 : 0;
  }
  return { id: batch.id, results };
}

parentPort?.on('message', (batch: VerifyBatch) => {
  const out = verifyBatch(batch);
  parentPort!.postMessage(out, [out.results.buffer as ArrayBuffer]);
});
