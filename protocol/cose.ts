/**
 * COSE_Sign1 (RFC 9052 §4.2) under the wire policy of PROTOCOL.md §3: the decoder that
 * turns untrusted bytes into a checked `Sign1` (or a coded rejection, never a throw), the
 * Sig_structure, the verifier of the gateway's hot path (Ed25519 by protocol/ed25519.ts), the
 * @noble/curves reference verifier it is tested against, and the signer.
 *
 * Order of checks (PROTOCOL.md §3): size and well-formed CBOR, tag 18, four elements of
 * the right types, header well-formedness, alg allowed, crit understood; the signature is
 * checked by verifySign1 once the caller has picked the key by kid.
 */
import { verify as cryptoVerify } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { decode, encode, Tagged, type DecodeOptions } from './cbor.js';
import { H_ALG, H_KID, contextPrefix, headerValue, parseHeaders, protectedAlg, structureInto, structureLength, structureScratch, structureWith, type Label } from './_headers.js';
import { COSE_ALG_ID, checkRawPublicKey, coseAlgFromId, type CoseAlg, type Signer, type VerifyKey } from './keys.js';
import { verifyEd25519 } from './ed25519.js';
import { fail, isEdgegwError, ok, type Result } from '../common/errors.js';

/** CBOR tag of COSE_Sign1 (RFC 9052 §2). */
export const COSE_SIGN1_TAG = 18;

/** Default largest message: the largest MQTT payload PROTOCOL.md §3 accepts by default. */
export const SIGN1_MAX_BYTES = 16 * 1024;

export interface Sign1 {
  /** The protected header bstr exactly as received (RFC 9052 §4.4 signs these bytes). */
  readonly protectedBytes: Uint8Array;
  readonly alg: CoseAlg;
  /** From the protected header, else the unprotected one (PROTOCOL.md §3). */
  readonly kid: Uint8Array | undefined;
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
}

export interface DecodeSign1Options {
  /** Require CBOR tag 18 (PROTOCOL.md §3: an untagged Sign1 is invalid on the wire). Default true. */
  requireTag?: boolean;
  /** Largest accepted message in bytes; default SIGN1_MAX_BYTES. */
  maxBytes?: number;
}

// Labels whose meaning we implement, so the only ones `crit` may name (RFC 9052 §3.1).
const SIGN1_UNDERSTOOD: ReadonlySet<Label> = new Set<Label>([H_ALG, H_KID]);

// Floats stay floats (protocol/cbor.ts CborFloat): a header label or alg given as 4.0 or -8.0 is not 4 or -8.
const DEFAULT_LIMITS: DecodeOptions = { maxBytes: SIGN1_MAX_BYTES, floats: 'wrapped' };
const OK_VOID = Object.freeze(ok(undefined));

/** The decoder's EdgegwError as a rejection; it throws nothing else (protocol/cbor.ts). */
export function cborFailure(err: unknown): { ok: false; reason: 'EDGEGW_CBOR_MALFORMED' | 'EDGEGW_CBOR_LIMIT'; detail?: string } {
  if (isEdgegwError(err) && err.code === 'EDGEGW_CBOR_LIMIT') return fail('EDGEGW_CBOR_LIMIT', err.message);
  return fail('EDGEGW_CBOR_MALFORMED', err instanceof Error ? err.message : undefined);
}

/**
 * Decodes and checks a COSE_Sign1. Never throws: every failure is a coded rejection.
 * Byte strings in the result are views into `bytes`; do not mutate the input afterwards.
 */
export function decodeSign1(bytes: Uint8Array, opts: DecodeSign1Options = {}): Result<Sign1> {
  let top: unknown;
  try {
    top = decode(bytes, opts.maxBytes === undefined ? DEFAULT_LIMITS : { maxBytes: opts.maxBytes, floats: 'wrapped' });
  } catch (err) {
    return cborFailure(err);
  }
  let arr = top;
  if (top instanceof Tagged) {
    if (top.tag !== COSE_SIGN1_TAG) return fail('EDGEGW_COSE_BAD_TAG', `tag ${top.tag}, expected ${COSE_SIGN1_TAG}`);
    arr = top.value;
  } else if (opts.requireTag !== false && Array.isArray(top)) {
    return fail('EDGEGW_COSE_NOT_TAGGED', 'COSE_Sign1 without tag 18');
  }
  if (!Array.isArray(arr) || arr.length !== 4) return fail('EDGEGW_COSE_BAD_STRUCTURE', 'COSE_Sign1 must be an array of 4');
  const [protectedBytes, unprotected, payload, signature] = arr as unknown[];
  if (!(protectedBytes instanceof Uint8Array) || !(unprotected instanceof Map)) {
    return fail('EDGEGW_COSE_BAD_STRUCTURE', 'headers must be a bstr and a map');
  }
  // A nil payload (detached content, RFC 9052 §4.1) has no place on this wire.
  if (!(payload instanceof Uint8Array) || !(signature instanceof Uint8Array)) {
    return fail('EDGEGW_COSE_BAD_STRUCTURE', 'payload and signature must be bstr');
  }
  const headers = parseHeaders(protectedBytes, unprotected, SIGN1_UNDERSTOOD);
  if (!headers.ok) return headers;
  const algValue = protectedAlg(headers.value);
  if (!algValue.ok) return algValue;
  const alg = coseAlgFromId(algValue.value);
  if (alg === undefined) return fail('EDGEGW_COSE_ALG_UNSUPPORTED', `alg ${String(algValue.value)}`);
  const kid = headerValue(headers.value, H_KID) as Uint8Array | undefined;
  return ok({ protectedBytes, alg, kid, payload, signature });
}

const SIGNATURE1_PREFIX = contextPrefix('Signature1', 3);

/** RFC 9052 §4.4: the encoded ["Signature1", body_protected, external_aad, payload]. */
export function sigStructure(protectedBytes: Uint8Array, externalAad: Uint8Array, payload: Uint8Array): Uint8Array {
  return structureWith(SIGNATURE1_PREFIX, [protectedBytes, externalAad, payload]);
}

/** The length of sigStructure's result, without building it. */
export function sigStructureLength(protectedBytes: Uint8Array, externalAad: Uint8Array, payload: Uint8Array): number {
  return structureLength(SIGNATURE1_PREFIX, protectedBytes, externalAad, payload);
}

/**
 * Writes sigStructure's bytes into `out` at `pos` (which must have sigStructureLength bytes
 * of room) and returns the end: for a caller that packs many into one buffer.
 */
export function sigStructureInto(out: Uint8Array, pos: number, protectedBytes: Uint8Array, externalAad: Uint8Array, payload: Uint8Array): number {
  return structureInto(out, pos, SIGNATURE1_PREFIX, protectedBytes, externalAad, payload);
}

// RFC 9053 §2.1 (ES256: r‖s, 32 bytes each) and RFC 8032 §5.1.6 (Ed25519: R‖S): both 64.
const SIGNATURE_BYTES = 64;

function preVerify(msg: Sign1, alg: CoseAlg): Result<void> {
  if (msg.alg !== alg) return fail('EDGEGW_COSE_ALG_KEY_MISMATCH', `message alg ${msg.alg}, key alg ${alg}`);
  // A DER signature (70-72 bytes) or any other length is refused here, before any crypto.
  if (msg.signature.length !== SIGNATURE_BYTES) return fail('EDGEGW_COSE_BAD_SIGNATURE', `signature of ${msg.signature.length} bytes`);
  return OK_VOID;
}

/**
 * The raw check under verifySign1: is `signature` valid over `toBeSigned` (a Sig_structure)
 * for `key`? Ed25519 with the library chosen at start (protocol/ed25519.ts: libsodium or
 * OpenSSL, both reject S >= L, RFC 8032 §5.1.7, strict); ES256 with node:crypto and the cached
 * KeyObject, whose ECDSA accepts high-S, as PROTOCOL.md §3 wants. A signature
 * that is not 64 bytes (DER, truncated) is false before any crypto. For callers that build
 * the Sig_structure themselves, e.g. to verify on a worker thread.
 */
export function verifySignatureBytes(key: VerifyKey, toBeSigned: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES) return false;
  try {
    return key.alg === 'EdDSA'
      ? verifyEd25519(key.raw, key.keyObject, toBeSigned, signature)
      : cryptoVerify('sha256', toBeSigned, { key: key.keyObject, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/**
 * The gateway's verifier: decoded message, cached key, external_aad (the topic). The kid is
 * not compared here: the caller chose the key by kid.
 */
export function verifySign1(msg: Sign1, key: VerifyKey, externalAad: Uint8Array): Result<void> {
  const pre = preVerify(msg, key.alg);
  if (!pre.ok) return pre;
  // The Sig_structure is only read by the synchronous crypto.verify, so it may live in scratch.
  return verifySignatureBytes(key, structureScratch(SIGNATURE1_PREFIX, msg.protectedBytes, externalAad, msg.payload), msg.signature)
    ? OK_VOID
    : fail('EDGEGW_COSE_BAD_SIGNATURE');
}

/**
 * The reference check, @noble/curves: Ed25519 strict RFC 8032 (`zip215: false`: canonical
 * encodings only), P-256 with high-S accepted (`lowS: false`; RFC 9053 does not require
 * low-S). `rawPublicKey` is in the PROTOCOL.md §1 form; any other form is false.
 */
export function verifySignatureBytesNoble(alg: CoseAlg, rawPublicKey: Uint8Array, toBeSigned: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || !checkRawPublicKey(alg, rawPublicKey).ok) return false;
  try {
    return alg === 'EdDSA'
      ? ed25519.verify(signature, toBeSigned, rawPublicKey, { zip215: false })
      : p256.verify(signature, toBeSigned, rawPublicKey, { lowS: false, prehash: true, format: 'compact' });
  } catch {
    return false;
  }
}

/** The reference verifier; tests hold verifySign1 to the same answers on every vector. */
export function verifySign1Noble(msg: Sign1, alg: CoseAlg, rawPublicKey: Uint8Array, externalAad: Uint8Array): Result<void> {
  const keyCheck = checkRawPublicKey(alg, rawPublicKey);
  if (!keyCheck.ok) return keyCheck;
  const pre = preVerify(msg, alg);
  if (!pre.ok) return pre;
  return verifySignatureBytesNoble(alg, rawPublicKey, sigStructure(msg.protectedBytes, externalAad, msg.payload), msg.signature)
    ? OK_VOID
    : fail('EDGEGW_COSE_BAD_SIGNATURE');
}

/**
 * Signs a payload as PROTOCOL.md §3 lays it out: protected {1: alg, 4: kid}, unprotected {},
 * tag 18 unless `tagged: false`.
 */
export function signSign1(signer: Signer, payload: Uint8Array, externalAad: Uint8Array, opts: { tagged?: boolean } = {}): Uint8Array {
  const protectedBytes = encode(
    new Map<number, unknown>([
      [H_ALG, COSE_ALG_ID[signer.alg]],
      [H_KID, signer.kid],
    ]),
  );
  const signature = signer.sign(sigStructure(protectedBytes, externalAad, payload));
  const body = [protectedBytes, new Map(), payload, signature];
  return encode(opts.tagged === false ? body : new Tagged(COSE_SIGN1_TAG, body));
}
