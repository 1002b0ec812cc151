/**
 * Transport-level limits, before any MQTT is parsed: global and per-address connection
 * caps, a per-address connection rate with a temporary ban for flapping clients, and the
 * token bucket used for per-device publish rates. Pure bookkeeping with an injected clock.
 */
import type { Clock } from '../common/clock.js';

export interface ConnectionLimits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  /** Connection attempts allowed per address within `connectWindowMs` before a ban. */
  maxConnectsPerWindow: number;
  connectWindowMs: number;
  banMs: number;
}

export type AdmitVerdict = 'ok' | 'EDGEGW_BROKER_CONN_LIMIT' | 'EDGEGW_BROKER_CONN_RATE_LIMITED';

interface AddressState {
  open: number;
  windowStart: number;
  attempts: number;
  bannedUntil: number;
}

export function createConnectionGuard(clock: Clock, limits: ConnectionLimits) {
  const addresses = new Map<string, AddressState>();
  let open = 0;

  function state(addr: string): AddressState {
    let s = addresses.get(addr);
    if (!s) {
      s = { open: 0, windowStart: clock.now(), attempts: 0, bannedUntil: 0 };
      addresses.set(addr, s);
    }
    return s;
  }

  return {
    /** Called for every new socket; on 'ok' the caller must call `release` when it closes. */
    admit(addr: string): AdmitVerdict {
      const now = clock.now();
      const s = state(addr);
      if (now < s.bannedUntil) return 'EDGEGW_BROKER_CONN_RATE_LIMITED';
      if (now - s.windowStart >= limits.connectWindowMs) {
        s.windowStart = now;
        s.attempts = 0;
      }
      s.attempts++;
      if (s.attempts > limits.maxConnectsPerWindow) {
        s.bannedUntil = now + limits.banMs;
        return 'EDGEGW_BROKER_CONN_RATE_LIMITED';
      }
      if (open >= limits.maxConnections || s.open >= limits.maxConnectionsPerAddress) return 'EDGEGW_BROKER_CONN_LIMIT';
      open++;
      s.open++;
      return 'ok';
    },
    release(addr: string): void {
      const s = addresses.get(addr);
      open = Math.max(0, open - 1);
      if (!s) return;
      s.open = Math.max(0, s.open - 1);
    },
    open(): number {
      return open;
    },
    /** Drops state of idle, unbanned addresses so the map stays bounded. */
    sweep(): void {
      const now = clock.now();
      for (const [addr, s] of addresses) {
        if (s.open === 0 && now >= s.bannedUntil && now - s.windowStart >= limits.connectWindowMs) addresses.delete(addr);
      }
    },
  };
}

/** A token bucket: `ratePerSec` tokens a second, at most `burst` saved up. */
export function createTokenBucket(clock: Clock, ratePerSec: number, burst: number) {
  let tokens = burst;
  let last = clock.now();
  return {
    take(n = 1): boolean {
      const now = clock.now();
      tokens = Math.min(burst, tokens + ((now - last) / 1000) * ratePerSec);
      last = now;
      if (tokens < n) return false;
      tokens -= n;
      return true;
    },
  };
}
