/**
 * Reading certificates back: the pure helpers the broker uses at CONNECT (PROTOCOL.md §2:
 * CN = client id, revoked or expired certificates refused) and that tests use to check what
 * was issued. Inputs are bounded; every failure is EDGEGW_PKI_BAD_CERT.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { EdgegwError } from '../../common/index.js';
import type { DeviceKeyAlg } from './keys.js';
import { normalizeSerialHex } from './certs.js';
import { x509 } from './_x509.js';

/** Largest certificate accepted, DER. Our device certificates are about 500 bytes. */
export const MAX_CERT_DER_BYTES = 16 * 1024;
const MAX_CERT_PEM_CHARS = 24 * 1024;

export type CertInput = Uint8Array | string;

export interface ParsedCert {
  /** The single subject CN. */
  cn: string;
  serialHex: string;
  notBeforeMs: number;
  notAfterMs: number;
  /** The key as PROTOCOL.md §1 spells it: 32 bytes (Ed25519) or 65 bytes 0x04||X||Y (P-256). */
  publicKeyRaw: Uint8Array;
  alg: DeviceKeyAlg;
  /** Lowercase hex SHA-256 of the DER certificate, no separators. */
  fingerprint256: string;
  der: Uint8Array;
}

function badCert(message: string, cause?: unknown): EdgegwError {
  return new EdgegwError('EDGEGW_PKI_BAD_CERT', message, cause === undefined ? undefined : { cause });
}

/** One DER certificate from DER bytes or a PEM text holding exactly one certificate. */
export function certDer(input: CertInput): Uint8Array {
  if (typeof input === 'string') {
    if (input.length > MAX_CERT_PEM_CHARS) throw badCert('PEM certificate too large');
    let blocks: ArrayBuffer[];
    try {
      blocks = x509.PemConverter.decode(input);
    } catch (err) {
      throw badCert('not a PEM certificate', err);
    }
    if (blocks.length !== 1 || !input.includes('-----BEGIN CERTIFICATE-----')) {
      throw badCert(`expected exactly one PEM CERTIFICATE block, found ${blocks.length}`);
    }
    return new Uint8Array(blocks[0]!);
  }
  if (!(input instanceof Uint8Array)) throw badCert('a certificate is DER bytes or PEM text');
  if (input.length > MAX_CERT_DER_BYTES) throw badCert('DER certificate too large');
  return input;
}

/** Parses a certificate with @peculiar/x509; the caller bounds the size first. */
export function loadCert(input: CertInput): x509.X509Certificate {
  const der = certDer(input);
  try {
    return new x509.X509Certificate(der);
  } catch (err) {
    throw badCert('malformed certificate', err);
  }
}

function serialOf(cert: x509.X509Certificate): string {
  try {
    return normalizeSerialHex(cert.serialNumber);
  } catch (err) {
    throw badCert('certificate serial is longer than 20 octets (RFC 5280 §4.1.2.2)', err);
  }
}

/** The canonical serial of a certificate (see normalizeSerialHex). */
export function certSerialHex(input: CertInput): string {
  return serialOf(loadCert(input));
}

function fromBase64url(s: unknown): Buffer {
  if (typeof s !== 'string') throw badCert('public key has no coordinates');
  return Buffer.from(s, 'base64url');
}

/**
 * The raw key and COSE alg of a certificate's SubjectPublicKeyInfo, read through Node's key
 * parser (as JWK) rather than by walking the ASN.1.
 */
export function rawPublicKey(spkiDer: Uint8Array): { alg: DeviceKeyAlg; publicKeyRaw: Uint8Array } {
  let jwk: { kty?: string; crv?: string; x?: string; y?: string };
  try {
    jwk = createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' }).export({ format: 'jwk' });
  } catch (err) {
    throw badCert('unsupported or malformed public key', err);
  }
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    return { alg: 'EdDSA', publicKeyRaw: new Uint8Array(fromBase64url(jwk.x)) };
  }
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') {
    const x = fromBase64url(jwk.x);
    const y = fromBase64url(jwk.y);
    if (x.length !== 32 || y.length !== 32) throw badCert('malformed P-256 public key');
    return { alg: 'ES256', publicKeyRaw: new Uint8Array(Buffer.concat([Buffer.of(0x04), x, y])) };
  }
  throw badCert(`unsupported public key type ${String(jwk.kty)}/${String(jwk.crv)}; expected Ed25519 or P-256`);
}

/** Pure: parses a certificate into the fields the broker and the registry need. */
export function parseCert(input: CertInput): ParsedCert {
  const cert = loadCert(input);
  const der = new Uint8Array(cert.rawData);
  const cns = cert.subjectName.getField('CN');
  if (cns.length !== 1 || cns[0] === undefined) throw badCert(`expected one subject CN, found ${cns.length}`);
  return {
    cn: cns[0],
    serialHex: serialOf(cert),
    notBeforeMs: cert.notBefore.getTime(),
    notAfterMs: cert.notAfter.getTime(),
    ...rawPublicKey(new Uint8Array(cert.publicKey.rawData)),
    fingerprint256: createHash('sha256').update(der).digest('hex'),
    der,
  };
}
