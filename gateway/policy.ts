/**
 * The gateway's security policy, asked by the broker: who a connection is (certificate or
 * connect token), what it may publish and subscribe to (PROTOCOL.md §2), and what happens to
 * each publish (the ingest path). It never sees a socket.
 */
import type { Clock } from '../common/clock.js';
import type { ErrorCode } from '../common/errors.js';
import {
  isDeviceId,
  mayPublishParsed,
  maySubscribe as topicMaySubscribe,
  parseTopic,
  verifyConnectToken,
  decodeSign1,
  createCtiCache,
  type CtiCache,
} from '../protocol/index.js';
import type { BrokerPolicy, BrokerEvent, ConnectRequest, PublishDecision, Session } from '../broker/index.js';
import type { IncomingPublish } from './verify/checks.js';
import type { Store } from './store/index.js';
import type { Alerts, Severity } from './alerts/index.js';
import type { Ingest, IngestOutcome } from './ingest.js';
import type { CachedRegistry } from './registry-view.js';
import { hexOf } from './verify/checks.js';
import { NO_LATENCY, type LatencyRecorder } from './latency.js';

export interface PolicyHooks {
  /** Called after an accepted message on a device's `k` topic (PROTOCOL.md §5). */
  onKeyRotation?(deviceId: string, outcome: Extract<IngestOutcome, { status: 'accepted' }>, topic: string): void;
  onConnectionCountChanged?(n: number): void;
  /** Reloads the registry view if another process changed the database. */
  refreshRegistry?(): void;
}

const ACK: PublishDecision = Object.freeze({ action: 'ack' });

const EVENT_SEVERITY: Record<BrokerEvent['kind'], Severity> = {
  acl: 'critical',
  connect_refused: 'warning',
  // A handshake cut short (a device losing power, a port scan) is no evidence of an attack:
  // recorded and counted, not a warning.
  handshake: 'info',
  limit: 'warning',
  protocol: 'warning',
};

export function createPolicy(
  deps: { store: Store; alerts: Alerts; clock: Clock; ingest: Ingest; registry: CachedRegistry; hooks?: PolicyHooks; latency?: LatencyRecorder },
  options: { gatewayId: string; connectTokenWindowS: number },
): BrokerPolicy {
  const { store, alerts, clock, ingest, registry, hooks } = deps;
  const latency = deps.latency ?? NO_LATENCY;
  const ctiCache: CtiCache = createCtiCache({ windowS: options.connectTokenWindowS });
  let connected = 0;

  // The broker asks mayPublish and then publish for the same packet: the topic is parsed once.
  let lastTopic: string | undefined;
  let lastParsed: ReturnType<typeof parseTopic> | undefined;
  function parsedTopic(topic: string): ReturnType<typeof parseTopic> {
    if (topic !== lastTopic || lastParsed === undefined) {
      lastParsed = parseTopic(topic);
      lastTopic = topic;
    }
    return lastParsed;
  }

  type AuthResult = { ok: true; deviceId: string } | { ok: false; reason: ErrorCode; detail?: string };
  const refuse = (reason: ErrorCode, detail?: string): AuthResult => (detail === undefined ? { ok: false, reason } : { ok: false, reason, detail });

  function authenticateCertificate(req: ConnectRequest): AuthResult {
    const cert = req.certificate;
    if (!cert) return refuse('EDGEGW_BROKER_AUTH_FAILED', 'no client certificate');
    if (cert.cn !== req.clientId) return refuse('EDGEGW_BROKER_CLIENT_ID_MISMATCH', `certificate CN ${cert.cn} used with client id ${req.clientId}`);
    if (req.username !== undefined && req.username !== req.clientId) return refuse('EDGEGW_BROKER_CLIENT_ID_MISMATCH', 'username differs from client id');
    const record = store.registry.getCert(cert.serialHex);
    if (!record || record.deviceId !== cert.cn) return refuse('EDGEGW_BROKER_CERT_REVOKED', 'certificate not issued to this device');
    if (record.revokedMs !== null) return refuse('EDGEGW_BROKER_CERT_REVOKED', 'certificate revoked');
    if (cert.validToMs <= clock.now()) return refuse('EDGEGW_BROKER_CERT_REVOKED', 'certificate expired');
    return { ok: true, deviceId: cert.cn };
  }

  function authenticateToken(req: ConnectRequest): AuthResult {
    if (req.username !== req.clientId) return refuse('EDGEGW_BROKER_CLIENT_ID_MISMATCH', 'username differs from client id');
    if (!req.password) return refuse('EDGEGW_BROKER_AUTH_FAILED', 'no connect token');
    const sign1 = decodeSign1(req.password, { maxBytes: 1024 });
    if (!sign1.ok || sign1.value.kid === undefined) return refuse('EDGEGW_BROKER_AUTH_FAILED', sign1.ok ? 'token has no kid' : sign1.reason);
    const key = registry.key(hexOf(sign1.value.kid));
    if (!key || key.deviceId !== req.clientId || key.status !== 'active') return refuse('EDGEGW_BROKER_AUTH_FAILED', 'token key is not the device\'s active key');
    const res = verifyConnectToken(
      req.password,
      key.key,
      { username: req.username, clientId: req.clientId, gatewayId: options.gatewayId, nowMs: clock.now(), windowS: options.connectTokenWindowS },
      ctiCache,
    );
    if (!res.ok) return refuse('EDGEGW_BROKER_AUTH_FAILED', res.reason);
    return { ok: true, deviceId: req.clientId };
  }

  return {
    authenticate(req) {
      // [MQTT-3.1.3-7]: an empty client id would get a broker-made one; devices must name themselves.
      if (req.clientId === '' || !isDeviceId(req.clientId)) return refuse('EDGEGW_BROKER_CLIENT_ID_MISMATCH', 'empty or invalid client id');
      // A device registered a moment ago by another process: look again before refusing.
      if (registry.deviceStatus(req.clientId) === undefined) hooks?.refreshRegistry?.();
      const res = req.transport === 'mqtts' ? authenticateCertificate(req) : authenticateToken(req);
      if (!res.ok) return res;
      if (registry.deviceStatus(res.deviceId) !== 'active') return refuse('EDGEGW_BROKER_DEVICE_NOT_ACTIVE', `device ${res.deviceId} is not active`);
      return res;
    },
    mayPublish: (session, topic) => mayPublishParsed(session.deviceId, parsedTopic(topic)),
    maySubscribe: (session, filter) => topicMaySubscribe(session.deviceId, filter),
    publish(session: Session, req, done) {
      const started = performance.now();
      const topic = parsedTopic(req.topic);
      const msg: IncomingPublish = {
        identity: session.deviceId,
        topic: req.topic,
        topicDevice: topic.ok ? topic.value.deviceId : '',
        payload: req.payload,
        qos: req.qos,
        rxMs: req.rxMs,
        address: session.address,
      };
      ingest.handle(msg, (outcome) => {
        latency.record('ack', performance.now() - started);
        if (outcome.status === 'refused') return done({ action: 'close', reason: outcome.reason });
        if (outcome.status === 'accepted' && topic.ok && topic.value.kind === 'keyRotation') {
          hooks?.onKeyRotation?.(session.deviceId, outcome, req.topic);
        }
        done(ACK);
      });
    },
    connected() {
      connected++;
      hooks?.onConnectionCountChanged?.(connected);
    },
    disconnected() {
      connected = Math.max(0, connected - 1);
      hooks?.onConnectionCountChanged?.(connected);
    },
    event(e) {
      store.counters.add(`refused.${e.code}`);
      store.ingest.touch();
      alerts.raise({
        kind: e.kind,
        code: e.code,
        severity: EVENT_SEVERITY[e.kind],
        address: e.address,
        ...(e.deviceId === undefined ? {} : { deviceId: e.deviceId }),
        ...(e.detail === undefined ? {} : { detail: e.detail }),
      });
    },
  };
}
