/**
 * What a transport reports for one attempt at one batch, independent of HTTP or MQTT, and
 * the mapping of TLS failures to outcomes. The relay's state machine acts on these four
 * kinds only (PROTOCOL.md §8):
 * - accepted: delete from the outbox;
 * - retry: keep, back off (Retry-After honoured), count against the circuit breaker;
 * - reject: the cloud refused this batch for good: dead-letter it, alert, move on;
 * - halt: the channel itself is untrusted (certificate failure): send nothing more, alert.
 */
import type { ErrorCode } from '../../common/errors.js';

export type SendOutcome =
  | { kind: 'accepted'; status?: number }
  | {
      kind: 'retry';
      code: ErrorCode;
      status?: number;
      /** From Retry-After, already clamped. */
      retryAfterMs?: number;
      /** 429 means the cloud is alive and pacing us: it does not open the circuit. */
      countsForBreaker: boolean;
      detail: string;
    }
  | { kind: 'reject'; code: ErrorCode; status: number; detail: string }
  | { kind: 'halt'; code: 'EDGEGW_RELAY_TLS' | 'EDGEGW_RELAY_CLIENT_CERT_REFUSED'; detail: string };

/** A transport: one attempt per call, never throws for a remote failure. */
export interface Transport {
  /** Opens nothing eagerly; connections are made on demand. */
  start(): Promise<void>;
  send(batch: { id: string; body: Uint8Array; records: readonly unknown[] }, signal: AbortSignal): Promise<SendOutcome>;
  close(): Promise<void>;
}

// OpenSSL / Node verification failures of the *server's* certificate, seen by the client.
const SERVER_CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_CERT_ALTNAME_FORMAT',
]);

// TLS alerts the server sends when it refuses the *client's* certificate (RFC 8446 §6.2).
const CLIENT_CERT_ALERT = /ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_REQUIRED|CERTIFICATE_UNKNOWN|CERTIFICATE_REVOKED|CERTIFICATE_EXPIRED|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED|HANDSHAKE_FAILURE)/;

/** Walks an error and its causes for a `code`. */
export function errorCodes(err: unknown): string[] {
  const out: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== null && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') out.push(code);
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors)) for (const inner of errors) out.push(...errorCodes(inner));
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

/** The halt outcome for a TLS authentication failure, or undefined when `err` is something else. */
export function tlsHalt(err: unknown): SendOutcome | undefined {
  const codes = errorCodes(err);
  const server = codes.find((c) => SERVER_CERT_CODES.has(c));
  if (server !== undefined) return { kind: 'halt', code: 'EDGEGW_RELAY_TLS', detail: `cloud server certificate refused (${server})` };
  const client = codes.find((c) => CLIENT_CERT_ALERT.test(c));
  if (client !== undefined) return { kind: 'halt', code: 'EDGEGW_RELAY_CLIENT_CERT_REFUSED', detail: `the cloud refused the gateway certificate (${client})` };
  return undefined;
}

// RFC 9110 §5.6.7: the preferred HTTP-date form, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/**
 * Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, clamped to `maxMs`.
 * An unparseable value is ignored (the backoff applies).
 */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number, maxMs: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const s = v.trim();
  let delay: number;
  if (/^\d{1,10}$/.test(s)) delay = Number(s) * 1000;
  else if (IMF_FIXDATE.test(s)) delay = Date.parse(s) - nowMs;
  else return undefined;
  return Math.min(Math.max(0, delay), maxMs);
}
