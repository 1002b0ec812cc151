/**
 * Signing keys of the wire contract (PROTOCOL.md §1): the two algorithms, raw public key
 * formats, kids, verification keys for the gateway (node:crypto KeyObjects, imported once
 * and cached by the caller) and signers for both sides: @noble/curves on the device side
 * (what small firmware does: raw keys, r‖s signatures) and node:crypto on the gateway side.
 */
import { createHash, createPublicKey, sign as nodeSign, type KeyObject } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { EdgegwError, fail, ok, type Result } from '../common/errors.js';

export type CoseAlg = 'EdDSA' | 'ES256';

/** COSE algorithm identifiers (RFC 9053 §2.1, §2.2). */
export const COSE_ALG_ID = Object.freeze({ EdDSA: -8, ES256: -7 } as const);

/** The alg for a COSE alg id, or undefined when the gateway does not accept it. */
export function coseAlgFromId(id: unknown): CoseAlg | undefined {
  return id === -8 ? 'EdDSA' : id === -7 ? 'ES256' : undefined;
}

/** PROTOCOL.md §1: the first 8 bytes of SHA-256(raw public key). */
export function kidOf(rawPublicKey: Uint8Array): Uint8Array {
  const digest = createHash('sha256').update(rawPublicKey).digest();
  return new Uint8Array(digest.buffer, digest.byteOffset, 8).slice();
}

export interface VerifyKey {
  readonly alg: CoseAlg;
  /** PROTOCOL.md §1 raw form: Ed25519 32 bytes; P-256 65 bytes 0x04‖X‖Y. */
  readonly raw: Uint8Array;
  readonly kid: Uint8Array;
  readonly keyObject: KeyObject;
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/**
 * Checks a raw public key against PROTOCOL.md §1. Ed25519 keys must be a canonical point
 * encoding (RFC 8032 §5.1.3) and not of small order; P-256 keys must be uncompressed SEC1 and on the curve (noble
 * checks the curve equation and rejects the point at infinity).
 */
export function checkRawPublicKey(alg: CoseAlg, raw: Uint8Array): Result<void> {
  if (!(raw instanceof Uint8Array)) return fail('EDGEGW_COSE_BAD_KEY', 'public key is not bytes');
  if (alg === 'EdDSA') {
    if (raw.length !== 32) return fail('EDGEGW_COSE_BAD_KEY', `Ed25519 public key must be 32 bytes, got ${raw.length}`);
    let point: InstanceType<typeof ed25519.Point>;
    try {
      point = ed25519.Point.fromBytes(raw);
    } catch {
      return fail('EDGEGW_COSE_BAD_KEY', 'Ed25519 public key is not a valid point encoding');
    }
    // One of the 8 points of small order is no key: no private key belongs to it, and under
    // a cofactored check anyone can make signatures that verify against it.
    if (point.isSmallOrder()) return fail('EDGEGW_COSE_BAD_KEY', 'Ed25519 public key is a point of small order');
    return ok(undefined);
  }
  if (alg === 'ES256') {
    if (raw.length !== 65 || raw[0] !== 0x04) return fail('EDGEGW_COSE_BAD_KEY', 'P-256 public key must be 65 bytes 0x04||X||Y');
    try {
      p256.Point.fromBytes(raw).assertValidity();
    } catch {
      return fail('EDGEGW_COSE_BAD_KEY', 'P-256 public key is not on the curve');
    }
    return ok(undefined);
  }
  return fail('EDGEGW_COSE_ALG_UNSUPPORTED', `alg ${String(alg)}`);
}

/** Checks a raw public key (see checkRawPublicKey) and imports it once into node:crypto. */
export function importPublicKey(alg: CoseAlg, raw: Uint8Array): Result<VerifyKey> {
  const checked = checkRawPublicKey(alg, raw);
  if (!checked.ok) return checked;
  const jwk =
    alg === 'EdDSA'
      ? { kty: 'OKP', crv: 'Ed25519', x: b64url(raw) }
      : { kty: 'EC', crv: 'P-256', x: b64url(raw.subarray(1, 33)), y: b64url(raw.subarray(33, 65)) };
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey({ key: jwk, format: 'jwk' });
  } catch {
    return fail('EDGEGW_COSE_BAD_KEY', 'node:crypto refused the public key');
  }
  const copy = raw.slice();
  return ok(Object.freeze({ alg, raw: copy, kid: kidOf(copy), keyObject }));
}

export interface Signer {
  readonly alg: CoseAlg;
  readonly kid: Uint8Array;
  readonly publicKey: Uint8Array;
  /** The raw signature: Ed25519 64 bytes; ES256 64-byte r‖s over SHA-256(data) (RFC 9053 §2.1). */
  sign(data: Uint8Array): Uint8Array;
}

/**
 * Device-side signer from a raw private key (Ed25519: the 32-byte seed; P-256: the 32-byte
 * scalar), as firmware holds it. Throws EDGEGW_COSE_BAD_KEY for a malformed key: a signer is
 * built from configuration, not from wire input.
 */
export function nobleSigner(alg: CoseAlg, privateKey: Uint8Array): Signer {
  if (!(privateKey instanceof Uint8Array) || privateKey.length !== 32) {
    throw new EdgegwError('EDGEGW_COSE_BAD_KEY', 'private key must be 32 bytes');
  }
  const secret = privateKey.slice();
  if (alg === 'EdDSA') {
    const publicKey = ed25519.getPublicKey(secret);
    return Object.freeze({ alg, kid: kidOf(publicKey), publicKey, sign: (data: Uint8Array) => ed25519.sign(data, secret) });
  }
  if (alg === 'ES256') {
    if (!p256.utils.isValidSecretKey(secret)) throw new EdgegwError('EDGEGW_COSE_BAD_KEY', 'P-256 private key is out of range');
    const publicKey = p256.getPublicKey(secret, false);
    // prehash: SHA-256 of the Sig_structure (RFC 9053 §2.1); 'compact' is r‖s.
    return Object.freeze({ alg, kid: kidOf(publicKey), publicKey, sign: (data: Uint8Array) => p256.sign(data, secret, { prehash: true, format: 'compact' }) });
  }
  throw new EdgegwError('EDGEGW_COSE_ALG_UNSUPPORTED', `alg ${String(alg)}`);
}

/** The PROTOCOL.md §1 raw public key of a node:crypto key (private or public). */
export function rawPublicKeyOf(alg: CoseAlg, key: KeyObject): Uint8Array {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' });
  if (alg === 'EdDSA') {
    if (pub.asymmetricKeyType !== 'ed25519' || typeof jwk.x !== 'string') {
      throw new EdgegwError('EDGEGW_COSE_ALG_KEY_MISMATCH', 'EdDSA needs an Ed25519 key');
    }
    return new Uint8Array(Buffer.from(jwk.x, 'base64url'));
  }
  if (pub.asymmetricKeyType !== 'ec' || jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') {
    throw new EdgegwError('EDGEGW_COSE_ALG_KEY_MISMATCH', 'ES256 needs a P-256 key');
  }
  const out = new Uint8Array(65);
  out[0] = 0x04;
  out.set(Buffer.from(jwk.x, 'base64url'), 1);
  out.set(Buffer.from(jwk.y, 'base64url'), 33);
  return out;
}

/** Gateway-side signer over a node:crypto private key. Throws ALG_KEY_MISMATCH for a wrong key type. */
export function nodeSigner(alg: CoseAlg, privateKey: KeyObject): Signer {
  if (alg !== 'EdDSA' && alg !== 'ES256') throw new EdgegwError('EDGEGW_COSE_ALG_UNSUPPORTED', `alg ${String(alg)}`);
  if (privateKey.type !== 'private') throw new EdgegwError('EDGEGW_COSE_BAD_KEY', 'a signer needs a private key');
  const publicKey = rawPublicKeyOf(alg, privateKey);
  const sign =
    alg === 'EdDSA'
      ? (data: Uint8Array) => new Uint8Array(nodeSign(null, data, privateKey))
      : (data: Uint8Array) => new Uint8Array(nodeSign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
  return Object.freeze({ alg, kid: kidOf(publicKey), publicKey, sign });
}

/** A fresh key pair in the raw formats of PROTOCOL.md §1 (private: seed / scalar). */
export function generateKeyPair(alg: CoseAlg): { privateKey: Uint8Array; publicKey: Uint8Array } {
  if (alg === 'EdDSA') {
    const { secretKey, publicKey } = ed25519.keygen();
    return { privateKey: secretKey, publicKey };
  }
  if (alg === 'ES256') {
    const secretKey = p256.utils.randomSecretKey();
    return { privateKey: secretKey, publicKey: p256.getPublicKey(secretKey, false) };
  }
  throw new EdgegwError('EDGEGW_COSE_ALG_UNSUPPORTED', `alg ${String(alg)}`);
}
