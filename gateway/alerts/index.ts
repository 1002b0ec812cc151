/**
 * Security events -> detectors -> sinks. Every refusal, rejection and degraded condition
 * in the gateway becomes a `SecurityEvent`; each is written to the audit trail (batched
 * with the next store commit) and offered to live subscribers (the admin page's event
 * stream, the log). Detectors turn patterns of events into alerts (for example a device
 * whose messages keep failing signature checks).
 */
import { EventEmitter } from 'node:events';
import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/log.js';
import type { AuditEvent } from '../store/index.js';

export type Severity = 'info' | 'warning' | 'critical';

export interface SecurityEvent {
  /** What happened: 'rejected', 'acl', 'connect_refused', 'revoked', 'relay_dead_letter', ... */
  readonly kind: string;
  /** The error code behind it, when there is one. */
  readonly code?: string;
  readonly severity: Severity;
  readonly deviceId?: string;
  readonly address?: string;
  readonly detail?: string;
}

export interface RaisedEvent extends SecurityEvent {
  readonly tsMs: number;
}

export interface AlertSink {
  audit(event: AuditEvent): void;
}

export interface Alerts {
  raise(event: SecurityEvent): void;
  /** Live subscription; returns the unsubscribe function. */
  subscribe(listener: (event: RaisedEvent) => void): () => void;
  /** The last `n` events raised by this process, newest last. */
  recent(n?: number): RaisedEvent[];
  counts(): Record<string, number>;
}

export function createAlerts(deps: { clock: Clock; log: Logger; sink?: AlertSink }, options: { keepRecent?: number } = {}): Alerts {
  const { clock, log, sink } = deps;
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  const keep = options.keepRecent ?? 500;
  const ring: RaisedEvent[] = [];
  const counts: Record<string, number> = {};
  const alog = log.child({ part: 'alerts' });

  return {
    raise(event) {
      const raised: RaisedEvent = { ...event, tsMs: clock.now() };
      ring.push(raised);
      if (ring.length > keep) ring.shift();
      const key = event.code ?? event.kind;
      counts[key] = (counts[key] ?? 0) + 1;
      sink?.audit({
        tsMs: raised.tsMs,
        kind: event.kind,
        ...(event.code === undefined ? {} : { code: event.code }),
        ...(event.deviceId === undefined ? {} : { deviceId: event.deviceId }),
        ...(event.address === undefined ? {} : { address: event.address }),
        ...(event.detail === undefined ? {} : { detail: event.detail }),
      });
      if (event.severity === 'critical') alog.error({ event: raised }, 'security alert');
      else if (event.severity === 'warning') alog.warn({ event: raised }, 'security event');
      else alog.debug({ event: raised }, 'security event');
      emitter.emit('event', raised);
    },
    subscribe(listener) {
      emitter.on('event', listener);
      return () => emitter.off('event', listener);
    },
    recent(n = keep) {
      return ring.slice(-n);
    },
    counts() {
      return { ...counts };
    },
  };
}
