/**
 * The connect token of PROTOCOL.md §4: a CWT (RFC 8392) claims set `{1 iss, 3 aud, 6 iat,
 * 7 cti}` in a tagged COSE_Sign1 signed by the device's active key, used as the MQTT password
 * on the plain listener. This module owns the claims (generic RFC 8392 parsing, the stricter
 * connect-token shape and its checks), the cti replay cache, and token creation and
 * verification on top of cose.ts.
 */
import { fail, isEdgegwError, ok, EdgegwError, type Result } from '../common/errors.js';
import { decode, encode } from './cbor.js';
import { decodeSign1, signSign1, verifySign1 } from './cose.js';
import { isDeviceId } from './ids.js';
import type { Signer, VerifyKey } from './keys.js';

/** RFC 8392 §3.1 claim keys (CBOR map labels). */
export const CWT_CLAIM = Object.freeze({ iss: 1, sub: 2, aud: 3, exp: 4, nbf: 5, iat: 6, cti: 7 } as const);

/** A claims set read generically (RFC 8392 §3): the registered claims, typed, and the rest. */
export interface CwtClaims {
  iss?: string;
  sub?: string;
  aud?: string;
  /** NumericDate: seconds since the epoch, integer or float (RFC 8392 §2). */
  exp?: number;
  nbf?: number;
  iat?: number;
  cti?: Uint8Array;
  /** Claims other than 1..7, keyed as they appeared. */
  other: Map<unknown, unknown>;
}

export interface ConnectTokenClaims {
  /** The deviceId: must equal the MQTT username and client id. */
  iss: string;
  /** The gatewayId of the gateway the token is for. */
  aud: string;
  /** Seconds since the Unix epoch. */
  iat: number;
  /** 8 to 16 random bytes; a token is accepted once. */
  cti: Uint8Array;
}

export interface ConnectTokenContext {
  username: string;
  clientId: string;
  gatewayId: string;
  nowMs: number;
  /** Largest accepted |iat − now|, seconds. Default 300 (PROTOCOL.md §4). */
  windowS?: number;
}

export const CONNECT_TOKEN_WINDOW_S = 300;
const CTI_MIN_BYTES = 8;
const CTI_MAX_BYTES = 16;
// A connect token is an MQTT password: at most 65,535 bytes by [MQTT-1.5.3]; ours are ~150.
const TOKEN_MAX_BYTES = 1024;
const EMPTY = new Uint8Array(0);

type Invalid = { ok: false; reason: 'EDGEGW_CWT_INVALID'; detail?: string };

function invalid(detail: string): Invalid {
  return fail('EDGEGW_CWT_INVALID', detail);
}

function isNumericDate(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Parses any RFC 8392 claims set, checking the types of the registered claims (§3.1). */
export function parseCwtClaims(bytes: Uint8Array): Result<CwtClaims> {
  let decoded: unknown;
  try {
    decoded = decode(bytes, { maxBytes: TOKEN_MAX_BYTES, floats: 'wrapped' });
  } catch (err) {
    return invalid(isEdgegwError(err) ? `${err.code}: ${err.message}` : 'undecodable');
  }
  if (!(decoded instanceof Map)) return invalid('claims set is not a map');
  const out: CwtClaims = { other: new Map() };
  for (const [key, value] of decoded) {
    switch (key) {
      case CWT_CLAIM.iss:
      case CWT_CLAIM.sub:
      case CWT_CLAIM.aud:
        if (typeof value !== 'string') return invalid(`claim ${key} must be a text string`);
        out[key === 1 ? 'iss' : key === 2 ? 'sub' : 'aud'] = value;
        break;
      case CWT_CLAIM.exp:
      case CWT_CLAIM.nbf:
      case CWT_CLAIM.iat:
        if (!isNumericDate(value)) return invalid(`claim ${key} must be a NumericDate`);
        out[key === 4 ? 'exp' : key === 5 ? 'nbf' : 'iat'] = value;
        break;
      case CWT_CLAIM.cti:
        if (!(value instanceof Uint8Array)) return invalid('claim 7 (cti) must be a byte string');
        out.cti = value;
        break;
      default:
        out.other.set(key, value);
    }
  }
  return ok(out);
}

/**
 * Parses the claims set of a connect token. Stricter than RFC 8392 §7.2's "ignore what you
 * do not understand": PROTOCOL.md §4 names exactly four claims and the gateway accepts
 * exactly what the contract allows, so any other claim is refused.
 */
export function parseConnectTokenClaims(bytes: Uint8Array): Result<ConnectTokenClaims> {
  const parsed = parseCwtClaims(bytes);
  if (!parsed.ok) return parsed;
  const c = parsed.value;
  if (c.sub !== undefined || c.exp !== undefined || c.nbf !== undefined || c.other.size > 0) {
    return invalid('a connect token holds only the claims iss, aud, iat and cti');
  }
  const shape = checkShape(c);
  if (!shape.ok) return shape;
  return ok({ iss: c.iss!, aud: c.aud!, iat: c.iat!, cti: c.cti! });
}

function checkShape(c: Partial<ConnectTokenClaims>): Result<void> {
  if (!isDeviceId(c.iss)) return invalid('iss must be a deviceId');
  if (typeof c.aud !== 'string' || c.aud.length === 0) return invalid('aud must be a non-empty text string');
  // Whole seconds (PROTOCOL.md §4), not the fractional NumericDate RFC 8392 also allows.
  if (typeof c.iat !== 'number' || !Number.isSafeInteger(c.iat) || c.iat < 0) return invalid('iat must be an integer number of seconds');
  if (!(c.cti instanceof Uint8Array) || c.cti.length < CTI_MIN_BYTES || c.cti.length > CTI_MAX_BYTES) {
    return invalid('cti must be 8 to 16 bytes');
  }
  return ok(undefined);
}

export function encodeConnectTokenClaims(claims: ConnectTokenClaims): Uint8Array {
  const shape = checkShape(claims);
  if (!shape.ok) throw new EdgegwError('EDGEGW_CWT_INVALID', shape.detail);
  return encode(
    new Map<number, unknown>([
      [CWT_CLAIM.iss, claims.iss],
      [CWT_CLAIM.aud, claims.aud],
      [CWT_CLAIM.iat, claims.iat],
      [CWT_CLAIM.cti, claims.cti],
    ]),
  );
}

/** PROTOCOL.md §4: iss equals the username and client id, aud this gateway, iat within the window. */
export function checkConnectTokenClaims(claims: ConnectTokenClaims, ctx: ConnectTokenContext): Result<void> {
  const shape = checkShape(claims);
  if (!shape.ok) return shape;
  if (claims.iss !== ctx.username || claims.iss !== ctx.clientId) return invalid('iss differs from the username or client id');
  if (claims.aud !== ctx.gatewayId) return invalid('aud is not this gateway');
  const windowMs = (ctx.windowS ?? CONNECT_TOKEN_WINDOW_S) * 1000;
  // Written as !(… <= …) so that a NaN clock or window refuses instead of accepting.
  if (!(Math.abs(claims.iat * 1000 - ctx.nowMs) <= windowMs)) return fail('EDGEGW_CWT_EXPIRED', 'iat outside the clock window');
  return ok(undefined);
}

// ---------------------------------------------------------------------------------------
// cti replay cache

export type CtiVerdict = 'fresh' | 'replayed' | 'full';

export interface CtiCache {
  /**
   * 'fresh': not seen within the window, now remembered until iat + window. 'replayed': seen.
   * 'full': the cache holds maxEntries unexpired ctis, so this one is refused rather than an
   * old one forgotten (forgetting would let that token be replayed). Call only after the
   * token's signature and iat window have been checked, so no unauthenticated input fills it.
   */
  checkAndRemember(cti: Uint8Array, iatS: number, nowMs: number): CtiVerdict;
  readonly size: number;
}

export interface CtiCacheOptions {
  /** The iat window of the tokens, seconds. Default 300. */
  windowS?: number;
  /** Most ctis remembered at once; about 100 bytes each. Default 65,536. */
  maxEntries?: number;
}

/**
 * A cti is only worth remembering while its token could still pass the iat check, i.e. until
 * now > iat + window; entries are evicted in expiry order from a binary min-heap, so each
 * call costs O(log n) however full the cache is. Assumes the gateway clock does not step
 * back by more than the window (a step back could revive a token whose cti was evicted).
 */
export function createCtiCache(options: CtiCacheOptions = {}): CtiCache {
  const windowMs = (options.windowS ?? CONNECT_TOKEN_WINDOW_S) * 1000;
  const maxEntries = options.maxEntries ?? 65_536;
  const expiresAt = new Map<string, number>();
  const heap: { at: number; key: string }[] = [];

  const less = (i: number, j: number): boolean => heap[i]!.at < heap[j]!.at;
  const swap = (i: number, j: number): void => {
    const t = heap[i]!;
    heap[i] = heap[j]!;
    heap[j] = t;
  };
  const push = (entry: { at: number; key: string }): void => {
    heap.push(entry);
    for (let i = heap.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!less(i, parent)) break;
      swap(i, parent);
      i = parent;
    }
  };
  const popMin = (): void => {
    const last = heap.pop()!;
    if (heap.length === 0) return;
    heap[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && less(l, m)) m = l;
      if (r < heap.length && less(r, m)) m = r;
      if (m === i) return;
      swap(i, m);
      i = m;
    }
  };

  return {
    checkAndRemember(cti, iatS, nowMs) {
      while (heap.length > 0 && heap[0]!.at < nowMs) {
        expiresAt.delete(heap[0]!.key);
        popMin();
      }
      const key = Buffer.from(cti.buffer, cti.byteOffset, cti.byteLength).toString('hex');
      if (expiresAt.has(key)) return 'replayed';
      if (expiresAt.size >= maxEntries) return 'full';
      const at = iatS * 1000 + windowMs;
      expiresAt.set(key, at);
      push({ at, key });
      return 'fresh';
    },
    get size() {
      return expiresAt.size;
    },
  };
}

// ---------------------------------------------------------------------------------------
// tokens

/** A connect token: tagged COSE_Sign1 with empty external_aad over the encoded claims. */
export function createConnectToken(signer: Signer, claims: ConnectTokenClaims): Uint8Array {
  return signSign1(signer, encodeConnectTokenClaims(claims), EMPTY);
}

/**
 * Verifies a connect token in the order of PROTOCOL.md §4: structure and signature with the
 * device's active key, claims, then the cti (last, so only authentic tokens are remembered).
 */
export function verifyConnectToken(token: Uint8Array, key: VerifyKey, ctx: ConnectTokenContext, ctiCache: CtiCache): Result<ConnectTokenClaims> {
  const msg = decodeSign1(token, { maxBytes: TOKEN_MAX_BYTES });
  if (!msg.ok) return msg;
  if (msg.value.kid !== undefined && !Buffer.from(key.kid).equals(msg.value.kid)) {
    return fail('EDGEGW_COSE_KID_MISMATCH', 'token kid is not the active key');
  }
  const sig = verifySign1(msg.value, key, EMPTY);
  if (!sig.ok) return sig;
  const claims = parseConnectTokenClaims(msg.value.payload);
  if (!claims.ok) return claims;
  const checked = checkConnectTokenClaims(claims.value, ctx);
  if (!checked.ok) return checked;
  const verdict = ctiCache.checkAndRemember(claims.value.cti, claims.value.iat, ctx.nowMs);
  if (verdict === 'replayed') return fail('EDGEGW_CWT_REPLAYED');
  if (verdict === 'full') return fail('EDGEGW_CWT_CACHE_FULL');
  return claims;
}
