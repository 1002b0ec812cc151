/**
 * Every error edgegw raises or records carries a stable code from this catalogue.
 * Callers and tests branch on `code`, never on message text (fastify's lib/errors.js
 * is the model). docs/errors.md lists the same codes; test/common/errors-doc.test.ts
 * checks the two agree both ways.
 *
 * In the data path a rejection is a value (`Rejection`), not a thrown error: a bad
 * signature is an expected event, counted and alerted.
 */

export const ERROR_CODES = {
  // ---- common / configuration -------------------------------------------------------
  EDGEGW_CONFIG_INVALID: 'Configuration failed validation; every problem is listed.',
  EDGEGW_USAGE: 'A command was called with bad arguments.',
  EDGEGW_INTERNAL: 'An unexpected internal failure (a bug); the cause is attached.',
  EDGEGW_SECRET_FILE_MODE: 'A secret file is readable by group or others (must be 0600).',

  // ---- protocol: CBOR -----------------------------------------------------------------
  EDGEGW_CBOR_MALFORMED: 'Bytes are not well-formed CBOR (truncated, bad header, trailing bytes).',
  EDGEGW_CBOR_LIMIT: 'CBOR input exceeds a decoding limit (size, nesting depth or item count).',
  EDGEGW_CBOR_UNSUPPORTED: 'A value cannot be encoded as deterministic CBOR.',

  // ---- protocol: COSE / CWT / kid / topics ---------------------------------------------
  EDGEGW_COSE_NOT_TAGGED: 'A COSE message arrived without its required CBOR tag.',
  EDGEGW_COSE_BAD_TAG: 'A COSE message carries the wrong CBOR tag.',
  EDGEGW_COSE_BAD_STRUCTURE: 'A COSE message is not an array of the right length and element types.',
  EDGEGW_COSE_BAD_HEADER: 'A COSE header is malformed (not a map, duplicate or ill-typed label).',
  EDGEGW_COSE_ALG_MISSING: 'The alg header is missing from the protected header.',
  EDGEGW_COSE_ALG_UNSUPPORTED: 'The algorithm is not one this gateway accepts.',
  EDGEGW_COSE_ALG_KEY_MISMATCH: 'The algorithm does not match the type of the key.',
  EDGEGW_COSE_CRIT_UNKNOWN: 'The crit header names a label this implementation does not understand.',
  EDGEGW_COSE_KID_MISMATCH: 'The message kid differs from the expected kid.',
  EDGEGW_COSE_BAD_SIGNATURE: 'The signature does not verify (includes DER or wrong-length signatures).',
  EDGEGW_COSE_DECRYPT_FAILED: 'Decryption failed (authentication tag mismatch or wrong key).',
  EDGEGW_COSE_BAD_IV: 'The IV is missing or not 96 bits.',
  EDGEGW_COSE_BAD_KEY: 'A key has the wrong length, encoding or curve.',
  EDGEGW_CWT_INVALID: 'A CWT claims set is malformed or a claim does not hold.',
  EDGEGW_CWT_EXPIRED: 'A CWT iat is outside the allowed clock window.',
  EDGEGW_CWT_REPLAYED: 'A CWT cti was already used within the window.',
  EDGEGW_TOPIC_INVALID: 'A topic does not match the grammar of PROTOCOL.md section 2.',
  EDGEGW_DEVICE_ID_INVALID: 'A deviceId does not match ^[A-Za-z0-9_-]{1,64}$.',

  // ---- protocol: provisioning frames ----------------------------------------------------
  EDGEGW_FRAME_BAD_CRC: 'A serial frame failed its CRC-32 check.',
  EDGEGW_FRAME_MALFORMED: 'A serial frame is not a CBOR map with a known type and valid fields.',
  EDGEGW_FRAME_TOO_LARGE: 'A serial frame exceeds the maximum frame size.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorOptions {
  cause?: unknown;
}

/** Base class of every error edgegw throws. */
export class EdgegwError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message?: string, options?: ErrorOptions) {
    super(message ?? ERROR_CODES[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EdgegwError';
    this.code = code;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isEdgegwError(err: unknown, code?: ErrorCode): err is EdgegwError {
  return err instanceof EdgegwError && (code === undefined || err.code === code);
}

/** A data-path outcome: the value, or the reason it was refused. */
export type Result<T, C extends ErrorCode = ErrorCode> =
  | { ok: true; value: T }
  | { ok: false; reason: C; detail?: string };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function fail<C extends ErrorCode>(reason: C, detail?: string): { ok: false; reason: C; detail?: string } {
  return detail === undefined ? { ok: false, reason } : { ok: false, reason, detail };
}
