/**
 * Security events -> detectors -> sinks. Every refusal, rejection and degraded condition
 * in the gateway becomes a `SecurityEvent`; each is written to the audit trail (batched
 * with the next store commit) and offered to live subscribers (the admin page's event
 * stream, the log). Detectors turn patterns of events into alerts (for example a device
 * whose messages keep failing signature checks).
 *
 * Floods are aggregated, because a refusal costs an attacker nothing and a record costs us a
 * row and a log line: per (kind, code, device, address), the first `floodBurst` events of each
 * `floodWindowMs` window are recorded one by one; the rest are counted, and one
 * `events_suppressed` event says how many when the window ends. `counts()` stays exact. The
 * keys tracked are bounded too: past `maxFloodKeys`, new keys share one per (kind, code).
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
  /** Writes the summaries of floods whose window ended; runs on a timer too. */
  sweep(): void;
  /** Stops the sweep timer, writing the pending summaries. */
  stop(): void;
}

export interface AlertOptions {
  keepRecent?: number;
  floodWindowMs?: number;
  floodBurst?: number;
  maxFloodKeys?: number;
}

export const DEFAULT_ALERT_LIMITS = Object.freeze({ floodWindowMs: 60_000, floodBurst: 10, maxFloodKeys: 10_000 });

interface FloodEntry {
  windowStartMs: number;
  recorded: number;
  suppressed: number;
  /** The first event of the window, for the summary's kind, code, severity, device, address. */
  sample: SecurityEvent;
}

export function createAlerts(deps: { clock: Clock; log: Logger; sink?: AlertSink }, options: AlertOptions = {}): Alerts {
  const { clock, log, sink } = deps;
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  const keep = options.keepRecent ?? 500;
  const windowMs = options.floodWindowMs ?? DEFAULT_ALERT_LIMITS.floodWindowMs;
  const burst = options.floodBurst ?? DEFAULT_ALERT_LIMITS.floodBurst;
  const maxKeys = options.maxFloodKeys ?? DEFAULT_ALERT_LIMITS.maxFloodKeys;
  const ring: RaisedEvent[] = [];
  const counts: Record<string, number> = {};
  const floods = new Map<string, FloodEntry>();
  const alog = log.child({ part: 'alerts' });

  function record(event: SecurityEvent): void {
    const raised: RaisedEvent = { ...event, tsMs: clock.now() };
    ring.push(raised);
    if (ring.length > keep) ring.shift();
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
  }

  function summarise(entry: FloodEntry, endMs: number): void {
    if (entry.suppressed === 0) return;
    const e = entry.sample;
    record({
      kind: 'events_suppressed',
      severity: e.severity,
      ...(e.code === undefined ? {} : { code: e.code }),
      ...(e.deviceId === undefined ? {} : { deviceId: e.deviceId }),
      ...(e.address === undefined ? {} : { address: e.address }),
      detail: `${entry.suppressed} more "${e.kind}" events in ${Math.round((endMs - entry.windowStartMs) / 1000)} s were counted, not recorded one by one`,
    });
  }

  function sweep(): void {
    const now = clock.now();
    for (const [key, entry] of floods) {
      if (now - entry.windowStartMs < windowMs) continue;
      summarise(entry, now);
      floods.delete(key);
    }
  }

  const timer = setInterval(sweep, Math.min(windowMs, 60_000));
  timer.unref();

  return {
    raise(event) {
      const countKey = event.code ?? event.kind;
      counts[countKey] = (counts[countKey] ?? 0) + 1;
      const now = clock.now();
      let key = `${event.kind}|${event.code ?? ''}|${event.deviceId ?? ''}|${event.address ?? ''}`;
      if (!floods.has(key) && floods.size >= maxKeys) key = `${event.kind}|${event.code ?? ''}|*|*`;
      let entry = floods.get(key);
      if (entry !== undefined && now - entry.windowStartMs >= windowMs) {
        summarise(entry, now);
        entry = undefined;
      }
      if (entry === undefined) {
        entry = { windowStartMs: now, recorded: 0, suppressed: 0, sample: event };
        floods.set(key, entry);
      }
      if (entry.recorded >= burst) {
        entry.suppressed++;
        return;
      }
      entry.recorded++;
      record(event);
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
    sweep,
    stop() {
      clearInterval(timer);
      for (const entry of floods.values()) summarise(entry, clock.now());
      floods.clear();
    },
  };
}
