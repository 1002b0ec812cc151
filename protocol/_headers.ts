/**
 * Internals shared by the COSE modules (cose.ts, encrypt.ts): header-bucket parsing under
 * the wire policy of PROTOCOL.md §3, and the hand-built "to be signed / to be encrypted"
 * structures of RFC 9052 §4.4 and §5.3. Not part of the public surface (`_` prefix).
 *
 * The policy, in one place:
 * - the protected header is the bstr as received: h'' is the empty map, anything else must
 *   decode (with our strict decoder) to a map; it is never re-encoded (RFC 9052 §3);
 * - labels are int or tstr; a label in both buckets is BAD_HEADER (RFC 9052 §3);
 * - `crit` (2) lives in the protected bucket, is a non-empty array of labels, and names only
 *   labels the caller understands, else CRIT_UNKNOWN (RFC 9052 §3.1);
 * - the values of the labels we read are type-checked (alg int/tstr, kid/IV/Partial IV bstr).
 */
import { decode } from './cbor.js';
import { isEdgegwError, fail, ok, type Result } from '../common/errors.js';

/** A header label: int or tstr (RFC 9052 §3). Large ints decode as bigint. */
export type Label = number | bigint | string;

export const H_ALG = 1;
export const H_CRIT = 2;
export const H_KID = 4;
export const H_IV = 5;
export const H_PARTIAL_IV = 6;

/** Both buckets of one COSE layer, checked for well-formedness. */
export interface HeaderBuckets {
  readonly protectedMap: ReadonlyMap<Label, unknown>;
  readonly unprotectedMap: ReadonlyMap<Label, unknown>;
}

const EMPTY: ReadonlyMap<Label, unknown> = new Map();

// A protected header is a handful of small values; these bounds are generous for that and
// keep a hostile header from costing more than the outer message already did (whose size
// limit already bounds this bstr).
const PROTECTED_LIMITS = Object.freeze({ maxBytes: Number.MAX_SAFE_INTEGER, maxDepth: 8, maxItems: 256, floats: 'wrapped' as const });

// Labels whose values must be bstr wherever they appear (RFC 9052 §3.1).
const BSTR_LABELS = [H_KID, H_IV, H_PARTIAL_IV] as const;

function isLabel(k: unknown): k is Label {
  return typeof k === 'string' || typeof k === 'bigint' || (typeof k === 'number' && Number.isInteger(k));
}

/**
 * Parses the protected bstr and checks both buckets. `understood` is the set of labels the
 * caller processes; only those may appear in `crit`.
 */
export function parseHeaders(
  protectedBytes: Uint8Array,
  unprotected: Map<unknown, unknown>,
  understood: ReadonlySet<Label>,
): Result<HeaderBuckets> {
  let protectedMap: ReadonlyMap<Label, unknown> = EMPTY;
  if (protectedBytes.length > 0) {
    let decoded: unknown;
    try {
      decoded = decode(protectedBytes, PROTECTED_LIMITS);
    } catch (err) {
      return fail('EDGEGW_COSE_BAD_HEADER', `protected header is not well-formed CBOR${isEdgegwError(err) ? `: ${err.message}` : ''}`);
    }
    if (!(decoded instanceof Map)) return fail('EDGEGW_COSE_BAD_HEADER', 'protected header is not a map');
    for (const k of decoded.keys()) {
      if (!isLabel(k)) return fail('EDGEGW_COSE_BAD_HEADER', 'protected header label is not an int or tstr');
    }
    protectedMap = decoded as Map<Label, unknown>;
  }
  for (const k of unprotected.keys()) {
    if (!isLabel(k)) return fail('EDGEGW_COSE_BAD_HEADER', 'unprotected header label is not an int or tstr');
    // RFC 9052 §3: a label must not occur in both buckets.
    if (protectedMap.has(k)) return fail('EDGEGW_COSE_BAD_HEADER', `label ${String(k)} is in both header buckets`);
  }
  if (unprotected.has(H_CRIT)) return fail('EDGEGW_COSE_BAD_HEADER', 'crit must be in the protected header');
  const crit = protectedMap.get(H_CRIT);
  if (crit !== undefined) {
    // RFC 9052 §3.1: crit is an array of at least one label.
    if (!Array.isArray(crit) || crit.length === 0 || !crit.every(isLabel)) {
      return fail('EDGEGW_COSE_BAD_HEADER', 'crit must be a non-empty array of labels');
    }
    for (const label of crit) {
      if (!understood.has(label)) return fail('EDGEGW_COSE_CRIT_UNKNOWN', `crit names label ${String(label)}`);
    }
  }
  const buckets: HeaderBuckets = { protectedMap, unprotectedMap: unprotected as Map<Label, unknown> };
  for (const label of BSTR_LABELS) {
    const v = headerValue(buckets, label);
    if (v !== undefined && !(v instanceof Uint8Array)) return fail('EDGEGW_COSE_BAD_HEADER', `header ${label} must be a bstr`);
  }
  return ok(buckets);
}

/** The value of a label from whichever bucket holds it (the buckets are disjoint). */
export function headerValue(h: HeaderBuckets, label: Label): unknown {
  const v = h.protectedMap.get(label);
  return v !== undefined ? v : h.unprotectedMap.get(label);
}

/**
 * The alg of a layer whose alg must be integrity-protected (PROTOCOL.md §3): only the
 * protected bucket counts. Returns the raw value for the caller to map to its own set.
 */
export function protectedAlg(h: HeaderBuckets): Result<number | bigint | string> {
  const alg = h.protectedMap.get(H_ALG);
  if (alg === undefined) {
    return fail('EDGEGW_COSE_ALG_MISSING', h.unprotectedMap.has(H_ALG) ? 'alg is only in the unprotected header' : 'no alg');
  }
  if (!isLabel(alg)) return fail('EDGEGW_COSE_BAD_HEADER', 'alg must be an int or tstr');
  return ok(alg);
}

// ---------------------------------------------------------------------------------------
// Structures that are signed or used as AAD. Built by hand into one buffer: they are on
// the verification hot path, and their layout is fixed (RFC 9052 §4.4, §5.3).

const textEncoder = new TextEncoder();

function headLength(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9;
}

function writeHead(out: Uint8Array, pos: number, major: number, n: number): number {
  const m = major << 5;
  if (n < 24) {
    out[pos] = m | n;
    return pos + 1;
  }
  if (n < 0x100) {
    out[pos] = m | 24;
    out[pos + 1] = n;
    return pos + 2;
  }
  if (n < 0x10000) {
    out[pos] = m | 25;
    out[pos + 1] = n >>> 8;
    out[pos + 2] = n & 0xff;
    return pos + 3;
  }
  if (n < 0x100000000) {
    out[pos] = m | 26;
    out[pos + 1] = n >>> 24;
    out[pos + 2] = (n >>> 16) & 0xff;
    out[pos + 3] = (n >>> 8) & 0xff;
    out[pos + 4] = n & 0xff;
    return pos + 5;
  }
  out[pos] = m | 27;
  new DataView(out.buffer, out.byteOffset).setBigUint64(pos + 1, BigInt(n));
  return pos + 9;
}

/** Encoded `[context, h'', h'', ...]` heads: the array head and the tstr context, precomputed. */
export function contextPrefix(context: string, parts: number): Uint8Array {
  const text = textEncoder.encode(context);
  const out = new Uint8Array(1 + headLength(text.length) + text.length);
  let pos = writeHead(out, 0, 4, 1 + parts);
  pos = writeHead(out, pos, 3, text.length);
  out.set(text, pos);
  return out;
}

/** The encoded length of `prefix` followed by three parts as bstrs (structureInto's size). */
export function structureLength(prefix: Uint8Array, a: Uint8Array, b: Uint8Array, c: Uint8Array): number {
  return prefix.length + headLength(a.length) + a.length + headLength(b.length) + b.length + headLength(c.length) + c.length;
}

/** Writes the structure of structureWith into `out` at `pos`; returns the end. */
export function structureInto(out: Uint8Array, pos: number, prefix: Uint8Array, a: Uint8Array, b: Uint8Array, c: Uint8Array): number {
  out.set(prefix, pos);
  return writeBstr(out, writeBstr(out, writeBstr(out, pos + prefix.length, a), b), c);
}

function writeBstr(out: Uint8Array, pos: number, bytes: Uint8Array): number {
  const at = writeHead(out, pos, 2, bytes.length);
  out.set(bytes, at);
  return at + bytes.length;
}

/** `prefix` followed by each part as a definite-length bstr: the deterministic encoding. */
export function structureWith(prefix: Uint8Array, parts: readonly Uint8Array[]): Uint8Array {
  let len = prefix.length;
  for (const p of parts) len += headLength(p.length) + p.length;
  return writeStructure(new Uint8Array(len), prefix, parts);
}

function writeStructure(out: Uint8Array, prefix: Uint8Array, parts: readonly Uint8Array[]): Uint8Array {
  out.set(prefix, 0);
  let pos = prefix.length;
  for (const p of parts) pos = writeBstr(out, pos, p);
  return out;
}

// A small typed array costs more to allocate (about 1.5 us here) than the structure costs to
// write, and the hot path builds one per message. Callers that use the result synchronously
// and drop it (crypto.verify) may borrow this buffer instead.
let scratch = new Uint8Array(4096);

/** Like structureWith, but a view into a shared buffer, valid only until the next call. */
export function structureScratch(prefix: Uint8Array, a: Uint8Array, b: Uint8Array, c: Uint8Array): Uint8Array {
  const len = structureLength(prefix, a, b, c);
  if (len > scratch.length) scratch = new Uint8Array(Math.max(len, scratch.length * 2));
  structureInto(scratch, 0, prefix, a, b, c);
  return scratch.subarray(0, len);
}
