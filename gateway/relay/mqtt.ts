/**
 * The MQTT bridge uplink (issue 4 §2), for clouds that take MQTT (AWS IoT Core, Azure IoT
 * Hub): mqtt.js over mqtts with the gateway's client certificate, a persistent session
 * (clean start off, MQTT 5 session expiry), QoS 1. A batch counts as delivered only when its
 * PUBACK arrives, so the no-loss rules of PROTOCOL.md §8 hold unchanged: the outbox keeps
 * the records until then. The payload is the §8 body; the batch id travels as the MQTT 5
 * user property `idempotency-key`.
 */
import { connect, type MqttClient, type IClientOptions } from 'mqtt';
import { once, type EventEmitter } from 'node:events';
import type { RelayOptions, TlsMaterial, Upstream } from './options.js';
import { tlsHalt, type SendOutcome, type Transport } from './outcome.js';

// MQTT 5 PUBACK reason codes (MQTT 5.0 §3.4.2.1) that condemn the batch itself.
const REJECT_BATCH = new Set([0x95 /* packet too large */, 0x99 /* payload format invalid */]);
// CONNACK codes that mean the broker refused who we are: v5 0x86/0x87/0x8c, v3.1.1 4 and 5.
const REFUSED_IDENTITY = new Set([0x86, 0x87, 0x8c, 4, 5]);

export function createMqttTransport(options: RelayOptions, upstream: Upstream, tls: TlsMaterial): Transport {
  const topic = options.mqtt.topic.replaceAll('{gatewayId}', options.gatewayId);
  let client: MqttClient | undefined;
  let lastError: unknown;

  const clientOptions: IClientOptions = {
    protocolVersion: 5,
    clientId: options.gatewayId,
    clean: false,
    properties: { sessionExpiryInterval: options.mqtt.sessionExpiryS },
    keepalive: options.mqtt.keepaliveS,
    reconnectPeriod: options.mqtt.reconnectMs,
    connectTimeout: options.timeouts.connectMs,
    resubscribe: false,
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    // Node's default minimum is TLS 1.2; mqtt.js does not expose minVersion.
    rejectUnauthorized: true,
  };

  function ensureClient(): MqttClient {
    // mqtt.js reconnects by itself; a new client is only made after a halt or close.
    if (client !== undefined) return client;
    lastError = undefined;
    const c = connect(upstream.url.href, clientOptions);
    c.on('error', (err) => {
      lastError = err;
    });
    c.on('connect', () => {
      lastError = undefined;
    });
    client = c;
    return c;
  }

  function haltFor(err: unknown): SendOutcome | undefined {
    const halt = tlsHalt(err);
    if (halt) return halt;
    const rc = (err as { code?: unknown } | undefined)?.code;
    if (typeof rc === 'number' && REFUSED_IDENTITY.has(rc) && /Connection refused/.test(String((err as Error).message))) {
      return { kind: 'halt', code: 'EDGEGW_RELAY_CLIENT_CERT_REFUSED', detail: `broker refused the connection (reason ${rc})` };
    }
    return undefined;
  }

  /** Waits up to the connect timeout for a connection; returns an outcome when there is none. */
  async function connected(c: MqttClient, stop: AbortSignal): Promise<SendOutcome | undefined> {
    if (c.connected) return undefined;
    const halt = haltFor(lastError);
    if (halt) return stopFor(halt);
    const timeout = AbortSignal.timeout(options.timeouts.connectMs);
    try {
      await once(c as unknown as EventEmitter, 'connect', { signal: AbortSignal.any([stop, timeout]) });
      return undefined;
    } catch {
      if (stop.aborted) throw stop.reason;
      const h = haltFor(lastError);
      if (h) return stopFor(h);
      return { kind: 'retry', code: 'EDGEGW_RELAY_UNAVAILABLE', countsForBreaker: true, detail: `broker not connected${lastError ? ` (${codeOf(lastError)})` : ''}` };
    }
  }

  /** A halted channel stops reconnecting: a fresh client is made when the relay tries again. */
  function stopFor(halt: SendOutcome): SendOutcome {
    const c = client;
    client = undefined;
    c?.end(true);
    return halt;
  }

  async function send(batch: { id: string; body: Uint8Array }, stop: AbortSignal): Promise<SendOutcome> {
    const c = ensureClient();
    const notReady = await connected(c, stop);
    if (notReady) return notReady;
    const deadline = AbortSignal.timeout(options.timeouts.requestMs);
    const publish = c.publishAsync(topic, Buffer.from(batch.body.buffer, batch.body.byteOffset, batch.body.byteLength), {
      qos: 1,
      properties: { userProperties: { 'idempotency-key': batch.id }, contentType: 'application/cbor' },
    });
    const aborted = new Promise<never>((_, reject) => {
      const on = () => reject(stop.aborted ? stop.reason : new Error('publish deadline'));
      AbortSignal.any([stop, deadline]).addEventListener('abort', on, { once: true });
    });
    try {
      await Promise.race([publish, aborted]);
      return { kind: 'accepted' };
    } catch (err) {
      if (stop.aborted) throw err;
      publish.catch(() => undefined);
      const rc = (err as { code?: unknown }).code;
      if (typeof rc === 'number' && REJECT_BATCH.has(rc)) {
        return { kind: 'reject', code: 'EDGEGW_RELAY_REJECTED', status: rc, detail: `broker refused the publish (reason ${rc})` };
      }
      if (deadline.aborted) return { kind: 'retry', code: 'EDGEGW_RELAY_TIMEOUT', countsForBreaker: true, detail: 'no PUBACK before the deadline' };
      const halt = haltFor(err) ?? haltFor(lastError);
      if (halt) return stopFor(halt);
      return { kind: 'retry', code: 'EDGEGW_RELAY_UNAVAILABLE', countsForBreaker: true, detail: `publish failed (${codeOf(err)})` };
    }
  }

  return {
    async start() {
      ensureClient();
    },
    send,
    async close() {
      const c = client;
      client = undefined;
      if (c) await c.endAsync(true).catch(() => undefined);
    },
  };
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === undefined ? ((err as Error | undefined)?.name ?? 'error') : String(code);
}
