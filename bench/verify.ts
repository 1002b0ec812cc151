/**
 * Signature verification throughput, per alg, three ways on the same messages:
 * - ours: decodeSign1 + verifySign1 with a cached VerifyKey (the gateway's full COSE path);
 * - raw: node:crypto `crypto.verify` on the precomputed Sig_structures (the floor ours sits on);
 * - noble: @noble/curves verify on the same Sig_structures (the reference implementation).
 * Ours and raw run in alternating short rounds so that load from other processes hits both
 * alike, and ours/raw is the median of the per-round ratios; it is the figure that matters
 * (target >= 0.9).
 */
import { verify as cryptoVerify } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { encode } from '../protocol/cbor.js';
import { decodeSign1, generateKeyPair, importPublicKey, nobleSigner, sigStructure, signSign1, verifySign1, type CoseAlg } from '../protocol/index.js';
import { median } from './stats.js';

export interface VerifyBenchOptions {
  /** Measuring time per path and alg, in ms (default 2000). */
  durationMs?: number;
  /** Distinct messages cycled through (default 256). */
  messages?: number;
  /** Bytes of application data per message body (default 64). */
  bodyBytes?: number;
}

export interface VerifyFigures {
  alg: CoseAlg;
  messageBytes: number;
  oursOpsPerSec: number;
  rawOpsPerSec: number;
  nobleOpsPerSec: number;
  /**
   * ours / raw: what the COSE decode and checks cost on top of the signature check. The
   * median of the per-round ratios, so that a burst of load in one round does not tilt it.
   */
  oursOverRaw: number;
  /** raw node:crypto / noble. */
  nodeOverNoble: number;
  /** decodeSign1 alone, in microseconds: most of what ours adds to raw, measured without crypto noise. */
  decodeUs: number;
}

const ROUND_MS = 50;
const CHECK_EVERY = 16;

/** Runs `op(i)` for about `ms`, returning [operations, elapsed ms]. */
function timed(ms: number, op: (i: number) => void, start = 0): [number, number] {
  let n = start;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let k = 0; k < CHECK_EVERY; k++) op(n++);
    t = performance.now();
  }
  return [n - start, t - t0];
}

function fail(what: string): never {
  throw new Error(`bench: ${what} rejected a valid message`);
}

export async function benchVerify(opts: VerifyBenchOptions = {}): Promise<VerifyFigures[]> {
  const durationMs = opts.durationMs ?? 2000;
  const count = opts.messages ?? 256;
  const bodyBytes = opts.bodyBytes ?? 64;
  const figures: VerifyFigures[] = [];
  for (const alg of ['EdDSA', 'ES256'] as CoseAlg[]) {
    const signer = nobleSigner(alg, generateKeyPair(alg).privateKey);
    const imported = importPublicKey(alg, signer.publicKey);
    if (!imported.ok) throw new Error(imported.reason);
    const key = imported.value;
    const topic = new TextEncoder().encode('d/bench-device-0001/t/telemetry');
    // Distinct messages shaped like PROTOCOL.md §3 telemetry: {1: seq, 2: ts, 3: body}.
    const messages: Uint8Array[] = [];
    const tbs: Uint8Array[] = [];
    const sigs: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const payload = encode(new Map<number, unknown>([[1, i + 1], [2, 1_750_000_000_000 + i], [3, new Uint8Array(bodyBytes).fill(i & 0xff)]]));
      const bytes = signSign1(signer, payload, topic);
      const msg = decodeSign1(bytes);
      if (!msg.ok) throw new Error(msg.reason);
      messages.push(bytes);
      tbs.push(sigStructure(msg.value.protectedBytes, topic, msg.value.payload));
      sigs.push(msg.value.signature);
    }
    const ours = (i: number): void => {
      const m = decodeSign1(messages[i % count]!);
      if (!m.ok || !verifySign1(m.value, key, topic).ok) fail('ours');
    };
    const rawOptions = alg === 'EdDSA' ? key.keyObject : { key: key.keyObject, dsaEncoding: 'ieee-p1363' as const };
    const rawAlgorithm = alg === 'EdDSA' ? null : 'sha256';
    const raw = (i: number): void => {
      if (!cryptoVerify(rawAlgorithm, tbs[i % count]!, rawOptions, sigs[i % count]!)) fail('crypto.verify');
    };
    const pub = signer.publicKey;
    const noble =
      alg === 'EdDSA'
        ? (i: number): void => {
            if (!ed25519.verify(sigs[i % count]!, tbs[i % count]!, pub, { zip215: false })) fail('noble');
          }
        : (i: number): void => {
            if (!p256.verify(sigs[i % count]!, tbs[i % count]!, pub, { lowS: false })) fail('noble');
          };

    timed(200, ours); // warm-up: JIT and caches
    timed(200, raw);
    let oursOps = 0;
    let oursMs = 0;
    let rawOps = 0;
    let rawMs = 0;
    const roundRatios: number[] = [];
    for (let round = 0; round * ROUND_MS < durationMs; round++) {
      // Alternate which goes first so neither always follows the other.
      const oursFirst = round % 2 === 0;
      const runOurs = (): [number, number] => timed(ROUND_MS, ours, oursOps);
      const runRaw = (): [number, number] => timed(ROUND_MS, raw, rawOps);
      const [a, b] = oursFirst ? [runOurs(), runRaw()] : [runRaw(), runOurs()];
      const [o, r] = oursFirst ? [a, b] : [b, a];
      oursOps += o[0];
      oursMs += o[1];
      rawOps += r[0];
      rawMs += r[1];
      roundRatios.push(o[0] / o[1] / (r[0] / r[1]));
      await new Promise((resolve) => setImmediate(resolve)); // let the event loop breathe
    }
    const decodeOnly = (i: number): void => {
      if (!decodeSign1(messages[i % count]!).ok) fail('decodeSign1');
    };
    timed(100, decodeOnly);
    const [decodeOps, decodeMs] = timed(Math.min(durationMs, 1000), decodeOnly);
    timed(100, noble);
    const [nobleOps, nobleMs] = timed(durationMs, noble);
    const oursOpsPerSec = (oursOps * 1000) / oursMs;
    const rawOpsPerSec = (rawOps * 1000) / rawMs;
    const nobleOpsPerSec = (nobleOps * 1000) / nobleMs;
    figures.push({
      alg,
      messageBytes: messages[0]!.length,
      oursOpsPerSec,
      rawOpsPerSec,
      nobleOpsPerSec,
      oursOverRaw: median(roundRatios),
      nodeOverNoble: rawOpsPerSec / nobleOpsPerSec,
      decodeUs: (decodeMs * 1000) / decodeOps,
    });
  }
  return figures;
}

export function formatVerifyTable(figures: VerifyFigures[]): string {
  const header = ['alg', 'msg bytes', 'ours ops/s', 'raw ops/s', 'noble ops/s', 'ours/raw', 'node/noble', 'decode us'];
  const rows = figures.map((f) => [
    f.alg,
    String(f.messageBytes),
    f.oursOpsPerSec.toFixed(0),
    f.rawOpsPerSec.toFixed(0),
    f.nobleOpsPerSec.toFixed(0),
    f.oursOverRaw.toFixed(3),
    f.nodeOverNoble.toFixed(2),
    f.decodeUs.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
