/**
 * The HTTPS uplink of PROTOCOL.md §8 over undici with mutual TLS. Egress safety (issue 4 §1):
 * - one undici Pool bound to the configured origin: no request can go anywhere else;
 * - certificate verification always on (`rejectUnauthorized: true` set explicitly, which also
 *   overrides NODE_TLS_REJECT_UNAUTHORIZED), trust only in the configured CA;
 * - redirects are never followed (undici follows none without a redirect interceptor, and none
 *   is installed): a 3xx is a transient failure with its own code;
 * - every phase bounded: connect, headers, body, the whole exchange, and the response size.
 *
 * A refused client certificate is not always visible as such: in TLS 1.3 the client's
 * handshake completes before the server checks the client certificate (RFC 8446 §4.4.2), and
 * a server that refuses it without an alert (Node's does) just closes the connection, which
 * looks like any dropped connection. So when a connection closes without an answer, the
 * transport probes once: a fresh handshake with the same credentials that sends nothing. A
 * server that closes that idle, just-authenticated connection within `authProbeMs` refuses the
 * certificate; one that keeps it open accepted it, and the failure was transient.
 */
import { Pool, errors as undiciErrors } from 'undici';
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Clock } from '../../common/clock.js';
import type { RelayOptions, TlsMaterial, Upstream } from './options.js';
import { parseRetryAfter, tlsHalt, errorCodes, type SendOutcome, type Transport } from './outcome.js';

export function createHttpTransport(deps: { clock: Clock }, options: RelayOptions, upstream: Upstream, tls: TlsMaterial): Transport {
  const basePath = upstream.url.pathname.replace(/\/+$/, '');
  const ingestPath = `${basePath}/v1/ingest`;
  const host = upstream.url.hostname.replace(/^\[|\]$/g, '');
  let pool: Pool | undefined;
  let lastProbeMs = -Infinity;
  let probing: Promise<SendOutcome | undefined> | undefined;
  const servername = isIP(host) === 0 ? { servername: host } : {};

  function open(): Pool {
    pool ??= new Pool(upstream.origin, {
      connections: options.maxInFlight,
      pipelining: 1,
      allowH2: false,
      headersTimeout: options.timeouts.headersMs,
      bodyTimeout: options.timeouts.bodyMs,
      maxResponseSize: options.maxResponseBytes,
      connect: {
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
        // SNI carries host names only (RFC 6066 §3).
        ...servername,
        timeout: options.timeouts.connectMs,
      },
    });
    return pool;
  }

  async function send(batch: { id: string; body: Uint8Array }, stop: AbortSignal): Promise<SendOutcome> {
    const deadline = AbortSignal.timeout(options.timeouts.requestMs);
    const signal = AbortSignal.any([stop, deadline]);
    try {
      const res = await open().request({
        method: 'POST',
        path: ingestPath,
        headers: {
          'content-type': 'application/cbor',
          'idempotency-key': batch.id,
          'user-agent': 'edgegw-relay/1',
        },
        body: batch.body,
        signal,
      });
      // The body is read to the end (bounded by maxResponseSize) so the connection is reusable.
      await res.body.arrayBuffer();
      return classifyStatus(res.statusCode, res.headers['retry-after']);
    } catch (err) {
      if (stop.aborted) throw err;
      const outcome = classifyError(err, deadline.aborted);
      if (outcome.kind === 'retry' && closedWithoutAnswer(err)) return (await probeClientCert(stop)) ?? outcome;
      return outcome;
    }
  }

  function closedWithoutAnswer(err: unknown): boolean {
    return errorCodes(err).some((c) => c === 'UND_ERR_SOCKET' || c === 'ECONNRESET' || c === 'EPIPE');
  }

  /** The halt outcome when the cloud refuses our certificate, else undefined. At most one probe per probe interval. */
  function probeClientCert(stop: AbortSignal): Promise<SendOutcome | undefined> {
    const now = deps.clock.now();
    if (probing) return probing;
    if (now - lastProbeMs < options.authProbeIntervalMs) return Promise.resolve(undefined);
    lastProbeMs = now;
    probing = new Promise<SendOutcome | undefined>((resolve) => {
      let secure = false;
      let timer: NodeJS.Timeout | undefined;
      const socket = tlsConnect({
        host,
        port: Number(upstream.url.port || 443),
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        rejectUnauthorized: true,
        ...servername,
        timeout: options.timeouts.connectMs,
      });
      const done = (outcome: SendOutcome | undefined) => {
        if (timer) clearTimeout(timer);
        stop.removeEventListener('abort', onStop);
        socket.destroy();
        resolve(outcome);
      };
      const onStop = () => done(undefined);
      stop.addEventListener('abort', onStop, { once: true });
      socket.once('secureConnect', () => {
        secure = true;
        timer = setTimeout(() => done(undefined), options.authProbeMs);
      });
      socket.once('timeout', () => done(undefined));
      socket.once('error', (err) => done(tlsHalt(err)));
      socket.once('close', () => {
        done(secure ? { kind: 'halt', code: 'EDGEGW_RELAY_CLIENT_CERT_REFUSED', detail: 'the cloud closes connections right after the TLS handshake, before any request: it refuses the gateway certificate' } : undefined);
      });
    }).finally(() => {
      probing = undefined;
    });
    return probing;
  }

  function classifyStatus(status: number, retryAfter: string | string[] | undefined): SendOutcome {
    if (status >= 200 && status < 300) return { kind: 'accepted', status };
    if (status >= 300 && status < 400) {
      return { kind: 'retry', code: 'EDGEGW_RELAY_ORIGIN_REFUSED', status, countsForBreaker: true, detail: `redirect ${status} not followed` };
    }
    if (status === 408 || status === 429 || status >= 500) {
      const ra = parseRetryAfter(retryAfter, deps.clock.now(), options.retry.maxRetryAfterMs);
      return {
        kind: 'retry',
        code: 'EDGEGW_RELAY_UNAVAILABLE',
        status,
        ...(ra === undefined ? {} : { retryAfterMs: ra }),
        countsForBreaker: status !== 429,
        detail: `cloud answered ${status}`,
      };
    }
    return { kind: 'reject', code: 'EDGEGW_RELAY_REJECTED', status, detail: `cloud answered ${status}` };
  }

  function classifyError(err: unknown, timedOut: boolean): SendOutcome {
    const halt = tlsHalt(err);
    if (halt) return halt;
    const codes = errorCodes(err);
    if (err instanceof undiciErrors.ResponseExceededMaxSizeError || codes.includes('UND_ERR_RES_EXCEEDED_MAX_SIZE')) {
      return { kind: 'retry', code: 'EDGEGW_RELAY_RESPONSE_TOO_LARGE', countsForBreaker: true, detail: `response larger than ${options.maxResponseBytes} bytes` };
    }
    const timeout = timedOut || codes.some((c) => c === 'UND_ERR_CONNECT_TIMEOUT' || c === 'UND_ERR_HEADERS_TIMEOUT' || c === 'UND_ERR_BODY_TIMEOUT');
    if (timeout) {
      return { kind: 'retry', code: 'EDGEGW_RELAY_TIMEOUT', countsForBreaker: true, detail: codes[0] ?? 'request deadline' };
    }
    return { kind: 'retry', code: 'EDGEGW_RELAY_UNAVAILABLE', countsForBreaker: true, detail: codes[0] ?? (err as Error).name ?? 'error' };
  }

  return {
    async start() {
      open();
    },
    send,
    async close() {
      const p = pool;
      pool = undefined;
      // destroy(): in-flight requests were aborted by the caller; nothing is waited for.
      if (p) await p.destroy().catch(() => undefined);
    },
  };
}
