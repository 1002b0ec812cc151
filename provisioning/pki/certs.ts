/**
 * Certificate and CRL profiles of the local PKI, built with @peculiar/x509 (no hand-written
 * ASN.1): the self-signed root, the issuing CA, and the leaf profiles (device, TLS client,
 * TLS server). Pure functions of their inputs: no files, no clock reads; `nowMs` is passed in.
 */
import { isIP } from 'node:net';
import { webcrypto } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CRLNumber, id_ce_cRLNumber } from '@peculiar/asn1-x509';
import { EdgegwError } from '../../common/index.js';
import { SIGNING_ALGORITHM } from './keys.js';
import { x509, type CryptoKey } from './_x509.js';

const DAY_MS = 86_400_000;
/**
 * notBefore is set this far before issuance so that a peer whose clock runs a little behind
 * still accepts a fresh certificate; the same allowance as the freshness window of
 * PROTOCOL.md §3.
 */
export const NOT_BEFORE_SKEW_MS = 300_000;
/** Longest leaf validity accepted in a request (ten years). */
export const MAX_LEAF_VALIDITY_DAYS = 3650;

export const DEVICE_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** Client certificate CNs (gatewayId and the like): the deviceId grammar plus dots. */
export const CLIENT_CN_RE = /^[A-Za-z0-9_.-]{1,64}$/;
// RFC 1123 §2.1 host names: labels of letters, digits and inner hyphens, 253 octets at most.
const DNS_LABEL_RE = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** An issuer: its certificate and the private key that signs with it. */
export interface Signer {
  cert: x509.X509Certificate;
  key: CryptoKey;
}

function badRequest(message: string): EdgegwError {
  return new EdgegwError('EDGEGW_PKI_BAD_REQUEST', message);
}

/** Truncates to whole seconds: X.509 times (RFC 5280 §4.1.2.5) carry no fractions. */
function seconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

export function checkValidityDays(days: number): number {
  if (!Number.isInteger(days) || days < 1 || days > MAX_LEAF_VALIDITY_DAYS) {
    throw badRequest(`validityDays must be an integer from 1 to ${MAX_LEAF_VALIDITY_DAYS}, got ${String(days)}`);
  }
  return days;
}

/** A DNS host name or an IPv4/IPv6 literal, for a server certificate's SAN. */
export function isServerName(name: string): boolean {
  if (typeof name !== 'string') return false;
  if (isIP(name) !== 0) return true;
  return name.length <= 253 && name.split('.').every((label) => DNS_LABEL_RE.test(label));
}

/**
 * A random positive serial of exactly 16 octets: the top bit is cleared so the INTEGER is
 * positive and the next bit set so DER keeps all 16 octets (RFC 5280 §4.1.2.2 allows up to
 * 20). 126 random bits, above the 64 the CA/Browser Forum asks for.
 */
export function randomSerialHex(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return Buffer.from(bytes).toString('hex');
}

/**
 * Canonical form of a serial: lowercase hex of the INTEGER's magnitude, even length, no
 * leading zero octets. Node's `getPeerCertificate().serialNumber` (uppercase, OpenSSL's
 * BN_bn2hex) and this module's serials compare equal once normalised.
 */
export function normalizeSerialHex(hex: string): string {
  if (typeof hex !== 'string' || !/^[0-9a-fA-F]{1,42}$/.test(hex)) {
    throw badRequest('a serial is 1 to 21 octets of hex');
  }
  let s = hex.toLowerCase();
  if (s.length % 2 === 1) s = `0${s}`;
  while (s.length > 2 && s.startsWith('00')) s = s.slice(2);
  return s;
}

function keyId(cert: x509.X509Certificate): string {
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski === null) throw new EdgegwError('EDGEGW_PKI_CORRUPT', `issuer ${cert.subject} has no SubjectKeyIdentifier`);
  return ski.keyId;
}

const CA_USAGES = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;

export interface CaParams {
  cn: string;
  nowMs: number;
  validityDays: number;
}

/** The self-signed root: may sign one level of CA below it (pathLen 1). */
export async function createRootCert(
  keys: { privateKey: CryptoKey; publicKey: CryptoKey },
  p: CaParams,
): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: [{ CN: [p.cn] }],
    notBefore: seconds(p.nowMs - NOT_BEFORE_SKEW_MS),
    notAfter: seconds(p.nowMs + p.validityDays * DAY_MS),
    keys: keys as CryptoKeyPairLike,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(CA_USAGES, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
}

/** The issuing CA, signed by the root: signs leaves and CRLs only (pathLen 0). */
export async function createIssuingCert(root: Signer, publicKey: CryptoKey, p: CaParams): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: [{ CN: [p.cn] }],
    issuer: root.cert.subjectName,
    notBefore: seconds(p.nowMs - NOT_BEFORE_SKEW_MS),
    notAfter: seconds(Math.min(p.nowMs + p.validityDays * DAY_MS, root.cert.notAfter.getTime())),
    publicKey,
    signingKey: root.key,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(CA_USAGES, true),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      new x509.AuthorityKeyIdentifierExtension(keyId(root.cert)),
    ],
  });
}

export type LeafProfile =
  | { kind: 'client'; cn: string }
  | { kind: 'server'; cn: string; names: readonly string[] };

export interface LeafParams {
  nowMs: number;
  validityDays: number;
}

/**
 * An end-entity certificate: CN, KeyUsage digitalSignature (all a TLS 1.2/1.3 ECDHE or
 * Ed25519 peer needs), EKU clientAuth or serverAuth with SANs, SKI and AKI, and a validity
 * that never outlives the issuer (a chain is only as valid as its shortest link).
 */
export async function createLeafCert(
  issuer: Signer,
  publicKey: CryptoKey,
  profile: LeafProfile,
  p: LeafParams,
): Promise<x509.X509Certificate> {
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(
      [profile.kind === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth],
      false,
    ),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    new x509.AuthorityKeyIdentifierExtension(keyId(issuer.cert)),
  ];
  if (profile.kind === 'server') {
    // RFC 6125 §6.4.4: clients match SANs, not the CN, so every name goes in the SAN.
    extensions.push(
      new x509.SubjectAlternativeNameExtension(
        profile.names.map((value) => ({ type: isIP(value) === 0 ? 'dns' : 'ip', value }) as const),
        false,
      ),
    );
  }
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: [{ CN: [profile.cn] }],
    issuer: issuer.cert.subjectName,
    notBefore: seconds(p.nowMs - NOT_BEFORE_SKEW_MS),
    notAfter: seconds(Math.min(p.nowMs + p.validityDays * DAY_MS, issuer.cert.notAfter.getTime())),
    publicKey,
    signingKey: issuer.key,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions,
  });
}

/** The SAN entries of a certificate as plain strings (DNS names and IP literals). */
export function sanNames(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  if (san === null) return [];
  return san.names.items.filter((n) => n.type === 'dns' || n.type === 'ip').map((n) => n.value);
}

/** RFC 5280 §5.3.1 reason codes a revocation may carry. */
export type CrlReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'cACompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation'
  | 'certificateHold'
  | 'privilegeWithdrawn';

const CRL_REASONS: Readonly<Record<CrlReason, x509.X509CrlReason>> = {
  unspecified: x509.X509CrlReason.unspecified,
  keyCompromise: x509.X509CrlReason.keyCompromise,
  cACompromise: x509.X509CrlReason.cACompromise,
  affiliationChanged: x509.X509CrlReason.affiliationChanged,
  superseded: x509.X509CrlReason.superseded,
  cessationOfOperation: x509.X509CrlReason.cessationOfOperation,
  certificateHold: x509.X509CrlReason.certificateHold,
  privilegeWithdrawn: x509.X509CrlReason.privilegeWithdrawn,
};

export interface RevokedEntry {
  serialHex: string;
  revokedAtMs: number;
  reason?: CrlReason;
}

/** Most entries one CRL may list: bounds the work and the size of the signed object. */
export const MAX_CRL_ENTRIES = 100_000;

export interface CrlParams {
  nowMs: number;
  nextUpdateMs: number;
  /** RFC 5280 §5.2.3: a monotonically increasing sequence number. */
  crlNumber: number;
}

export async function createCrlDer(issuer: Signer, revoked: readonly RevokedEntry[], p: CrlParams): Promise<x509.X509Crl> {
  if (!Array.isArray(revoked) || revoked.length > MAX_CRL_ENTRIES) {
    throw badRequest(`a CRL lists an array of at most ${MAX_CRL_ENTRIES} entries`);
  }
  const entries = revoked.map((r) => {
    if (typeof r !== 'object' || r === null) throw badRequest('a CRL entry is { serialHex, revokedAtMs, reason? }');
    if (!Number.isSafeInteger(r.revokedAtMs) || r.revokedAtMs < 0) throw badRequest('revokedAtMs must be a time in ms');
    if (r.reason !== undefined && !Object.hasOwn(CRL_REASONS, r.reason)) {
      throw badRequest(`unknown CRL reason ${String(r.reason)}`);
    }
    return {
      serialNumber: normalizeSerialHex(r.serialHex),
      revocationDate: seconds(r.revokedAtMs),
      ...(r.reason === undefined ? {} : { reason: CRL_REASONS[r.reason as CrlReason] }),
    };
  });
  return x509.X509CrlGenerator.create({
    issuer: issuer.cert.subjectName,
    thisUpdate: seconds(p.nowMs),
    nextUpdate: seconds(p.nextUpdateMs),
    entries,
    signingKey: issuer.key,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.AuthorityKeyIdentifierExtension(keyId(issuer.cert)),
      new x509.Extension(id_ce_cRLNumber, false, AsnConvert.serialize(new CRLNumber(p.crlNumber))),
    ],
  });
}

// @peculiar/x509 types `keys` as the DOM CryptoKeyPair; Node's webcrypto keys are the same
// objects under another type name.
type CryptoKeyPairLike = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];
