/**
 * Aedes wiring: the mqtts listener (TLS with device client certificates), the optional
 * plain listener (connect tokens), transport limits, and the hooks that ask the gateway's
 * policy. The broker knows sockets and MQTT; the policy knows devices and never sees a
 * socket (the split Mosquitto makes between src/security.c and its plugins).
 */
import { Aedes, type Client, type AuthenticateError } from 'aedes';
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import { createServer as createNetServer, type Socket, type Server as NetServer, type AddressInfo } from 'node:net';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import type { ErrorCode } from '../common/errors.js';
import { createConnectionGuard, createTokenBucket, type ConnectionLimits } from './limits.js';

export type { ConnectionLimits } from './limits.js';

/** The peer certificate as the policy sees it (no socket). */
export interface PeerCertificate {
  readonly cn: string;
  readonly serialHex: string;
  readonly validToMs: number;
  readonly fingerprint256: string;
}

export interface ConnectRequest {
  readonly transport: 'mqtts' | 'mqtt';
  readonly clientId: string;
  readonly username: string | undefined;
  readonly password: Uint8Array | undefined;
  readonly certificate: PeerCertificate | undefined;
  readonly address: string;
  readonly keepaliveS: number;
}

export interface Session {
  readonly deviceId: string;
  readonly address: string;
  readonly transport: 'mqtts' | 'mqtt';
}

export interface PublishRequest {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: number;
  readonly rxMs: number;
}

/** ack: acknowledge (QoS 1). close: refuse without acknowledging; the connection is closed. */
export type PublishDecision = { action: 'ack' } | { action: 'close'; reason: ErrorCode };

export interface BrokerEvent {
  /** handshake: a TLS handshake that ended before a certificate could be judged. */
  readonly kind: 'connect_refused' | 'handshake' | 'acl' | 'limit' | 'protocol';
  readonly code: ErrorCode;
  readonly deviceId?: string;
  readonly address: string;
  readonly detail?: string;
}

export interface BrokerPolicy {
  authenticate(req: ConnectRequest): { ok: true; deviceId: string } | { ok: false; reason: ErrorCode; detail?: string };
  mayPublish(session: Session, topic: string): boolean;
  maySubscribe(session: Session, filter: string): boolean;
  /** Calls `done` once with what to do with the packet, possibly before returning. */
  publish(session: Session, req: PublishRequest, done: (decision: PublishDecision) => void): void;
  connected(session: Session): void;
  disconnected(session: Session): void;
  event(event: BrokerEvent): void;
}

export interface BrokerOptions {
  host: string;
  mqttsPort: number;
  /** The plain listener for devices without TLS; null = off (PROTOCOL.md §2 default). */
  mqttPort: number | null;
  mqttHost: string;
  tls: { key: string; cert: string; ca: string };
  limits: ConnectionLimits;
  /** Largest MQTT packet (header + topic + payload); larger ones close the connection. */
  maxPacketBytes: number;
  keepaliveMinS: number;
  keepaliveMaxS: number;
  connectTimeoutMs: number;
  publishRatePerSec: number;
  publishBurst: number;
}

export interface Broker {
  start(): Promise<{ mqttsPort: number; mqttPort: number | null }>;
  stop(): Promise<void>;
  /** Closes a device's live session (revoked, quarantined). */
  disconnect(deviceId: string): boolean;
  publish(topic: string, payload: Uint8Array): Promise<void>;
  connectedCount(): number;
  isConnected(deviceId: string): boolean;
}

const kSession = Symbol('edgegw.session');
const kMeta = Symbol('edgegw.meta');

interface ClientMeta {
  address: string;
  transport: 'mqtts' | 'mqtt';
  certificate: PeerCertificate | undefined;
  rawClientId: string;
  keepaliveS: number;
  bucket: ReturnType<typeof createTokenBucket>;
}

type EdgeClient = Client & { [kSession]?: Session; [kMeta]?: ClientMeta };

function peerCertificate(socket: TLSSocket): PeerCertificate | undefined {
  const c = socket.getPeerCertificate();
  if (!c || !c.subject) return undefined;
  const cn = Array.isArray(c.subject.CN) ? c.subject.CN[0] : c.subject.CN;
  return {
    cn: cn ?? '',
    serialHex: (c.serialNumber ?? '').toLowerCase().replace(/^0+/, ''),
    validToMs: Date.parse(c.valid_to),
    fingerprint256: c.fingerprint256 ?? '',
  };
}

function refusal(code: ErrorCode, returnCode: 2 | 4 | 5): AuthenticateError {
  const err = new Error(code) as AuthenticateError;
  err.returnCode = returnCode;
  return err;
}

export function createBroker(deps: { log: Logger; clock: Clock; policy: BrokerPolicy }, options: BrokerOptions): Broker {
  const { clock, policy } = deps;
  const log = deps.log.child({ part: 'broker' });
  const guard = createConnectionGuard(clock, options.limits);
  const sessions = new Map<string, EdgeClient>();
  const refusedSockets = new WeakSet<Socket>();
  let tlsServer: TlsServer | undefined;
  let netServer: NetServer | undefined;
  let sweepTimer: NodeJS.Timeout | undefined;

  const aedes = new Aedes({
    connectTimeout: options.connectTimeoutMs,
    maxClientsIdLength: 64,
    keepaliveLimit: options.keepaliveMaxS,
    // Nothing is ever forwarded between devices; the gateway does not use aedes' queues.
    queueLimit: 42,
  });

  aedes.preConnect = (client: EdgeClient, packet, done) => {
    const meta = client[kMeta];
    if (!meta) return done(new Error('unknown connection'), false);
    meta.rawClientId = packet.clientId ?? '';
    meta.keepaliveS = packet.keepalive ?? 0;
    // Wills are not part of PROTOCOL.md: a device's topics carry signed messages only.
    delete (packet as { will?: unknown }).will;
    if (meta.keepaliveS < options.keepaliveMinS || meta.keepaliveS > options.keepaliveMaxS) {
      policy.event({ kind: 'connect_refused', code: 'EDGEGW_BROKER_KEEPALIVE', address: meta.address, detail: `keepalive ${meta.keepaliveS}` });
      return done(new Error('keepalive out of bounds'), false);
    }
    done(null, true);
  };

  aedes.authenticate = (client: EdgeClient, username, password, done) => {
    const meta = client[kMeta]!;
    const res = policy.authenticate({
      transport: meta.transport,
      clientId: meta.rawClientId,
      username: username ?? undefined,
      password: password ? new Uint8Array(password.buffer, password.byteOffset, password.length) : undefined,
      certificate: meta.certificate,
      address: meta.address,
      keepaliveS: meta.keepaliveS,
    });
    if (!res.ok) {
      policy.event({ kind: 'connect_refused', code: res.reason, address: meta.address, ...(meta.rawClientId ? { deviceId: meta.rawClientId } : {}), ...(res.detail ? { detail: res.detail } : {}) });
      const rc = res.reason === 'EDGEGW_BROKER_CLIENT_ID_MISMATCH' ? 2 : 5;
      return done(refusal(res.reason, rc), false);
    }
    const session: Session = { deviceId: res.deviceId, address: meta.address, transport: meta.transport };
    client[kSession] = session;
    done(null, true);
  };

  /** A publish refused by the broker's own rules: an event, and no acknowledgement. */
  const refusePublish = (session: Session, done: (err: Error) => void, code: ErrorCode, kind: BrokerEvent['kind'], detail?: string): void => {
    policy.event({ kind, code, deviceId: session.deviceId, address: session.address, ...(detail ? { detail } : {}) });
    done(new Error(code));
  };

  aedes.authorizePublish = (client: EdgeClient | null, packet, done) => {
    const session = client?.[kSession];
    const meta = client?.[kMeta];
    if (!client || !session || !meta) return done(new Error('not a device session'));
    if (packet.retain) return refusePublish(session, done, 'EDGEGW_BROKER_RETAIN_REFUSED', 'acl', packet.topic);
    if (!policy.mayPublish(session, packet.topic)) return refusePublish(session, done, 'EDGEGW_BROKER_ACL_PUBLISH', 'acl', packet.topic);
    // PROTOCOL.md §2: events and key rotation are QoS 1; nothing uses QoS 2.
    if (packet.qos === 2 || (packet.qos === 0 && !packet.topic.startsWith(`d/${session.deviceId}/t/`))) {
      return refusePublish(session, done, 'EDGEGW_BROKER_QOS_REFUSED', 'acl', `qos ${packet.qos} on ${packet.topic}`);
    }
    if (!meta.bucket.take()) return refusePublish(session, done, 'EDGEGW_BROKER_RATE_LIMITED', 'limit');
    // A Buffer is a Uint8Array: handed over as it is, without a view per message.
    const req: PublishRequest = { topic: packet.topic, payload: packet.payload as Buffer, qos: packet.qos, rxMs: clock.now() };
    let answered = false;
    try {
      policy.publish(session, req, (decision) => {
        answered = true;
        if (decision.action === 'ack') done(null);
        else done(new Error(decision.reason));
      });
    } catch (err) {
      log.error({ err }, 'publish handler failed');
      // Not acknowledged: the connection closes and the device sends it again.
      if (!answered) done(new Error('EDGEGW_INTERNAL'));
    }
  };

  // A device's publishes (its own t/, e/ and k topics, by the ACL above) are consumed by the
  // gateway's ingest in authorizePublish and are never routed: no subscriber may receive a
  // device's uplink, and skipping aedes' routing (offline queues, topic matching, the
  // emitter) saves that work on every message. Only the gateway's own publishes (commands,
  // client === null) are routed.
  type InternalPublish = (packet: unknown, client: Client | null | ((err?: Error) => void), done?: (err?: Error) => void) => void;
  const route = (aedes.publish as unknown as InternalPublish).bind(aedes);
  const publishOrDrop: InternalPublish = (packet, client, done) => {
    // aedes.publish(packet, done) is the API form (the gateway's commands); the broker's
    // handlers call publish(packet, client, done).
    if (client !== null && typeof client === 'object') done?.();
    else route(packet, client, done);
  };
  (aedes as unknown as { publish: InternalPublish }).publish = publishOrDrop;

  aedes.authorizeSubscribe = (client: EdgeClient | null, sub, done) => {
    const session = client?.[kSession];
    if (!session || !policy.maySubscribe(session, sub.topic) || sub.qos > 1) {
      if (session) {
        policy.event({ kind: 'acl', code: 'EDGEGW_BROKER_ACL_SUBSCRIBE', deviceId: session.deviceId, address: session.address, detail: sub.topic });
      }
      // A null subscription is answered with SUBACK 0x80, failure [MQTT-3.9.3-2].
      return done(null, null);
    }
    done(null, sub);
  };

  aedes.authorizeForward = (client: EdgeClient, packet) => {
    const session = client[kSession];
    // Only commands, and only to the device they address.
    return session && packet.topic.startsWith(`d/${session.deviceId}/c/`) ? packet : null;
  };

  aedes.on('clientReady', (client: EdgeClient) => {
    const session = client[kSession];
    if (!session) return;
    const previous = sessions.get(session.deviceId);
    sessions.set(session.deviceId, client);
    if (previous && previous !== client) previous.close();
    policy.connected(session);
  });

  aedes.on('clientDisconnect', (client: EdgeClient) => {
    const session = client[kSession];
    if (!session) return;
    if (sessions.get(session.deviceId) === client) sessions.delete(session.deviceId);
    policy.disconnected(session);
  });

  aedes.on('clientError', (client: EdgeClient, err) => {
    log.debug({ deviceId: client[kSession]?.deviceId, err: err.message }, 'client error');
  });
  aedes.on('connectionError', (client: EdgeClient, err) => {
    log.debug({ address: client[kMeta]?.address, err: err.message }, 'connection error');
  });

  /**
   * Every TCP connection passes the guard before anything else, TLS handshakes included,
   * so a flood from one address costs a counter, not a handshake.
   */
  function admitTcp(socket: Socket): boolean {
    const address = socket.remoteAddress ?? 'unknown';
    const verdict = guard.admit(address);
    if (verdict !== 'ok') {
      policy.event({ kind: 'limit', code: verdict, address });
      refusedSockets.add(socket);
      socket.destroy();
      return false;
    }
    socket.once('close', () => guard.release(address));
    socket.setNoDelay(true);
    return true;
  }

  function attach(socket: Socket, transport: 'mqtts' | 'mqtt', certificate: PeerCertificate | undefined): void {
    const address = socket.remoteAddress ?? 'unknown';
    socket.on('error', () => socket.destroy());
    const client = aedes.handle(socket, undefined as never) as EdgeClient;
    client[kMeta] = {
      address,
      transport,
      certificate,
      rawClientId: '',
      keepaliveS: 0,
      bucket: createTokenBucket(clock, options.publishRatePerSec, options.publishBurst),
    };
    guardPacketSize(client, address);
  }

  /**
   * mqtt-packet (aedes' parser) buffers a packet of any announced length. Refuse a packet
   * whose remaining length exceeds the bound as soon as its header is parsed, before its
   * bytes are buffered. This wraps the parser's length step, an internal of mqtt-packet 9;
   * test/broker/limits.test.ts fails if that internal changes.
   */
  function guardPacketSize(client: EdgeClient, address: string): void {
    const parser = (client as unknown as { _parser: { _parseLength: () => boolean; packet: { length: number } } })._parser;
    const original = parser._parseLength.bind(parser);
    parser._parseLength = () => {
      const ok = original();
      if (ok && parser.packet.length > options.maxPacketBytes) {
        policy.event({ kind: 'limit', code: 'EDGEGW_VERIFY_TOO_LARGE', address, detail: `packet of ${parser.packet.length} bytes` });
        (client as unknown as { conn: Socket }).conn.destroy();
        return false;
      }
      return ok;
    };
  }

  function listen(server: TlsServer | NetServer, port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  return {
    async start() {
      // Aedes 1.x starts closed: listen() sets up persistence and opens it for clients.
      await aedes.listen();
      tlsServer = createTlsServer({
        key: options.tls.key,
        cert: options.tls.cert,
        ca: options.tls.ca,
        requestCert: true,
        // The client certificate is checked below, on 'secureConnection', and not by Node
        // during the handshake: refused there, the server sees only the client's reset and
        // cannot tell a forged certificate from a device that lost power mid-handshake.
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
        // A client that never finishes its handshake is dropped (slow-connect attacks).
        handshakeTimeout: Math.min(options.connectTimeoutMs, 10_000),
      });
      tlsServer.prependListener('connection', admitTcp);
      tlsServer.on('secureConnection', (socket: TLSSocket) => {
        if (!socket.authorized) {
          const presented = peerCertificate(socket);
          // The CN it claims goes in the detail, quoted and cut short, not in deviceId: no
          // trusted CA vouches for it, and it must not pin an alert on the device it names.
          policy.event({
            kind: 'connect_refused',
            code: 'EDGEGW_BROKER_AUTH_FAILED',
            address: socket.remoteAddress ?? 'unknown',
            detail:
              presented === undefined
                ? 'no client certificate'
                : `client certificate refused: ${String(socket.authorizationError)}, claims CN ${JSON.stringify(presented.cn.slice(0, 64))}`,
          });
          socket.destroy();
          return;
        }
        attach(socket, 'mqtts', peerCertificate(socket));
      });
      tlsServer.on('tlsClientError', (err, socket) => {
        if (refusedSockets.has((socket as unknown as { _parent?: Socket })._parent ?? socket)) return;
        // The handshake failed before a certificate could be judged: a timeout, a reset, bytes
        // that are not TLS, no common version or cipher. None is an attempt to authenticate,
        // and none may make an overloaded gateway look as if it were under attack. A client
        // that proves a certificate's key it does not hold fails here too, and that one is.
        const text = `${(err as { code?: string }).code ?? ''} ${err.message}`;
        const authentication = /certificate|signature|CERT/.test(text);
        policy.event({
          kind: authentication ? 'connect_refused' : 'handshake',
          code: authentication ? 'EDGEGW_BROKER_AUTH_FAILED' : 'EDGEGW_BROKER_HANDSHAKE_FAILED',
          address: socket.remoteAddress ?? 'unknown',
          detail: err.message,
        });
      });
      const mqttsPort = await listen(tlsServer, options.mqttsPort, options.host);
      let mqttPort: number | null = null;
      if (options.mqttPort !== null) {
        netServer = createNetServer((socket) => {
          if (admitTcp(socket)) attach(socket, 'mqtt', undefined);
        });
        mqttPort = await listen(netServer, options.mqttPort, options.mqttHost);
      }
      sweepTimer = setInterval(() => guard.sweep(), 30_000);
      sweepTimer.unref();
      log.info({ mqttsPort, mqttPort }, 'broker listening');
      return { mqttsPort, mqttPort };
    },
    async stop() {
      if (sweepTimer) clearInterval(sweepTimer);
      const closing = [tlsServer, netServer].filter((s): s is TlsServer | NetServer => s !== undefined).map(
        (s) => new Promise<void>((resolve) => s.close(() => resolve())),
      );
      for (const c of sessions.values()) c.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await Promise.all(closing);
    },
    disconnect(deviceId) {
      const c = sessions.get(deviceId);
      if (!c) return false;
      c.close();
      sessions.delete(deviceId);
      return true;
    },
    publish(topic, payload) {
      return new Promise((resolve, reject) => {
        aedes.publish(
          { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false },
          (err?: Error) => (err ? reject(err) : resolve()),
        );
      });
    },
    connectedCount: () => sessions.size,
    isConnected: (deviceId) => sessions.has(deviceId),
  };
}
