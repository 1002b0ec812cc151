/**
 * The firmware model: one simulated device as its firmware would behave. It boots from its
 * flash (flash.ts), signs every message with @noble/curves (PROTOCOL.md §3), keeps each one
 * in a bounded buffer until the gateway acknowledges it (ring.ts), connects over mqtts with
 * its certificate or over the plain listener with a connect token (transport.ts),
 * reconnects with exponential backoff and jitter, and verifies the gateway's commands
 * (commands.ts, PROTOCOL.md §6).
 *
 * The connection life cycle, as named steps:
 *   boot -> connect -> (CONNACK) online: subscribe, resend the buffer in order, publish
 *        -> (close) offline: in-flight messages go back to the buffer -> backoff -> connect
 * Timers are real; the clock only dates messages and judges command expiry, so a profile
 * can skew it.
 */
import type { SecureContext } from 'node:tls';
import type { MqttClient } from 'mqtt';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import { EdgegwError, type ErrorCode } from '../common/errors.js';
import { encodeTelemetryPayload, eventTopic, nobleSigner, signSign1, telemetryTopic, type Signer } from '../protocol/index.js';
import { checkCommand, type AcceptedCommand } from './commands.js';
import { createSeqAllocator, type FlashState, type FlashStore, type SeqAllocator } from './flash.js';
import { createRing, type Pending, type Ring } from './ring.js';
import { connectToken, openConnection, parseBrokerUrl, tlsContext, tlsKeyPem, type BrokerAddress, type Throttle, type TransportKind } from './transport.js';

export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
}

/**
 * Exponential backoff with "equal jitter": half the exponential delay is kept, the other
 * half is random, so a fleet that lost its gateway at once does not come back at once.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number): number {
  const base = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base / 2 + (random() * base) / 2);
}

export interface TelemetrySchedule {
  readonly intervalMs: number;
  /** Fraction of the interval each period may move by, 0..1. */
  readonly jitter: number;
  readonly stream: string;
  /** The application data of message `seq`. */
  readonly body?: (seq: number) => unknown;
  /** Every this many periods, an event too (QoS 1 on `d/D/e/<name>`, §2). */
  readonly event?: { readonly every: number; readonly name: string };
}

export interface DeviceOptions {
  /** Which listener to use; the broker URL of that kind is taken from flash. Default mqtts. */
  readonly transport?: TransportKind;
  /** Periodic telemetry; none when omitted (the caller sends). */
  readonly telemetry?: TelemetrySchedule;
  /** Unacknowledged messages kept; beyond it the oldest is dropped. Default 256. */
  readonly ringCapacity?: number;
  /** QoS 1 publishes outstanding at once. Default 8. */
  readonly maxInFlight?: number;
  readonly backoff?: BackoffOptions;
  readonly keepaliveS?: number;
  readonly connectTimeoutMs?: number;
  readonly throttle?: Throttle;
  /** Source address for the device's sockets. */
  readonly localAddress?: string;
  /** Keep the list of acknowledged seqs (for delivery checks). Default false. */
  readonly recordAcks?: boolean;
  readonly onCommand?: (cmd: AcceptedCommand) => void;
  /** Called when the gateway acknowledges a buffered message. */
  readonly onAck?: (item: Pending) => void;
}

export type DeviceState = 'off' | 'connecting' | 'online' | 'backoff' | 'stopped';

export interface DeviceStats {
  /** Messages signed and queued by the firmware. */
  made: number;
  /** PUBLISH packets written, resends included. */
  published: number;
  resent: number;
  acked: number;
  /** Dropped from the full buffer, oldest first. */
  dropped: number;
  connects: number;
  connectFailures: number;
  disconnects: number;
  /** CONNACK refusals by MQTT return code (3.1.1 §3.2.2.3). */
  refused: Record<number, number>;
  commandsAccepted: number;
  commandsDropped: Partial<Record<ErrorCode, number>>;
}

/** What happened to a raw publish (hostile profiles). */
export type RawOutcome = 'acked' | 'sent' | 'closed' | 'offline';

export interface Device {
  readonly id: string;
  readonly state: DeviceState;
  readonly stats: DeviceStats;
  readonly ackedSeqs: readonly number[];
  /** Messages waiting for an acknowledgement. */
  readonly backlog: number;
  readonly signer: Signer;
  readonly seqs: SeqAllocator;
  /** The current flash contents. */
  readonly flash: FlashState;
  /** Boots from flash and starts connecting (again after powerCut or stop). */
  start(): void;
  /** Stops periodic telemetry; the connection stays up so the buffer can drain. */
  stopTelemetry(): void;
  /** Starts periodic telemetry again after stopTelemetry(). */
  resumeTelemetry(): void;
  /**
   * Disconnects cleanly and stops every timer; unacknowledged messages stay in RAM. A
   * connection attempt under way is let finish first (or fail), as firmware shutting down
   * would: cutting a TLS handshake short is what the gateway counts as a failed handshake.
   */
  stop(): Promise<void>;
  /** Loses power: the socket is cut, RAM (the buffer, the seq counter) is gone. */
  powerCut(): void;
  telemetry(stream: string, body: unknown): Pending;
  event(name: string, body: unknown): Pending;
  /** A signed message for `topic` with explicit fields (hostile profiles shape them). */
  sign(topic: string, fields: { seq: number; ts: number; body: unknown }): Uint8Array;
  /** Publishes bytes as they are, outside the buffer (hostile profiles). */
  publishRaw(topic: string, bytes: Uint8Array, qos: 0 | 1): Promise<RawOutcome>;
  /** Resolves true once the buffer is empty, false after `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean>;
  /** Resolves true once online, false after `timeoutMs`. */
  waitOnline(timeoutMs: number): Promise<boolean>;
}

export interface DeviceDeps {
  log: Logger;
  clock: Clock;
  flash: FlashStore;
  /** Uniform in [0, 1); for jitter. */
  random?: () => number;
}

const DEFAULTS = {
  ringCapacity: 256,
  maxInFlight: 8,
  backoff: { initialMs: 500, maxMs: 30_000 },
  keepaliveS: 60,
  // Generous: on a busy machine a TLS handshake plus CONNACK can take seconds.
  connectTimeoutMs: 30_000,
};

/** Builds a device; no I/O until start(). */
export function createDevice(deps: DeviceDeps, options: DeviceOptions = {}): Device {
  const random = deps.random ?? Math.random;
  const log = deps.log;
  const clock = deps.clock;
  const ringCapacity = options.ringCapacity ?? DEFAULTS.ringCapacity;
  const maxInFlight = options.maxInFlight ?? DEFAULTS.maxInFlight;
  const backoff = options.backoff ?? DEFAULTS.backoff;
  const utf8 = new TextEncoder();

  const stats: DeviceStats = {
    made: 0,
    published: 0,
    resent: 0,
    acked: 0,
    dropped: 0,
    connects: 0,
    connectFailures: 0,
    disconnects: 0,
    refused: {},
    commandsAccepted: 0,
    commandsDropped: {},
  };
  const ackedSeqs: number[] = [];

  // RAM: rebuilt by boot(), lost by powerCut().
  let flashRef: { current: FlashState } | undefined;
  let signer: Signer | undefined;
  let seqs: SeqAllocator | undefined;
  let secureContext: SecureContext | undefined;
  let address: BrokerAddress | undefined;
  let ring: Ring = createRing(ringCapacity);
  let state: DeviceState = 'off';
  let client: MqttClient | undefined;
  let inFlight = 0;
  let attempt = 0;
  let connectTimer: NodeJS.Timeout | undefined;
  let telemetryTimer: NodeJS.Timeout | undefined;
  let telemetryStopped = false;
  let periods = 0;
  const waiters = new Set<() => void>();

  const notify = (): void => {
    for (const w of [...waiters]) w();
  };

  function boot(): void {
    const loaded = deps.flash.load();
    if (loaded === undefined) throw new EdgegwError('EDGEGW_SIM_FLASH_CORRUPT', 'the device is not provisioned (flash is empty)');
    flashRef = { current: loaded };
    signer = nobleSigner(loaded.alg, loaded.privateKey);
    seqs = createSeqAllocator(deps.flash, flashRef);
    const kind = options.transport ?? 'mqtts';
    const url = loaded.brokerUrls.find((u) => u.startsWith(`${kind}://`));
    if (url === undefined) throw new EdgegwError('EDGEGW_USAGE', `the flash holds no ${kind} broker URL`);
    address = parseBrokerUrl(url);
    if (kind === 'mqtts') secureContext = tlsContext({ keyPem: tlsKeyPem(loaded.alg, loaded.privateKey), certPem: loaded.certPem, caPem: loaded.caPem });
  }

  function need<T>(v: T | undefined): T {
    if (v === undefined) throw new EdgegwError('EDGEGW_USAGE', 'the device has not been started');
    return v;
  }

  // ---- connection steps -------------------------------------------------------------

  function connect(): void {
    connectTimer = undefined;
    if (state === 'stopped' || state === 'off') return;
    state = 'connecting';
    const flash = need(flashRef).current;
    const addr = need(address);
    const clientId = flash.deviceId;
    let c: MqttClient;
    try {
      c = openConnection({
        address: addr,
        clientId,
        ...(addr.kind === 'mqtts'
          ? { secureContext: need(secureContext) }
          : { username: clientId, password: connectToken(need(signer), clientId, flash.gatewayId, clock.now()) }),
        keepaliveS: options.keepaliveS ?? DEFAULTS.keepaliveS,
        connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
        ...(options.throttle === undefined ? {} : { throttle: options.throttle }),
        ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
      });
    } catch (err) {
      // A socket that cannot even be built (bad key material) is a failed attempt like any other.
      log.warn({ device: flash.deviceId, err: err instanceof Error ? err.message : String(err) }, 'cannot open a connection');
      stats.connectFailures += 1;
      onOffline();
      return;
    }
    client = c;
    let wasOnline = false;
    c.on('connect', () => {
      if (client !== c) return;
      wasOnline = true;
      onOnline(c);
    });
    c.on('error', (err: Error & { code?: unknown }) => {
      if (typeof err.code === 'number') stats.refused[err.code] = (stats.refused[err.code] ?? 0) + 1;
      log.debug({ device: flash.deviceId, err: err.message }, 'connection error');
    });
    c.on('message', (topic, payload) => onCommandMessage(topic, payload));
    c.on('close', () => {
      if (client !== c) return;
      client = undefined;
      c.end(true);
      if (wasOnline) stats.disconnects += 1;
      else stats.connectFailures += 1;
      onOffline();
    });
  }

  function onOnline(c: MqttClient): void {
    state = 'online';
    attempt = 0;
    stats.connects += 1;
    const id = need(flashRef).current.deviceId;
    c.subscribe(`d/${id}/c/#`, { qos: 1 }, () => undefined);
    pump();
    notify();
  }

  function onOffline(): void {
    inFlight = 0;
    ring.resetInFlight();
    if (state === 'stopped' || state === 'off') return;
    state = 'backoff';
    const delay = backoffDelay(attempt, backoff, random);
    attempt += 1;
    connectTimer = setTimeout(connect, delay);
    notify();
  }

  /** Sends buffered messages, oldest first, up to maxInFlight outstanding. */
  function pump(): void {
    const c = client;
    if (c === undefined || state !== 'online') return;
    for (const item of ring.values()) {
      if (inFlight >= maxInFlight) break;
      if (item.inFlight) continue;
      item.inFlight = true;
      inFlight += 1;
      stats.published += 1;
      if (item.sentOnce) stats.resent += 1;
      item.sentOnce = true;
      c.publish(item.topic, Buffer.from(item.bytes.buffer, item.bytes.byteOffset, item.bytes.byteLength), { qos: 1 }, (err) => {
        if (client !== c) return; // the connection is gone; onOffline already reset the buffer
        inFlight -= 1;
        item.inFlight = false;
        if (err === undefined || err === null) {
          if (ring.remove(item)) {
            stats.acked += 1;
            if (options.recordAcks === true) ackedSeqs.push(item.seq);
            options.onAck?.(item);
          }
          if (ring.size === 0) notify();
        }
        pump();
      });
    }
  }

  // ---- messages -----------------------------------------------------------------------

  function signMessage(topic: string, fields: { seq: number; ts: number; body: unknown }): Uint8Array {
    return signSign1(need(signer), encodeTelemetryPayload(fields), utf8.encode(topic));
  }

  function enqueue(topic: string, body: unknown): Pending {
    const seq = need(seqs).next();
    const ts = clock.now();
    const item: Pending = { topic, bytes: signMessage(topic, { seq, ts, body }), seq, ts, inFlight: false, sentOnce: false };
    stats.made += 1;
    if (ring.push(item) !== undefined) stats.dropped += 1;
    pump();
    return item;
  }

  function scheduleTelemetry(first: boolean): void {
    const sched = options.telemetry;
    if (sched === undefined || telemetryStopped) return;
    const spread = sched.intervalMs * sched.jitter;
    // The first period starts at a random phase so that a fleet does not publish in lockstep.
    const delay = first ? random() * sched.intervalMs : sched.intervalMs - spread + random() * 2 * spread;
    telemetryTimer = setTimeout(() => {
      telemetryTimer = undefined;
      if (state === 'stopped' || state === 'off') return;
      const id = need(flashRef).current.deviceId;
      const seq = need(seqs).peek();
      enqueue(telemetryTopic(id, sched.stream), sched.body === undefined ? { n: seq } : sched.body(seq));
      periods += 1;
      if (sched.event !== undefined && periods % sched.event.every === 0) enqueue(eventTopic(id, sched.event.name), { period: periods });
      scheduleTelemetry(false);
    }, Math.max(0, delay));
  }

  // ---- commands (PROTOCOL.md §6) ------------------------------------------------------

  function onCommandMessage(topic: string, payload: Buffer): void {
    const ref = need(flashRef);
    const res = checkCommand(topic, new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength), {
      deviceId: ref.current.deviceId,
      gatewayPublicKey: ref.current.gatewayPublicKey,
      lastSeq: ref.current.commandSeq,
      nowMs: clock.now(),
    });
    if (!res.ok) {
      stats.commandsDropped[res.reason] = (stats.commandsDropped[res.reason] ?? 0) + 1;
      log.debug({ device: ref.current.deviceId, code: res.reason }, 'command dropped');
      return;
    }
    // Persist before acting, so a reboot cannot accept the same command again.
    const updated = { ...ref.current, commandSeq: res.value.seq };
    deps.flash.save(updated);
    ref.current = updated;
    stats.commandsAccepted += 1;
    options.onCommand?.(res.value);
  }

  // ---- life cycle -----------------------------------------------------------------------

  /** Resolves when a connection attempt has got its CONNACK or has closed, or after `ms`. */
  function attemptSettled(c: MqttClient, ms: number): Promise<void> {
    if (c.connected || c.disconnected || c.stream?.destroyed === true) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        c.off('connect', done);
        c.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      c.on('connect', done);
      c.on('close', done);
    });
  }

  function clearTimers(): void {
    if (connectTimer !== undefined) clearTimeout(connectTimer);
    if (telemetryTimer !== undefined) clearTimeout(telemetryTimer);
    connectTimer = undefined;
    telemetryTimer = undefined;
  }

  function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!cond()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(true);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        resolve(cond());
      }, timeoutMs);
      waiters.add(check);
    });
  }

  const device: Device = {
    get id() {
      return need(flashRef).current.deviceId;
    },
    get state() {
      return state;
    },
    stats,
    ackedSeqs,
    get backlog() {
      return ring.size;
    },
    get signer() {
      return need(signer);
    },
    get seqs() {
      return need(seqs);
    },
    get flash() {
      return need(flashRef).current;
    },
    start() {
      if (state !== 'off' && state !== 'stopped') return;
      if (flashRef === undefined) boot();
      state = 'connecting';
      telemetryStopped = false;
      scheduleTelemetry(true);
      connect();
    },
    stopTelemetry() {
      telemetryStopped = true;
      if (telemetryTimer !== undefined) clearTimeout(telemetryTimer);
      telemetryTimer = undefined;
    },
    resumeTelemetry() {
      if (!telemetryStopped) return;
      telemetryStopped = false;
      if (state !== 'off' && state !== 'stopped') scheduleTelemetry(false);
    },
    async stop() {
      const previous = state;
      state = 'stopped';
      clearTimers();
      const c = client;
      client = undefined;
      inFlight = 0;
      ring.resetInFlight();
      if (c !== undefined) {
        if (previous === 'connecting') await attemptSettled(c, options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs);
        await new Promise<void>((resolve) => c.end(!c.connected, {}, () => resolve()));
      }
      notify();
    },
    powerCut() {
      clearTimers();
      const c = client;
      client = undefined;
      state = 'off';
      c?.end(true);
      inFlight = 0;
      ring = createRing(ringCapacity);
      flashRef = undefined;
      secureContext = undefined;
      signer = undefined;
      seqs = undefined;
      notify();
    },
    telemetry: (stream, body) => enqueue(telemetryTopic(need(flashRef).current.deviceId, stream), body),
    event: (name, body) => enqueue(eventTopic(need(flashRef).current.deviceId, name), body),
    sign: signMessage,
    publishRaw(topic, bytes, qos) {
      const c = client;
      if (c === undefined || state !== 'online') return Promise.resolve('offline');
      stats.published += 1;
      return new Promise((resolve) => {
        c.publish(topic, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { qos }, (err) => {
          resolve(err === undefined || err === null ? (qos === 1 ? 'acked' : 'sent') : 'closed');
        });
      });
    },
    drain: (timeoutMs) => waitFor(() => ring.size === 0, timeoutMs),
    waitOnline: (timeoutMs) => waitFor(() => state === 'online', timeoutMs),
  };
  return device;
}

