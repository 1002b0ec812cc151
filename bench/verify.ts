/**
 * Signature verification throughput, per alg, on the same messages:
 * - ours: decodeSign1 + verifySign1 with a cached VerifyKey (the gateway's full COSE path,
 *   Ed25519 through the library `selectEd25519Verifier('auto')` picks: libsodium where it loads);
 * - raw node:crypto: `crypto.verify` on the precomputed Sig_structures;
 * - raw libsodium (Ed25519 only): `crypto_sign_verify_detached` on the same Sig_structures;
 * - noble: @noble/curves verify on the same Sig_structures (the reference implementation).
 * Ours and the raw checks run in alternating short rounds so that load from other processes
 * hits all alike. ours / raw of the same library is the median of the per-round ratios: what
 * the COSE decode and checks add (target >= 0.9). ours / raw node:crypto says what the choice
 * of library gains.
 */
import { verify as cryptoVerify } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { encode } from '../protocol/cbor.js';
import {
  decodeSign1,
  generateKeyPair,
  importPublicKey,
  libsodiumStatus,
  nobleSigner,
  selectEd25519Verifier,
  sigStructure,
  signSign1,
  verifyEd25519Libsodium,
  verifySign1,
  type CoseAlg,
  type Ed25519Verifier,
} from '../protocol/index.js';
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
  /** The library under ours: ES256 is always node:crypto. */
  library: Ed25519Verifier;
  oursOpsPerSec: number;
  /** node:crypto's raw check. */
  rawOpsPerSec: number;
  /** libsodium's raw check (Ed25519 where it loads), else null. */
  sodiumOpsPerSec: number | null;
  nobleOpsPerSec: number;
  /**
   * ours / the raw check of the same library: what the COSE decode and checks cost on top of
   * the signature check. The median of the per-round ratios, so that a burst of load in one
   * round does not tilt it.
   */
  oursOverRaw: number;
  /** ours / raw node:crypto, median of the per-round ratios: the library's gain. */
  oursOverNode: number;
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
  const chosen = selectEd25519Verifier('auto');
  const ed25519Library: Ed25519Verifier = chosen.ok ? chosen.value : 'node';
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
    const sodium =
      alg === 'EdDSA' && libsodiumStatus().available
        ? (i: number): void => {
            if (!verifyEd25519Libsodium(pub, tbs[i % count]!, sigs[i % count]!)) fail('libsodium');
          }
        : null;
    const noble =
      alg === 'EdDSA'
        ? (i: number): void => {
            if (!ed25519.verify(sigs[i % count]!, tbs[i % count]!, pub, { zip215: false })) fail('noble');
          }
        : (i: number): void => {
            if (!p256.verify(sigs[i % count]!, tbs[i % count]!, pub, { lowS: false })) fail('noble');
          };
    const library: Ed25519Verifier = alg === 'EdDSA' ? ed25519Library : 'node';

    // Each path's operations and ms, run in short rounds in a rotating order.
    const paths = [ours, raw, ...(sodium ? [sodium] : [])];
    const ops = paths.map(() => 0);
    const ms = paths.map(() => 0);
    for (const p of paths) timed(200, p); // warm-up: JIT and caches
    const sameRatios: number[] = [];
    const nodeRatios: number[] = [];
    for (let round = 0; round * ROUND_MS < durationMs; round++) {
      const rates: number[] = [];
      for (let k = 0; k < paths.length; k++) {
        const j = (round + k) % paths.length;
        const [n, t] = timed(ROUND_MS, paths[j]!, ops[j]);
        ops[j]! += n;
        ms[j]! += t;
        rates[j] = n / t;
      }
      const same = library === 'libsodium' && sodium ? rates[2]! : rates[1]!;
      sameRatios.push(rates[0]! / same);
      nodeRatios.push(rates[0]! / rates[1]!);
      await new Promise((resolve) => setImmediate(resolve)); // let the event loop breathe
    }
    const decodeOnly = (i: number): void => {
      if (!decodeSign1(messages[i % count]!).ok) fail('decodeSign1');
    };
    timed(100, decodeOnly);
    const [decodeOps, decodeMs] = timed(Math.min(durationMs, 1000), decodeOnly);
    timed(100, noble);
    const [nobleOps, nobleMs] = timed(durationMs, noble);
    const perSec = (j: number): number => (ops[j]! * 1000) / ms[j]!;
    const rawOpsPerSec = perSec(1);
    const nobleOpsPerSec = (nobleOps * 1000) / nobleMs;
    figures.push({
      alg,
      messageBytes: messages[0]!.length,
      library,
      oursOpsPerSec: perSec(0),
      rawOpsPerSec,
      sodiumOpsPerSec: sodium ? perSec(2) : null,
      nobleOpsPerSec,
      oursOverRaw: median(sameRatios),
      oursOverNode: median(nodeRatios),
      nodeOverNoble: rawOpsPerSec / nobleOpsPerSec,
      decodeUs: (decodeMs * 1000) / decodeOps,
    });
  }
  return figures;
}

export function formatVerifyTable(figures: VerifyFigures[]): string {
  const header = ['alg', 'msg bytes', 'library', 'ours ops/s', 'raw node ops/s', 'raw sodium ops/s', 'noble ops/s', 'ours/raw same lib', 'ours/raw node', 'node/noble', 'decode us'];
  const rows = figures.map((f) => [
    f.alg,
    String(f.messageBytes),
    f.library,
    f.oursOpsPerSec.toFixed(0),
    f.rawOpsPerSec.toFixed(0),
    f.sodiumOpsPerSec === null ? '-' : f.sodiumOpsPerSec.toFixed(0),
    f.nobleOpsPerSec.toFixed(0),
    f.oursOverRaw.toFixed(3),
    f.oursOverNode.toFixed(3),
    f.nodeOverNoble.toFixed(2),
    f.decodeUs.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
