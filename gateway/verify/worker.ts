/**
 * Signature verification on a worker thread. One message in, one message out per batch
 * (posting per message costs more than the verify it saves), the batch packed into one
 * transferred buffer. KeyObjects are imported once per kid and cached for the worker's life
 * (importPublicKey copies the key bytes out of the batch buffer).
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  importPublicKey,
  selectEd25519Verifier,
  sigStructureInto,
  sigStructureLength,
  verifySignatureBytes,
  type CoseAlg,
  type Ed25519Verifier,
  type VerifyKey,
} from '../../protocol/index.js';

/** What the pool tells each worker at spawn. */
export interface VerifyWorkerData {
  readonly ed25519Verifier: Ed25519Verifier;
}

// The pool's main thread chose (and checked) the library; the same process can load it here.
// Should it not, the worker keeps this thread's default rather than failing every spawn.
const chosen = (workerData as Partial<VerifyWorkerData> | null)?.ed25519Verifier;
if (chosen !== undefined) selectEd25519Verifier(chosen);

interface JobKey {
  readonly alg: CoseAlg;
  readonly kidHex: string;
  readonly raw: Uint8Array;
  readonly signature: Uint8Array;
}

/**
 * A signature check: the key, the signature and what it signs, either as a Sig_structure or
 * as a COSE_Sign1's parts, whose Sig_structure is then written straight into the batch (the
 * ingest path: no buffer per message).
 */
export type VerifyJob =
  | (JobKey & { readonly toBeSigned: Uint8Array })
  | (JobKey & { readonly protectedBytes: Uint8Array; readonly externalAad: Uint8Array; readonly payload: Uint8Array });

/** A job as unpacked on the worker. */
export interface UnpackedJob extends JobKey {
  readonly toBeSigned: Uint8Array;
}

function signedLength(j: VerifyJob): number {
  return 'toBeSigned' in j ? j.toBeSigned.length : sigStructureLength(j.protectedBytes, j.externalAad, j.payload);
}

/**
 * A batch as posted: every job's key, Sig_structure and signature copied into one buffer that
 * is transferred, not cloned. (Posting the jobs' own Uint8Arrays would clone each one's whole
 * backing ArrayBuffer: a signature is a view into the socket's read chunk, kilobytes long.)
 * Per job: alg (u8), then the lengths of key, Sig_structure and signature (u32 LE each: a
 * signature of the wrong length is still packed, and refused by the check), then the three
 * byte strings.
 */
export interface VerifyBatch {
  readonly id: number;
  readonly kids: string[];
  readonly packed: ArrayBuffer;
}

const ALG_CODES: Record<CoseAlg, number> = { EdDSA: 0, ES256: 1 };
const ALGS: CoseAlg[] = ['EdDSA', 'ES256'];
const JOB_HEADER = 13;

export function packBatch(id: number, jobs: readonly VerifyJob[]): VerifyBatch {
  let size = 0;
  for (const j of jobs) size += JOB_HEADER + j.raw.length + signedLength(j) + j.signature.length;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let at = 0;
  for (const j of jobs) {
    const header = at;
    bytes[header] = ALG_CODES[j.alg];
    view.setUint32(header + 1, j.raw.length, true);
    view.setUint32(header + 9, j.signature.length, true);
    at += JOB_HEADER;
    bytes.set(j.raw, at);
    at += j.raw.length;
    const tbsStart = at;
    if ('toBeSigned' in j) {
      bytes.set(j.toBeSigned, at);
      at += j.toBeSigned.length;
    } else {
      at = sigStructureInto(bytes, at, j.protectedBytes, j.externalAad, j.payload);
    }
    view.setUint32(header + 5, at - tbsStart, true);
    bytes.set(j.signature, at);
    at += j.signature.length;
  }
  return { id, kids: jobs.map((j) => j.kidHex), packed: bytes.buffer };
}

export function unpackBatch(batch: VerifyBatch): UnpackedJob[] {
  const bytes = new Uint8Array(batch.packed);
  const view = new DataView(batch.packed);
  const jobs: UnpackedJob[] = [];
  let at = 0;
  for (const kidHex of batch.kids) {
    const alg = ALGS[bytes[at]!]!;
    const rawLen = view.getUint32(at + 1, true);
    const tbsLen = view.getUint32(at + 5, true);
    const sigLen = view.getUint32(at + 9, true);
    at += JOB_HEADER;
    const raw = bytes.subarray(at, (at += rawLen));
    const toBeSigned = bytes.subarray(at, (at += tbsLen));
    const signature = bytes.subarray(at, (at += sigLen));
    jobs.push({ alg, kidHex, raw, toBeSigned, signature });
  }
  return jobs;
}

export interface VerifyBatchResult {
  readonly id: number;
  /** 1 = valid, 0 = invalid, per job in order. */
  readonly results: Uint8Array;
  /** Time spent checking the batch, ms (the pool's estimate of what a check costs follows it). */
  readonly ms: number;
}

const MAX_CACHED_KEYS = 100_000;
const keys = new Map<string, VerifyKey | null>();

function keyFor(job: UnpackedJob): VerifyKey | null {
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
  const started = performance.now();
  const jobs = unpackBatch(batch);
  const results = new Uint8Array(jobs.length);
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i]!;
    const key = keyFor(job);
    results[i] = key !== null && verifySignatureBytes(key, job.toBeSigned, job.signature) ? 1 : 0;
  }
  return { id: batch.id, results, ms: performance.now() - started };
}

parentPort?.on('message', (batch: VerifyBatch) => {
  const out = verifyBatch(batch);
  parentPort!.postMessage(out, [out.results.buffer as ArrayBuffer]);
});
