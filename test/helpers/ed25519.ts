// A signature that only the key's holder can make and on which the Ed25519 libraries differ:
// R is the neutral point (0, 1), of small order, and S = k·a mod L, so that S·B − k·A is the
// neutral point too. OpenSSL (cofactorless, RFC 8032 §5.1.7 with R compared as bytes) and
// @noble/curves (cofactored) accept it; libsodium refuses every small-order R. The tests use it
// to tell which library made a verdict.
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { kidOf, type Signer } from '../../protocol/index.js';

const L = ed25519.Point.Fn.ORDER;
/** The encoding of the neutral point (0, 1) (RFC 8032 §5.1.2). */
export const NEUTRAL_R = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0));

function leToBigint(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

function bigintToLe32(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
}

/** R = neutral point, S = k·a mod L, where k = SHA-512(R ‖ A ‖ M) mod L (RFC 8032 §5.1.6). */
export function neutralRSignature(seed: Uint8Array, message: Uint8Array): Uint8Array {
  const { scalar, pointBytes } = ed25519.utils.getExtendedPublicKey(seed);
  const k = leToBigint(sha512(new Uint8Array([...NEUTRAL_R, ...pointBytes, ...message]))) % L;
  return new Uint8Array([...NEUTRAL_R, ...bigintToLe32((k * scalar) % L)]);
}

/** A device-side Signer (protocol/keys.ts) whose every signature has the neutral R. */
export function neutralRSigner(seed: Uint8Array): Signer {
  const publicKey = ed25519.getPublicKey(seed);
  return { alg: 'EdDSA', kid: kidOf(publicKey), publicKey, sign: (data) => neutralRSignature(seed, data) };
}
