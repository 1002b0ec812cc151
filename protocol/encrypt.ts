/**
 * COSE_Encrypt0 (tag 16) and COSE_Encrypt (tag 96) with AES-GCM (RFC 9053 §4.1): the
 * end-to-end encrypted bodies of PROTOCOL.md §3, which the gateway relays unread and the
 * cloud (or a tool) opens. Content algorithms A128GCM (1) and A256GCM (3) only, 96-bit IV,
 * 128-bit tag. COSE_Encrypt supports the two direct modes: a shared key (direct, -6,
 * RFC 9053 §6.1.1) and ECDH-ES + HKDF-256 (-25, RFC 9053 §6.3.1) on P-256, with the
 * COSE_KDF_Context of RFC 9053 §5.2; the ephemeral key may be sent compressed.
 *
 * Decoders never throw: every failure is a coded rejection. Encoders throw EdgegwError for
 * a bad key or IV, which come from configuration or the caller, not from the wire.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { DEFAULT_DECODE_LIMITS, decode, encode, Tagged } from './cbor.js';
import {
  H_ALG,
  H_IV,
  H_KID,
  H_PARTIAL_IV,
  contextPrefix,
  headerValue,
  parseHeaders,
  protectedAlg,
  structureWith,
  type HeaderBuckets,
  type Label,
} from './_headers.js';
import { cborFailure } from './cose.js';
import { EdgegwError, fail, ok, type Result } from '../common/errors.js';

export type ContentAlg = 'A128GCM' | 'A256GCM';

/** RFC 9053 §4.1 algorithm identifiers. */
export const CONTENT_ALG_ID = Object.freeze({ A128GCM: 1, A256GCM: 3 } as const);
const KEY_BYTES: Readonly<Record<ContentAlg, number>> = { A128GCM: 16, A256GCM: 32 };
const CIPHER: Readonly<Record<ContentAlg, 'aes-128-gcm' | 'aes-256-gcm'>> = { A128GCM: 'aes-128-gcm', A256GCM: 'aes-256-gcm' };

// CBOR tags (RFC 9052 §2). COSE_ENCRYPT0_TAG is also exported by payload.ts, which reads bodies.
const COSE_ENCRYPT0_TAG = 16;
export const COSE_ENCRYPT_TAG = 96;

/** RFC 9053 §4.1: a 96-bit nonce; the full 128-bit tag is appended to the ciphertext. */
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Recipient algorithms (RFC 9053 §6.1.1 Table 15, §6.3.1 Table 18). */
const ALG_DIRECT = -6;
const ALG_ECDH_ES_HKDF_256 = -25;

// COSE_Key and recipient header labels (RFC 9052 §7, RFC 9053 §6.3.1 Table 19, §7.1.1).
const H_EPHEMERAL_KEY = -1;
const H_SALT = -20;
const H_PARTY_U = [-21, -22, -23] as const;
const H_PARTY_V = [-24, -25, -26] as const;
const KTY = 1;
const KTY_EC2 = 2;
const EC2_CRV = -1;
const EC2_X = -2;
const EC2_Y = -3;
const CRV_P256 = 1;

const CONTENT_UNDERSTOOD: ReadonlySet<Label> = new Set<Label>([H_ALG, H_KID, H_IV, H_PARTIAL_IV]);
const RECIPIENT_UNDERSTOOD: ReadonlySet<Label> = new Set<Label>([H_ALG, H_KID, H_EPHEMERAL_KEY, H_SALT, ...H_PARTY_U, ...H_PARTY_V]);

function contentAlgFromId(id: unknown): ContentAlg | undefined {
  return id === 1 ? 'A128GCM' : id === 3 ? 'A256GCM' : undefined;
}

const PREFIX = { Encrypt0: contextPrefix('Encrypt0', 2), Encrypt: contextPrefix('Encrypt', 2) } as const;

/** RFC 9052 §5.3: the encoded [context, protected, external_aad] used as GCM additional data. */
export function encStructure(context: 'Encrypt0' | 'Encrypt', protectedBytes: Uint8Array, externalAad: Uint8Array): Uint8Array {
  return structureWith(PREFIX[context], [protectedBytes, externalAad]);
}

// ---------------------------------------------------------------------------------------
// AES-GCM

function checkContentKey(alg: ContentAlg, key: Uint8Array): Result<void> {
  if (!(key instanceof Uint8Array) || (key.length !== 16 && key.length !== 32)) return fail('EDGEGW_COSE_BAD_KEY', 'AES key must be 16 or 32 bytes');
  if (key.length !== KEY_BYTES[alg]) return fail('EDGEGW_COSE_ALG_KEY_MISMATCH', `${alg} needs a ${KEY_BYTES[alg]}-byte key`);
  return ok(undefined);
}

function seal(alg: ContentAlg, key: Uint8Array, iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const cipher = createCipheriv(CIPHER[alg], key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  return new Uint8Array(Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]));
}

function open(alg: ContentAlg, key: Uint8Array, iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array): Result<Uint8Array> {
  if (ciphertext.length < TAG_BYTES) return fail('EDGEGW_COSE_DECRYPT_FAILED', 'ciphertext shorter than the tag');
  try {
    const decipher = createDecipheriv(CIPHER[alg], key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_BYTES));
    const head = decipher.update(ciphertext.subarray(0, ciphertext.length - TAG_BYTES));
    const tail = decipher.final();
    return ok(new Uint8Array(Buffer.concat([head, tail])));
  } catch {
    return fail('EDGEGW_COSE_DECRYPT_FAILED');
  }
}

function requireIv(iv: Uint8Array): void {
  if (!(iv instanceof Uint8Array) || iv.length !== IV_BYTES) throw new EdgegwError('EDGEGW_COSE_BAD_IV', 'IV must be 12 bytes');
}

/**
 * RFC 9052 §3.1: the IV is the IV header, or the Partial IV left-padded with zeros and
 * XORed with the base IV the caller knows from context. Both present is malformed.
 */
function contentIv(h: HeaderBuckets, baseIv: Uint8Array | undefined): Result<Uint8Array> {
  const iv = headerValue(h, H_IV) as Uint8Array | undefined;
  const partial = headerValue(h, H_PARTIAL_IV) as Uint8Array | undefined;
  if (iv !== undefined && partial !== undefined) return fail('EDGEGW_COSE_BAD_HEADER', 'IV and Partial IV are both present');
  if (iv !== undefined) return iv.length === IV_BYTES ? ok(iv) : fail('EDGEGW_COSE_BAD_IV', `IV of ${iv.length} bytes`);
  if (partial === undefined) return fail('EDGEGW_COSE_BAD_IV', 'no IV');
  if (baseIv === undefined || baseIv.length !== IV_BYTES) return fail('EDGEGW_COSE_BAD_IV', 'Partial IV without a 12-byte base IV');
  if (partial.length === 0 || partial.length > IV_BYTES) return fail('EDGEGW_COSE_BAD_IV', `Partial IV of ${partial.length} bytes`);
  const full = baseIv.slice();
  const off = IV_BYTES - partial.length;
  for (let i = 0; i < partial.length; i++) full[off + i]! ^= partial[i]!;
  return ok(full);
}

interface ContentLayer {
  readonly alg: ContentAlg;
  readonly protectedBytes: Uint8Array;
  readonly iv: Uint8Array;
  readonly ciphertext: Uint8Array;
}

function contentLayer(protectedBytes: unknown, unprotected: unknown, ciphertext: unknown, baseIv: Uint8Array | undefined): Result<ContentLayer> {
  if (!(protectedBytes instanceof Uint8Array) || !(unprotected instanceof Map)) return fail('EDGEGW_COSE_BAD_STRUCTURE', 'headers must be a bstr and a map');
  // A nil ciphertext (detached, RFC 9052 §5.1) has no use here.
  if (!(ciphertext instanceof Uint8Array)) return fail('EDGEGW_COSE_BAD_STRUCTURE', 'ciphertext must be a bstr');
  const headers = parseHeaders(protectedBytes, unprotected, CONTENT_UNDERSTOOD);
  if (!headers.ok) return headers;
  // PROTOCOL.md §3 policy, as for signatures: alg must be integrity-protected.
  const algValue = protectedAlg(headers.value);
  if (!algValue.ok) return algValue;
  const alg = contentAlgFromId(algValue.value);
  if (alg === undefined) return fail('EDGEGW_COSE_ALG_UNSUPPORTED', `content alg ${String(algValue.value)}`);
  const iv = contentIv(headers.value, baseIv);
  if (!iv.ok) return iv;
  return ok({ alg, protectedBytes, iv: iv.value, ciphertext });
}

export interface DecryptOptions {
  /** Require the CBOR tag (16 or 96). Default true. */
  requireTag?: boolean;
  /** The context IV for messages that carry a Partial IV (RFC 9052 §3.1). */
  baseIv?: Uint8Array;
  /** Largest accepted message in bytes; default the decoder's 64 KiB. */
  maxBytes?: number;
}

/** Decodes the outer CBOR and strips the expected tag; the array length is checked by the caller. */
function unwrap(bytes: Uint8Array, tag: number, opts: DecryptOptions): Result<unknown[]> {
  let top: unknown;
  try {
    top = decode(bytes, { maxBytes: opts.maxBytes ?? DEFAULT_DECODE_LIMITS.maxBytes, floats: 'wrapped' });
  } catch (err) {
    return cborFailure(err);
  }
  let arr = top;
  if (top instanceof Tagged) {
    if (top.tag !== tag) return fail('EDGEGW_COSE_BAD_TAG', `tag ${top.tag}, expected ${tag}`);
    arr = top.value;
  } else if (opts.requireTag !== false && Array.isArray(top)) {
    return fail('EDGEGW_COSE_NOT_TAGGED', `message without tag ${tag}`);
  }
  if (!Array.isArray(arr)) return fail('EDGEGW_COSE_BAD_STRUCTURE', 'message is not an array');
  return ok(arr);
}

// ---------------------------------------------------------------------------------------
// COSE_Encrypt0

/**
 * Encrypts into a tagged COSE_Encrypt0: protected {1: alg}, unprotected {5: iv, 4: kid?}.
 * The IV defaults to 12 random bytes; pass one only for known-answer tests, and never reuse
 * an IV with the same key (GCM loses confidentiality and integrity).
 */
export function encrypt0(
  alg: ContentAlg,
  key: Uint8Array,
  plaintext: Uint8Array,
  externalAad: Uint8Array,
  opts: { iv?: Uint8Array; kid?: Uint8Array } = {},
): Uint8Array {
  const keyCheck = checkContentKey(alg, key);
  if (!keyCheck.ok) throw new EdgegwError(keyCheck.reason, keyCheck.detail);
  const iv = opts.iv ?? new Uint8Array(randomBytes(IV_BYTES));
  requireIv(iv);
  const protectedBytes = encode(new Map([[H_ALG, CONTENT_ALG_ID[alg]]]));
  const unprotected = new Map<number, Uint8Array>([[H_IV, iv]]);
  if (opts.kid !== undefined) unprotected.set(H_KID, opts.kid);
  const ciphertext = seal(alg, key, iv, encStructure('Encrypt0', protectedBytes, externalAad), plaintext);
  return encode(new Tagged(COSE_ENCRYPT0_TAG, [protectedBytes, unprotected, ciphertext]));
}

/** Opens a COSE_Encrypt0 with a shared key. Never throws. */
export function decrypt0(bytes: Uint8Array, key: Uint8Array, externalAad: Uint8Array, opts: DecryptOptions = {}): Result<Uint8Array> {
  const arr = unwrap(bytes, COSE_ENCRYPT0_TAG, opts);
  if (!arr.ok) return arr;
  if (arr.value.length !== 3) return fail('EDGEGW_COSE_BAD_STRUCTURE', 'COSE_Encrypt0 must be an array of 3');
  const layer = contentLayer(arr.value[0], arr.value[1], arr.value[2], opts.baseIv);
  if (!layer.ok) return layer;
  const { alg, protectedBytes, iv, ciphertext } = layer.value;
  const keyCheck = checkContentKey(alg, key);
  if (!keyCheck.ok) return keyCheck;
  return open(alg, key, iv, encStructure('Encrypt0', protectedBytes, externalAad), ciphertext);
}

// ---------------------------------------------------------------------------------------
// ECDH-ES + HKDF-256 (RFC 9053 §6.3.1, §5)

/** PartyUInfo / PartyVInfo of RFC 9053 §5.2; absent fields are nil. */
export interface PartyInfo {
  identity?: Uint8Array;
  nonce?: Uint8Array | number | bigint;
  other?: Uint8Array;
}

/**
 * RFC 9053 §5.2 COSE_KDF_Context for a direct key agreement: the AlgorithmID is the content
 * alg the derived key is used with, keyDataLength its size in bits, and SuppPubInfo.protected
 * the recipient's protected header as received.
 */
export function kdfContext(contentAlg: ContentAlg, recipientProtected: Uint8Array, partyU: PartyInfo = {}, partyV: PartyInfo = {}): Uint8Array {
  const party = (p: PartyInfo): unknown[] => [p.identity ?? null, p.nonce ?? null, p.other ?? null];
  return encode([CONTENT_ALG_ID[contentAlg], party(partyU), party(partyV), [KEY_BYTES[contentAlg] * 8, recipientProtected]]);
}

export interface EcdhEsInput {
  contentAlg: ContentAlg;
  /** Our static P-256 private scalar (32 bytes). */
  privateKey: Uint8Array;
  /** The other side's P-256 public key, SEC1 uncompressed (65) or compressed (33). */
  publicKey: Uint8Array;
  recipientProtected: Uint8Array;
  salt?: Uint8Array;
  partyU?: PartyInfo;
  partyV?: PartyInfo;
}

/** The ECDH shared secret (x coordinate), the KDF context and the derived content key. */
export function ecdhEsKey(input: EcdhEsInput): Result<{ secret: Uint8Array; context: Uint8Array; cek: Uint8Array }> {
  const { privateKey, publicKey } = input;
  if (!(privateKey instanceof Uint8Array) || privateKey.length !== 32 || !p256.utils.isValidSecretKey(privateKey)) {
    return fail('EDGEGW_COSE_BAD_KEY', 'P-256 private key must be a 32-byte scalar in range');
  }
  let shared: Uint8Array;
  try {
    // fromBytes checks the curve equation for both SEC1 forms; infinity is refused.
    p256.Point.fromBytes(publicKey).assertValidity();
    shared = p256.getSharedSecret(privateKey, publicKey, true);
  } catch {
    return fail('EDGEGW_COSE_BAD_KEY', 'ephemeral key is not a P-256 point');
  }
  // RFC 9053 §6.3.1: the HKDF input is the x coordinate; an absent salt is the empty one.
  const secret = shared.slice(1);
  const context = kdfContext(input.contentAlg, input.recipientProtected, input.partyU, input.partyV);
  const cek = new Uint8Array(hkdfSync('sha256', secret, input.salt ?? new Uint8Array(0), context, KEY_BYTES[input.contentAlg]));
  return ok({ secret, context, cek });
}

/** RFC 9053 §7.1.1 EC2 COSE_Key on P-256 as SEC1 bytes; y may be the sign bit (compressed). */
function ephemeralPublicKey(key: unknown): Result<Uint8Array> {
  if (!(key instanceof Map)) return fail('EDGEGW_COSE_BAD_HEADER', 'ephemeral key (-1) missing or not a map');
  if (key.get(KTY) !== KTY_EC2 || key.get(EC2_CRV) !== CRV_P256) return fail('EDGEGW_COSE_BAD_KEY', 'ephemeral key is not EC2 P-256');
  const x = key.get(EC2_X);
  const y = key.get(EC2_Y);
  if (!(x instanceof Uint8Array) || x.length !== 32) return fail('EDGEGW_COSE_BAD_KEY', 'ephemeral key x must be 32 bytes');
  if (typeof y === 'boolean') {
    const out = new Uint8Array(33);
    out[0] = y ? 0x03 : 0x02; // the bool is the low bit of y (RFC 9053 §7.1.1)
    out.set(x, 1);
    return ok(out);
  }
  if (!(y instanceof Uint8Array) || y.length !== 32) return fail('EDGEGW_COSE_BAD_KEY', 'ephemeral key y must be 32 bytes or a bool');
  const out = new Uint8Array(65);
  out[0] = 0x04;
  out.set(x, 1);
  out.set(y, 33);
  return ok(out);
}

function partyInfo(h: HeaderBuckets, labels: readonly [number, number, number]): Result<PartyInfo> {
  const [identity, nonce, other] = labels.map((l) => headerValue(h, l));
  const isBytesOrAbsent = (v: unknown): boolean => v === undefined || v instanceof Uint8Array;
  const nonceOk = isBytesOrAbsent(nonce) || typeof nonce === 'bigint' || (typeof nonce === 'number' && Number.isInteger(nonce));
  if (!isBytesOrAbsent(identity) || !nonceOk || !isBytesOrAbsent(other)) return fail('EDGEGW_COSE_BAD_HEADER', 'party info has the wrong type');
  const info: PartyInfo = {};
  if (identity !== undefined) info.identity = identity as Uint8Array;
  if (nonce !== undefined) info.nonce = nonce as Uint8Array | number | bigint;
  if (other !== undefined) info.other = other as Uint8Array;
  return ok(info);
}

// ---------------------------------------------------------------------------------------
// COSE_Encrypt

export type Recipient = { direct: Uint8Array } | { ecdhPrivateKey: Uint8Array };

/** The content key of the single recipient of a direct-mode COSE_Encrypt. */
function recipientKey(contentAlg: ContentAlg, recipients: unknown, recipient: Recipient): Result<Uint8Array> {
  // Direct modes must be the only recipient (RFC 9052 §8.5.1, §8.5.4); key wrap is not supported.
  if (!Array.isArray(recipients) || recipients.length !== 1) return fail('EDGEGW_COSE_BAD_STRUCTURE', 'exactly one recipient expected');
  const r = recipients[0] as unknown;
  if (!Array.isArray(r) || r.length !== 3) return fail('EDGEGW_COSE_BAD_STRUCTURE', 'COSE_recipient must be an array of 3');
  const [rProtected, rUnprotected, rCiphertext] = r as unknown[];
  if (!(rProtected instanceof Uint8Array) || !(rUnprotected instanceof Map)) return fail('EDGEGW_COSE_BAD_STRUCTURE', 'recipient headers must be a bstr and a map');
  if (!(rCiphertext instanceof Uint8Array) || rCiphertext.length !== 0) return fail('EDGEGW_COSE_BAD_STRUCTURE', 'a direct recipient carries no ciphertext');
  const headers = parseHeaders(rProtected, rUnprotected, RECIPIENT_UNDERSTOOD);
  if (!headers.ok) return headers;
  // A substituted recipient alg cannot yield the content key, so it may sit in either
  // bucket; direct even requires an empty protected header (RFC 9053 §6.1.1).
  const alg = headerValue(headers.value, H_ALG);
  if (alg === undefined) return fail('EDGEGW_COSE_ALG_MISSING', 'recipient has no alg');
  if (alg === ALG_DIRECT) {
    if (!('direct' in recipient)) return fail('EDGEGW_COSE_ALG_KEY_MISMATCH', 'direct recipient, but no shared key given');
    if (rProtected.length !== 0) return fail('EDGEGW_COSE_BAD_HEADER', 'direct recipient must have an empty protected header');
    const keyCheck = checkContentKey(contentAlg, recipient.direct);
    return keyCheck.ok ? ok(recipient.direct) : keyCheck;
  }
  if (alg === ALG_ECDH_ES_HKDF_256) {
    if (!('ecdhPrivateKey' in recipient)) return fail('EDGEGW_COSE_ALG_KEY_MISMATCH', 'ECDH-ES recipient, but no private key given');
    const epk = ephemeralPublicKey(headerValue(headers.value, H_EPHEMERAL_KEY));
    if (!epk.ok) return epk;
    const salt = headerValue(headers.value, H_SALT);
    if (salt !== undefined && !(salt instanceof Uint8Array)) return fail('EDGEGW_COSE_BAD_HEADER', 'salt must be a bstr');
    const partyU = partyInfo(headers.value, H_PARTY_U);
    if (!partyU.ok) return partyU;
    const partyV = partyInfo(headers.value, H_PARTY_V);
    if (!partyV.ok) return partyV;
    const derived = ecdhEsKey({
      contentAlg,
      privateKey: recipient.ecdhPrivateKey,
      publicKey: epk.value,
      recipientProtected: rProtected,
      ...(salt === undefined ? {} : { salt }),
      partyU: partyU.value,
      partyV: partyV.value,
    });
    return derived.ok ? ok(derived.value.cek) : derived;
  }
  if (typeof alg !== 'number' && typeof alg !== 'bigint' && typeof alg !== 'string') return fail('EDGEGW_COSE_BAD_HEADER', 'alg must be an int or tstr');
  return fail('EDGEGW_COSE_ALG_UNSUPPORTED', `recipient alg ${String(alg)}`);
}

/** Opens a COSE_Encrypt with one direct or ECDH-ES + HKDF-256 recipient. Never throws. */
export function decryptEncrypt(bytes: Uint8Array, recipient: Recipient, externalAad: Uint8Array, opts: DecryptOptions = {}): Result<Uint8Array> {
  const arr = unwrap(bytes, COSE_ENCRYPT_TAG, opts);
  if (!arr.ok) return arr;
  if (arr.value.length !== 4) return fail('EDGEGW_COSE_BAD_STRUCTURE', 'COSE_Encrypt must be an array of 4');
  const layer = contentLayer(arr.value[0], arr.value[1], arr.value[2], opts.baseIv);
  if (!layer.ok) return layer;
  const { alg, protectedBytes, iv, ciphertext } = layer.value;
  const cek = recipientKey(alg, arr.value[3], recipient);
  if (!cek.ok) return cek;
  return open(alg, cek.value, iv, encStructure('Encrypt', protectedBytes, externalAad), ciphertext);
}

export interface EncryptEcdhEsOptions {
  /** The recipient's key id, sent in the recipient's unprotected header (4). */
  kid?: Uint8Array;
  /** Content IV; 12 random bytes by default. */
  iv?: Uint8Array;
  /** Ephemeral P-256 scalar; random by default. Pass one only for known-answer tests. */
  ephemeralPrivateKey?: Uint8Array;
  /** Send the ephemeral key's y as its sign bit (RFC 9053 §7.1.1). Default false. */
  compressed?: boolean;
}

/**
 * Encrypts for the holder of a P-256 key (the cloud) without a shared secret: a tagged
 * COSE_Encrypt with one ECDH-ES + HKDF-256 recipient carrying a fresh ephemeral key.
 * `recipientPublicKey` is SEC1 (65-byte uncompressed or 33-byte compressed). Throws
 * EDGEGW_COSE_BAD_KEY / EDGEGW_COSE_BAD_IV for bad inputs.
 */
export function encryptEcdhEs(
  alg: ContentAlg,
  recipientPublicKey: Uint8Array,
  plaintext: Uint8Array,
  externalAad: Uint8Array,
  opts: EncryptEcdhEsOptions = {},
): Uint8Array {
  if (alg !== 'A128GCM' && alg !== 'A256GCM') throw new EdgegwError('EDGEGW_COSE_ALG_UNSUPPORTED', `content alg ${String(alg)}`);
  const ephemeral = opts.ephemeralPrivateKey ?? p256.utils.randomSecretKey();
  const recipientProtected = encode(new Map([[H_ALG, ALG_ECDH_ES_HKDF_256]]));
  const derived = ecdhEsKey({ contentAlg: alg, privateKey: ephemeral, publicKey: recipientPublicKey, recipientProtected });
  if (!derived.ok) throw new EdgegwError(derived.reason, derived.detail);
  const iv = opts.iv ?? new Uint8Array(randomBytes(IV_BYTES));
  requireIv(iv);
  const ephemeralPublic = p256.getPublicKey(ephemeral, false);
  const x = ephemeralPublic.slice(1, 33);
  const y = ephemeralPublic.slice(33, 65);
  const coseKey = new Map<number, unknown>([
    [KTY, KTY_EC2],
    [EC2_CRV, CRV_P256],
    [EC2_X, x],
    [EC2_Y, opts.compressed === true ? (y[31]! & 1) === 1 : y],
  ]);
  const recipientUnprotected = new Map<number, unknown>([[H_EPHEMERAL_KEY, coseKey]]);
  if (opts.kid !== undefined) recipientUnprotected.set(H_KID, opts.kid);
  const protectedBytes = encode(new Map([[H_ALG, CONTENT_ALG_ID[alg]]]));
  const ciphertext = seal(alg, derived.value.cek, iv, encStructure('Encrypt', protectedBytes, externalAad), plaintext);
  const recipient = [recipientProtected, recipientUnprotected, new Uint8Array(0)];
  return encode(new Tagged(COSE_ENCRYPT_TAG, [protectedBytes, new Map([[H_IV, iv]]), ciphertext, [recipient]]));
}
