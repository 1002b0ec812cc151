/**
 * Keys of the local PKI: device raw public keys (PROTOCOL.md §1) checked and imported into
 * WebCrypto, and the PKI's own P-256 private keys generated, written as PKCS#8 PEM
 * (optionally encrypted with a passphrase) and read back.
 *
 * The PKI's own keys (root, issuing CA, server, client) are ECDSA P-256: mbedTLS, wolfSSL and
 * BearSSL on microcontrollers all verify P-256 chains. Ed25519 certificates also work in
 * Node's TLS 1.3, but many MCU TLS stacks cannot verify an Ed25519-signed chain, so the CA
 * never signs with Ed25519; it only certifies Ed25519 device keys.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { EdgegwError } from '../../common/index.js';
import { subtle, type CryptoKey } from './_x509.js';

/** Device key algorithms, named as in COSE (PROTOCOL.md §1). */
export type DeviceKeyAlg = 'EdDSA' | 'ES256';

export const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
/** Signature algorithm of every certificate and CRL this PKI signs. */
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

const generateKeyPairAsync = promisify(generateKeyPair);

// PROTOCOL.md §1: Ed25519 the 32-byte key; P-256 the 65-byte uncompressed SEC1 point.
const ED25519_RAW_LENGTH = 32;
const P256_RAW_LENGTH = 65;

function badKey(message: string, cause?: unknown): EdgegwError {
  return new EdgegwError('EDGEGW_PKI_BAD_PUBLIC_KEY', message, cause === undefined ? undefined : { cause });
}

/**
 * Checks a device's raw public key and imports it for embedding in a certificate. Node's
 * importKey accepts any 32 bytes as an Ed25519 key, so the point is decoded with noble first;
 * small-order Ed25519 points are refused because signatures under them can be forged.
 */
export async function importDevicePublicKey(alg: DeviceKeyAlg, raw: Uint8Array): Promise<CryptoKey> {
  if (!(raw instanceof Uint8Array)) throw badKey('the raw public key must be bytes');
  if (alg === 'EdDSA') {
    if (raw.length !== ED25519_RAW_LENGTH) throw badKey(`an Ed25519 key is 32 bytes, got ${raw.length}`);
    let smallOrder: boolean;
    try {
      smallOrder = ed25519.Point.fromBytes(raw, false).isSmallOrder();
    } catch (err) {
      throw badKey('the Ed25519 key is not a valid point encoding (RFC 8032 §5.1.3)', err);
    }
    if (smallOrder) throw badKey('the Ed25519 key is a small-order point');
    return subtle.importKey('raw', raw, { name: 'Ed25519' }, true, ['verify']);
  }
  if (alg === 'ES256') {
    if (raw.length !== P256_RAW_LENGTH || raw[0] !== 0x04) {
      throw badKey('a P-256 key is the 65-byte uncompressed point 0x04||X||Y');
    }
    try {
      p256.Point.fromBytes(raw).assertValidity();
    } catch (err) {
      throw badKey('the P-256 key is not a point on the curve', err);
    }
    return subtle.importKey('raw', raw, ECDSA_P256, true, ['verify']);
  }
  throw badKey(`unsupported key algorithm ${String(alg)}; expected EdDSA or ES256`);
}

/** A freshly generated P-256 key pair: WebCrypto keys for signing, the KeyObject for export. */
export interface GeneratedKey {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  keyObject: KeyObject;
}

export async function generateP256Key(): Promise<GeneratedKey> {
  const { privateKey } = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  return { ...(await toCryptoKeys(privateKey)), keyObject: privateKey };
}

async function toCryptoKeys(keyObject: KeyObject): Promise<{ privateKey: CryptoKey; publicKey: CryptoKey }> {
  const pkcs8 = keyObject.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(keyObject).export({ type: 'spki', format: 'der' });
  // Not extractable: once imported, the signing key never leaves WebCrypto again.
  const privateKey = await subtle.importKey('pkcs8', pkcs8, ECDSA_P256, false, ['sign']);
  const publicKey = await subtle.importKey('spki', spki, ECDSA_P256, true, ['verify']);
  return { privateKey, publicKey };
}

/**
 * PKCS#8 PEM of a private key; with a passphrase, PKCS#8 EncryptedPrivateKeyInfo
 * (OpenSSL's PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC).
 */
export function privateKeyPem(keyObject: KeyObject, passphrase?: string): string {
  if (passphrase === undefined) return keyObject.export({ type: 'pkcs8', format: 'pem' }) as string;
  return keyObject.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
}

export interface LoadedKey {
  privateKey: CryptoKey;
  /** SubjectPublicKeyInfo DER of the matching public key, to check it against a certificate. */
  spkiDer: Uint8Array;
  encrypted: boolean;
}

const ENCRYPTED_PEM = '-----BEGIN ENCRYPTED PRIVATE KEY-----';

/**
 * Reads a P-256 private key from PEM. A failure to decrypt an encrypted key is a passphrase
 * problem (EDGEGW_PKI_BAD_PASSPHRASE); anything else wrong with the file is EDGEGW_PKI_CORRUPT.
 */
export async function loadP256PrivateKey(pem: string, passphrase: string | undefined, what: string): Promise<LoadedKey> {
  const encrypted = pem.includes(ENCRYPTED_PEM);
  if (encrypted && passphrase === undefined) {
    throw new EdgegwError('EDGEGW_PKI_BAD_PASSPHRASE', `${what} is encrypted and no passphrase was given`);
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(encrypted ? { key: pem, format: 'pem', passphrase } : { key: pem, format: 'pem' });
  } catch (err) {
    if (encrypted) throw new EdgegwError('EDGEGW_PKI_BAD_PASSPHRASE', `cannot decrypt ${what}: wrong passphrase`, { cause: err });
    throw new EdgegwError('EDGEGW_PKI_CORRUPT', `${what} is not a readable private key`, { cause: err });
  }
  if (keyObject.asymmetricKeyType !== 'ec' || keyObject.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new EdgegwError('EDGEGW_PKI_CORRUPT', `${what} is not a P-256 key`);
  }
  const { privateKey } = await toCryptoKeys(keyObject);
  return {
    privateKey,
    spkiDer: createPublicKey(keyObject).export({ type: 'spki', format: 'der' }),
    encrypted,
  };
}

