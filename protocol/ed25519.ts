/**
 * Which library checks Ed25519 signatures on the gateway: libsodium (sodium-native) when its
 * prebuilt addon loads on this platform, node:crypto (OpenSSL) otherwise or when configured.
 *
 * Why two: on the development machine libsodium's `crypto_sign_verify_detached` takes about
 * 47 µs against OpenSSL's 79 µs (docs/performance.md, `bench verify`), and the check is most of
 * the gateway's CPU per message.
 *
 * Both follow RFC 8032 §5.1.7 and reject a non-canonical S (PROTOCOL.md §3, "strict").
 * libsodium is stricter in two ways OpenSSL is not: it rejects a non-canonical or small-order
 * public key (which `device add` already refuses) and a small-order R (which an honest signer
 * produces with probability 2^-252). So it accepts a subset of what OpenSSL accepts, and
 * nothing an honest device sends is refused. The vector tests hold both to the same answers.
 *
 * The choice is made once at start (`selectEd25519Verifier`, from the config's
 * `ed25519Verifier`; each verify worker makes it from its workerData), then it stays.
 */
import { createRequire } from 'node:module';
import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { EdgegwError, fail, ok, type Result } from '../common/errors.js';

/** The library in use. */
export type Ed25519Verifier = 'libsodium' | 'node';
/** What the config asks for: 'auto' is libsodium when it loads here, else node:crypto. */
export type Ed25519VerifierChoice = 'auto' | Ed25519Verifier;

type DetachedVerify = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean;

interface Loaded {
  readonly verify: DetachedVerify | null;
  /** Why libsodium is not available, when it is not. */
  readonly why: string | null;
}

function loadLibsodium(): Loaded {
  try {
    const sodium = createRequire(import.meta.url)('sodium-native') as { crypto_sign_verify_detached?: unknown };
    const fn = sodium.crypto_sign_verify_detached;
    if (typeof fn !== 'function') return { verify: null, why: 'sodium-native has no crypto_sign_verify_detached' };
    return { verify: fn as DetachedVerify, why: null };
  } catch (err) {
    // No prebuilt addon for this platform (e.g. 32-bit ARM): node:crypto does the checks.
    return { verify: null, why: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
  }
}

const libsodium = loadLibsodium();
let active: Ed25519Verifier = libsodium.verify !== null ? 'libsodium' : 'node';

/** Whether libsodium loaded here, and if not, why. */
export function libsodiumStatus(): { readonly available: boolean; readonly why: string | null } {
  return { available: libsodium.verify !== null, why: libsodium.why };
}

/**
 * Sets the library for every Ed25519 check in this thread. 'libsodium' when it cannot load is
 * an error (EDGEGW_CONFIG_INVALID, with the loader's reason): asked for by name, it must not
 * silently become the slower one.
 */
export function selectEd25519Verifier(choice: Ed25519VerifierChoice): Result<Ed25519Verifier> {
  if (choice === 'node') active = 'node';
  else if (libsodium.verify !== null) active = 'libsodium';
  else if (choice === 'libsodium') {
    return fail('EDGEGW_CONFIG_INVALID', `ed25519Verifier: libsodium is not available here (${libsodium.why ?? 'unknown'})`);
  } else active = 'node';
  return ok(active);
}

/** The library in use in this thread. */
export function ed25519Verifier(): Ed25519Verifier {
  return active;
}

/**
 * Checks an Ed25519 signature with the library in use. `raw` and `keyObject` are the same key
 * (a VerifyKey's); each library takes the form it wants. The caller has checked that the
 * signature is 64 bytes.
 */
export function verifyEd25519(raw: Uint8Array, keyObject: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  return active === 'libsodium' ? libsodium.verify!(signature, message, raw) : cryptoVerify(null, message, keyObject, signature);
}

/** libsodium's check alone, for tests that hold it to the vectors; throws when it is not loaded. */
export function verifyEd25519Libsodium(raw: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (libsodium.verify === null) throw new EdgegwError('EDGEGW_INTERNAL', `libsodium is not available here: ${libsodium.why ?? 'unknown'}`);
  return libsodium.verify(signature, message, raw);
}
