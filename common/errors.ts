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

  // ---- protocol: payloads ----------------------------------------------------------------
  EDGEGW_PAYLOAD_INVALID: 'A message, rotation, pop or command payload is not the map or array PROTOCOL.md sections 3, 5 and 6 define.',
  EDGEGW_CWT_CACHE_FULL: 'The connect-token cti cache is full of unexpired entries; the token is refused rather than a cti forgotten.',

  // ---- provisioning: pki -----------------------------------------------------------------
  EDGEGW_PKI_BAD_PASSPHRASE: 'A CA key file is encrypted and the passphrase is missing or wrong.',
  EDGEGW_PKI_BAD_PUBLIC_KEY: 'A raw public key has the wrong length, encoding or is not a valid curve point.',
  EDGEGW_PKI_BAD_REQUEST: 'A certificate or CRL request has an invalid name, SAN, serial or validity.',
  EDGEGW_PKI_BAD_CERT: 'A certificate cannot be parsed, is too large or has an unsupported key.',
  EDGEGW_PKI_CORRUPT: 'The PKI directory is incomplete or its certificates and keys do not match.',

  // ---- provisioning: station -----------------------------------------------------------
  EDGEGW_PROVISION_TIMEOUT: 'The other end of the serial line did not answer a frame after the retries of PROTOCOL.md section 7 (ERROR 5).',
  EDGEGW_PROVISION_REFUSED: 'The station refused the device: its id or key is already provisioned (ERROR 4).',
  EDGEGW_PROVISION_POP_FAILED: 'The IDENTITY proof of possession does not verify (ERROR 3); nothing was registered.',
  EDGEGW_PROVISION_BAD_MESSAGE: 'A well-framed message was wrong for the session: malformed, another device id, or a COMMIT digest that does not match (ERROR 2).',
  EDGEGW_PROVISION_DEVICE_ERROR: 'The other end answered with an ERROR frame; its code is in the detail.',
  EDGEGW_PROVISION_LINE_CUT: 'The serial line closed mid-session; nothing was registered unless COMMIT had arrived.',
  EDGEGW_PROVISION_PORT: 'The serial port could not be opened, listed or configured.',

  // ---- gateway: store and registry -----------------------------------------------------
  EDGEGW_STORE_IO: 'The database could not be opened, read or written.',
  EDGEGW_STORE_DISK_FULL: 'The database disk is full; nothing more is acknowledged until space returns.',
  EDGEGW_STORE_OUTBOX_FULL: 'The outbox reached its row or byte bound; new QoS 1 publishes are refused (devices retry).',
  EDGEGW_REGISTRY_UNKNOWN_DEVICE: 'No device with that id is registered.',
  EDGEGW_REGISTRY_DEVICE_EXISTS: 'A device with that id is already registered.',
  EDGEGW_REGISTRY_KEY_EXISTS: 'That public key (kid) is already registered.',

  // ---- gateway: verification (PROTOCOL.md §3 order) --------------------------------------
  EDGEGW_VERIFY_TOO_LARGE: 'The MQTT payload exceeds the largest accepted size.',
  EDGEGW_VERIFY_UNKNOWN_KID: 'The message kid is not registered.',
  EDGEGW_VERIFY_KID_NOT_BOUND: 'The kid belongs to another device than the topic names.',
  EDGEGW_VERIFY_IDENTITY_MISMATCH: 'The topic device differs from the connection identity.',
  EDGEGW_VERIFY_KEY_INACTIVE: 'The key is retired, or retiring past its grace period.',
  EDGEGW_VERIFY_DEVICE_REVOKED: 'The device is revoked.',
  EDGEGW_VERIFY_DEVICE_QUARANTINED: 'The device is quarantined.',
  EDGEGW_VERIFY_REPLAY: 'The seq is at or below the replay window (H - 64): a replay.',
  EDGEGW_VERIFY_STALE: 'The message timestamp is outside the freshness window.',

  // ---- broker: connections, ACL, limits ---------------------------------------------------
  EDGEGW_BROKER_AUTH_FAILED: 'CONNECT refused: no valid client certificate or connect token.',
  EDGEGW_BROKER_HANDSHAKE_FAILED: 'A TLS handshake failed before a certificate could be judged (timeout, reset, not TLS).',
  EDGEGW_BROKER_CLIENT_ID_MISMATCH: 'CONNECT refused: client id, certificate CN and username disagree, or the id is empty or invalid.',
  EDGEGW_BROKER_CERT_REVOKED: 'CONNECT refused: the client certificate is revoked, expired or unknown.',
  EDGEGW_BROKER_DEVICE_NOT_ACTIVE: 'CONNECT refused or session closed: the device is revoked, quarantined or unknown.',
  EDGEGW_BROKER_ACL_PUBLISH: 'PUBLISH refused: the topic is not one of the device\'s own t/, e/ or k topics.',
  EDGEGW_BROKER_ACL_SUBSCRIBE: 'SUBSCRIBE refused: the filter is not under the device\'s own c/ subtree.',
  EDGEGW_BROKER_RETAIN_REFUSED: 'PUBLISH refused: devices may not set retain.',
  EDGEGW_BROKER_QOS_REFUSED: 'PUBLISH refused: QoS not allowed on that topic (events and key rotation need QoS 1).',
  EDGEGW_BROKER_RATE_LIMITED: 'PUBLISH refused: the device exceeded its publish rate.',
  EDGEGW_BROKER_CONN_RATE_LIMITED: 'Connection refused: too many attempts from this address (temporary ban).',
  EDGEGW_BROKER_CONN_LIMIT: 'Connection refused: the global or per-address connection cap is reached.',
  EDGEGW_BROKER_KEEPALIVE: 'CONNECT refused: keepalive outside the allowed bounds.',

  // ---- device-sim: firmware model and fleet runner ----------------------------------------
  EDGEGW_SIM_FLASH_CORRUPT: 'A simulated device\'s flash file is unreadable or fails validation.',
  EDGEGW_SIM_COMMAND_EXPIRED: 'A gateway command arrived after its expiry; the device drops it (PROTOCOL.md section 6).',
  EDGEGW_SIM_COMMAND_REPEATED: 'A gateway command repeats or goes back on a command seq; the device drops it (PROTOCOL.md section 6).',
  EDGEGW_SIM_EXPECTATION_FAILED: 'A fleet run ended with a count that differs from what its profiles should get.',
  EDGEGW_SIM_CHILD_FAILED: 'A process the demo started (gateway, cloud-sim) did not become ready or exited early.',

  // ---- gateway: relay -----------------------------------------------------------------------
  EDGEGW_RELAY_REJECTED: 'The cloud refused a batch for good (a 4xx other than 408/429); it went to the dead-letter table.',
  EDGEGW_RELAY_UNAVAILABLE: 'The cloud is unreachable or answered 408, 429 or 5xx; the batch stays queued and is retried.',
  EDGEGW_RELAY_TIMEOUT: 'A phase of the exchange with the cloud (connect, headers, body, whole request) timed out; retried.',
  EDGEGW_RELAY_TLS: 'The cloud\'s server certificate failed verification; nothing was sent and the relay halted.',
  EDGEGW_RELAY_CLIENT_CERT_REFUSED: 'The cloud refused the gateway\'s client certificate; not retried on the backoff schedule, the relay halted.',
  EDGEGW_RELAY_ORIGIN_REFUSED: 'The upstream URL is not https/mqtts or not an allowed origin, or the cloud answered with a redirect (never followed).',
  EDGEGW_RELAY_RESPONSE_TOO_LARGE: 'The cloud\'s response exceeded the size bound; treated as a transient failure.',
  EDGEGW_RELAY_CIRCUIT_OPEN: 'The relay\'s circuit breaker opened after consecutive failures (or closed again).',

  // ---- cloud-sim ------------------------------------------------------------------------------
  EDGEGW_CLOUDSIM_BAD_REQUEST: 'An ingest request is malformed: content type, Idempotency-Key or a body that is not a PROTOCOL.md section 8 batch.',
  EDGEGW_CLOUDSIM_TOO_LARGE: 'An ingest request body exceeds the size bound.',
  EDGEGW_CLOUDSIM_IDEMPOTENCY_CONFLICT: 'An Idempotency-Key was reused with a different body.',
  EDGEGW_CLOUDSIM_DEVICES_INVALID: 'The device export file cannot be read or is not a valid export.',
  EDGEGW_CLOUDSIM_FAULT: 'A failure injected on purpose by the cloud simulator.',
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
