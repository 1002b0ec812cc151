/**
 * Public surface of the local PKI (issue 6 §1): the factory, the certificate parsing helpers
 * the broker uses at CONNECT, and the types of both. See docs/pki.md.
 */
export {
  createPki,
  type Pki,
  type PkiDeps,
  type DeviceCertRequest,
  type DeviceCert,
  type IssuedKeyPair,
  type ServerTlsOptions,
} from './pki.js';
export { LOOPBACK_NAMES, ROOT_VALIDITY_DAYS, ISSUING_VALIDITY_DAYS, type PkiOptions } from './options.js';
export { parseCert, certSerialHex, MAX_CERT_DER_BYTES, type ParsedCert, type CertInput } from './parse.js';
export { normalizeSerialHex, NOT_BEFORE_SKEW_MS, type CrlReason, type RevokedEntry } from './certs.js';
export type { DeviceKeyAlg } from './keys.js';
