/**
 * Transport-level limits, before any MQTT is parsed: global and per-address connection
 * caps, a per-address connection rate with a temporary ban for flapping clients, and the
 * token bucket used for per-device publish rates. Pure bookkeeping with an injected clock.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Clock } from '../common/clock.js';

export interface ConnectionLimits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  /** Connection attempts allowed per address within `connectWindowMs` before a ban. */
  maxConnectsPerWindow: number;
  connectWindowMs: number;
  banMs: number;
  /**
   * IPv6 clients are counted per prefix of this many bits (default 128: per address). One
   * host can hold a whole /64; 64 makes the per-address limits mean something against it, at
   * the price of counting every device of a LAN that shares a /64 together.
   */
  ipv6PrefixLength?: number;
}

/** The 8 groups of a valid IPv6 address (a trailing dotted quad read as the last two). */
function ipv6Groups(address: string): number[] {
  let text = address;
  if (text.includes('.')) {
    const colon = text.lastIndexOf(':');
    const [a, b, c, d] = text.slice(colon + 1).split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, colon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const gap = text.indexOf('::');
  const head = (gap < 0 ? text : text.slice(0, gap)).split(':').filter((g) => g !== '');
  const tail = gap < 0 ? [] : text.slice(gap + 2).split(':').filter((g) => g !== '');
  const zeros: string[] = new Array<string>(8 - head.length - tail.length).fill('0');
  return [...head, ...zeros, ...tail].map((g) => parseInt(g, 16));
}

/**
 * What the connection limits count an address under: an IPv4 address as it is (also when a
 * dual-stack listener reports it as ::ffff:a.b.c.d), an IPv6 address in its full form, or
 * its first `ipv6PrefixLength` bits when that is under 128 ("2001:db8:1:2:0:0:0:0/64"). A
 * zone (%eth0) is dropped; anything else is its own key.
 */
export function addressKey(address: string, ipv6PrefixLength = 128): string {
  const bare = address.replace(/%.*$/, '');
  if (isIPv4(bare)) return bare;
  if (!isIPv6(bare)) return address;
  const g = ipv6Groups(bare);
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `${g[6]! >> 8}.${g[6]! & 0xff}.${g[7]! >> 8}.${g[7]! & 0xff}`;
  }
  if (ipv6PrefixLength >= 128) return g.map((x) => x.toString(16)).join(':');
  const masked = g.map((x, i) => {
    const keep = Math.min(16, Math.max(0, ipv6PrefixLength - 16 * i));
    return keep === 0 ? 0 : x & (0xffff << (16 - keep)) & 0xffff;
  });
  return `${masked.map((x) => x.toString(16)).join(':')}/${ipv6PrefixLength}`;
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
    /**
     * Called for every new socket with its remote address; on 'ok' the caller must call
     * `release` with the same address when it closes.
     */
    admit(address: string): AdmitVerdict {
      const now = clock.now();
      const s = state(addressKey(address, limits.ipv6PrefixLength));
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
    release(address: string): void {
      const s = addresses.get(addressKey(address, limits.ipv6PrefixLength));
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
