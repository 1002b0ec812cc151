/**
 * The fleet runner: thousands of firmware models (firmware.ts) in one process, each with
 * its flash file, driven by profiles (profiles/), against one gateway. The run is a list of
 * named steps:
 *
 *   provision  load each device's flash, or make a key, register it (`device add` under the
 *              hood) and write a fresh flash
 *   baseline   read the gateway's counters (and the cloud's) before anything is sent
 *   ramp       boot devices one after another over `rampMs` (staggered connects)
 *   run        telemetry on schedule; hostile profiles attack; live progress every second
 *   quiesce    stop new messages and attacks, wait for every buffer to drain
 *   settle     stop devices, wait until the gateway's outbox has reached the cloud
 *   verdict    read the counters again and check them against what each profile predicted
 *
 * Devices are spread over source addresses 127.1.x.y when the gateway is on loopback, so
 * that per-address connection limits see a fleet of devices and not one flooding host.
 */
import { join } from 'node:path';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import { EdgegwError, type ErrorCode } from '../common/errors.js';
import { ensurePrivateDir } from '../common/files.js';
import { generateKeyPair, type CoseAlg } from '../protocol/index.js';
import { createDevice, type Device, type DeviceOptions } from './firmware.js';
import type { FlashState } from './flash.js';
import { PROFILES, type Bucket, type Certainty, type ProfileContext, type TargetFacts } from './profiles/index.js';
import { buildReport, bucketKey, diffCounts, type FleetReport, type GatewayCounts } from './report.js';
import { interleave, isLoopback, planMembers, sourceAddress, type Member } from './plan.js';
import { sleep, within } from './timers.js';
import { cloudFindings, settle, tallies } from './verdict.js';

/** Where the gateway is and what a device needs to reach and trust it. */
export interface FleetTarget {
  readonly host: string;
  readonly mqttsPort: number;
  readonly mqttPort: number | null;
  readonly caPem: string;
  readonly gatewayId: string;
  readonly gatewayPublicKey: Uint8Array;
  /** What the profiles may assume of the gateway; defaults are the gateway's defaults. */
  readonly facts?: Partial<Omit<TargetFacts, 'plainListener' | 'scratchDir'>>;
}

/** How the fleet reads the gateway's and the cloud's counts. */
export interface FleetObserver {
  gateway(): Promise<GatewayCounts>;
  /** Seqs the cloud holds for a device; absent when there is no cloud to check. */
  cloudSeqs?(deviceId: string): Promise<Set<number>>;
  cloudCount?(): Promise<number>;
}

export interface Registration {
  readonly certPem: string;
}

export interface FleetDeps {
  log: Logger;
  clock: Clock;
  random?: () => number;
  /** Registers a device with the gateway and returns its client certificate. */
  register(req: { id: string; alg: CoseAlg; pub: Uint8Array }): Promise<Registration>;
  observer: FleetObserver;
  /** Called once every device is registered, before any connects (e.g. to export keys to the cloud). */
  onProvisioned?(deviceIds: readonly string[]): Promise<void>;
  onProgress?(p: FleetProgress): void;
}

export interface FleetOptions {
  /** Devices per profile name, honest ones included. */
  readonly plan: ReadonlyMap<string, number>;
  /** Telemetry messages per second per device. */
  readonly ratePerDevice: number;
  readonly durationMs: number;
  /** Where the flash files live. */
  readonly fleetDir: string;
  /** Boot devices over this long; default N / 100 s, at least 1 s. */
  readonly rampMs?: number;
  /** Devices booted but not yet connected at most, during the ramp. Default 32. */
  readonly maxConnecting?: number;
  /** Device ids are `${idPrefix}-${profile}-${n}`. Default 'sim'. */
  readonly idPrefix?: string;
  /** Key algorithm; 'mixed' makes every fourth device ES256. Default 'mixed'. */
  readonly alg?: CoseAlg | 'mixed';
  readonly ringCapacity?: number;
  /** How long buffers may take to drain after the run. Default 30 s. */
  readonly drainTimeoutMs?: number;
  /** How long the gateway may take to relay its outbox. Default 30 s. */
  readonly settleTimeoutMs?: number;
  /** Spread devices over 127.1.x.y source addresses; default: when the host is loopback. */
  readonly spreadSourceAddresses?: boolean;
}

export type FleetPhase = 'provision' | 'ramp' | 'run' | 'drain' | 'settle' | 'done';

export interface FleetProgress {
  phase: FleetPhase;
  /** Since the first boot. */
  elapsedMs: number;
  /** The ramp (planned, then actual) plus the run. */
  durationMs: number;
  devices: number;
  provisioned: number;
  online: number;
  made: number;
  acked: number;
  attacks: number;
}

const PROVISION_CONCURRENCY = 8;

const DEFAULT_FACTS = {
  maxPayloadBytes: 16 * 1024,
  maxPacketBytes: 16 * 1024 + 1024,
  freshnessMs: 300_000,
  connectTimeoutMs: 10_000,
  publishRatePerSec: 50,
  publishBurst: 1000,
};

/** Runs the whole fleet and returns the verdict. */
export async function runFleet(deps: FleetDeps, target: FleetTarget, options: FleetOptions): Promise<FleetReport> {
  const log = deps.log.child({ part: 'device-sim' });
  const random = deps.random ?? Math.random;
  const { clock } = deps;
  const facts: TargetFacts = {
    ...DEFAULT_FACTS,
    ...target.facts,
    plainListener: target.mqttPort !== null,
    scratchDir: join(options.fleetDir, 'scratch'),
  };
  const total = [...options.plan.values()].reduce((a, b) => a + b, 0);
  const rampMs = options.rampMs ?? Math.max(1_000, total * 10);
  const spread = options.spreadSourceAddresses ?? isLoopback(target.host);
  const abort = new AbortController();
  const startedAt = performance.now();
  let runStart: number | undefined;
  let rampEndMs: number | undefined;
  let phase: FleetPhase = 'provision';
  let provisioned = 0;

  for (const name of options.plan.keys()) {
    const p = PROFILES.get(name);
    if (p === undefined) throw new EdgegwError('EDGEGW_USAGE', `unknown profile ${name}`);
    if (p.needsPlainListener === true && target.mqttPort === null) {
      throw new EdgegwError('EDGEGW_USAGE', `profile ${name} needs the gateway's plain listener (start it with --mqtt-port)`);
    }
  }

  const members = planMembers(options);
  const honestPeers = members.filter((m) => m.profile.honestTraffic && m.profile.run === undefined);

  const progress = (): FleetProgress => {
    let online = 0;
    let made = 0;
    let acked = 0;
    let attacks = 0;
    for (const m of members) {
      attacks += m.attacks;
      if (m.device === undefined) continue;
      if (m.device.state === 'online') online += 1;
      made += m.device.stats.made;
      acked += m.device.stats.acked;
    }
    const elapsedMs = runStart === undefined ? 0 : performance.now() - runStart;
    return { phase, elapsedMs, durationMs: options.durationMs + (rampEndMs ?? rampMs), devices: total, provisioned, online, made, acked, attacks };
  };
  const ticker = setInterval(() => deps.onProgress?.(progress()), 1_000);

  try {
    // ---- provision -------------------------------------------------------------------
    ensurePrivateDir(options.fleetDir);
    ensurePrivateDir(facts.scratchDir);
    // A few registrations in flight at once: certificate signing is asynchronous (WebCrypto).
    const queue = [...members];
    await Promise.all(
      Array.from({ length: PROVISION_CONCURRENCY }, async () => {
        for (let m = queue.shift(); m !== undefined; m = queue.shift()) {
          await provision(m);
          provisioned += 1;
        }
      }),
    );
    await deps.onProvisioned?.(members.map((m) => m.id));

    // ---- baseline --------------------------------------------------------------------
    const before = await deps.observer.gateway();
    const cloudBefore = (await deps.observer.cloudCount?.()) ?? 0;

    // ---- ramp + run --------------------------------------------------------------------
    // Boots follow an absolute schedule (device i at i/N of the ramp), so a busy event loop
    // boots several at once instead of drifting; the run lasts `durationMs` after the last
    // boot, so that every device, the last attacker included, runs for the whole duration.
    phase = 'ramp';
    const provisionMs = performance.now() - startedAt;
    runStart = performance.now();
    const started = runStart;
    const order = interleave(members);
    const maxConnecting = options.maxConnecting ?? 32;
    for (let booted = 0; booted < order.length; ) {
      const due = Math.min(order.length, Math.floor(((performance.now() - started) / rampMs) * order.length) + 1);
      // A gateway slower than the schedule (a busy machine) slows the ramp down rather than
      // letting handshakes pile up past its handshake timeout.
      let connecting = members.reduce((n, m) => n + (m.device?.state === 'connecting' ? 1 : 0), 0);
      while (booted < due && connecting < maxConnecting) {
        boot(order[booted++]!, options.durationMs + Math.max(0, rampMs - (performance.now() - started)));
        connecting += 1;
      }
      if (booted < order.length) await sleep(Math.max(5, rampMs / order.length));
    }
    phase = 'run';
    rampEndMs = performance.now() - started;
    await sleep(options.durationMs);

    // ---- quiesce -------------------------------------------------------------------------
    phase = 'drain';
    abort.abort();
    for (const m of members) m.device?.stopTelemetry();
    const drainMs = options.drainTimeoutMs ?? 30_000;
    // Attacks end at the abort; a probe still waiting for a broker timeout gets the drain time.
    const runsDone = await within(Promise.all(members.map((m) => m.run)).then(() => true), drainMs);
    if (runsDone !== true) log.warn({ drainMs }, 'some profiles were still running at the end of the drain time');
    // Again: a profile may have resumed its device's telemetry on its way out.
    for (const m of members) m.device?.stopTelemetry();
    await Promise.all(members.map((m) => m.device?.drain(drainMs) ?? Promise.resolve(true)));

    // ---- settle --------------------------------------------------------------------------
    phase = 'settle';
    await Promise.all(members.map((m) => m.device?.stop() ?? Promise.resolve()));
    const after = await settle(deps.observer, options.settleTimeoutMs ?? 30_000);
    for (const m of members) {
      if (m.ctx !== undefined) m.profile.settle?.(m.ctx, facts);
    }

    // ---- verdict --------------------------------------------------------------------------
    const gateway = diffCounts(before, after);
    const cloud = deps.observer.cloudSeqs === undefined ? null : await cloudFindings(deps.observer, members, cloudBefore);
    const honestAcked = members.reduce(
      (a, m) => a + (m.profile.honestTraffic && m.device !== undefined ? m.device.stats.acked : 0) + m.mustDeliver.size,
      0,
    );
    phase = 'done';
    deps.onProgress?.(progress());
    return buildReport({
      run: {
        devices: total,
        ratePerDevice: options.ratePerDevice,
        durationMs: options.durationMs,
        provisionMs,
        rampMs: rampEndMs ?? 0,
        elapsedMs: performance.now() - started,
        profiles: Object.fromEntries(options.plan),
      },
      profiles: tallies(members),
      gateway,
      honestAcked,
      cloud,
    });
  } finally {
    clearInterval(ticker);
    abort.abort();
    for (const m of members) m.device?.powerCut();
  }

  // ---- steps' helpers ----------------------------------------------------------------------

  async function provision(m: Member): Promise<void> {
    const existing = m.flash.load();
    if (existing !== undefined && existing.gatewayId === target.gatewayId && Buffer.from(existing.gatewayPublicKey).equals(target.gatewayPublicKey)) {
      // Same gateway: the device keeps its key, certificate and seq reservation; only the
      // broker's address may have changed (free ports differ between runs).
      const urls = brokerUrls();
      if (existing.caPem !== target.caPem || existing.brokerUrls.join() !== urls.join()) m.flash.save({ ...existing, caPem: target.caPem, brokerUrls: urls });
      return;
    }
    const alg: CoseAlg = options.alg === 'ES256' || (options.alg !== 'EdDSA' && m.index % 4 === 3) ? 'ES256' : 'EdDSA';
    const { privateKey, publicKey } = generateKeyPair(alg);
    let reg: Registration;
    try {
      reg = await deps.register({ id: m.id, alg, pub: publicKey });
    } catch (err) {
      if (err instanceof EdgegwError && err.code === 'EDGEGW_REGISTRY_DEVICE_EXISTS') {
        throw new EdgegwError('EDGEGW_USAGE', `device ${m.id} is registered but its flash is not in ${options.fleetDir}; use another --id-prefix or --fleet-dir`, { cause: err });
      }
      throw err;
    }
    const state: FlashState = {
      deviceId: m.id,
      alg,
      privateKey,
      certPem: reg.certPem,
      caPem: target.caPem,
      gatewayId: target.gatewayId,
      gatewayPublicKey: target.gatewayPublicKey,
      brokerUrls: brokerUrls(),
      reservedUpTo: 0,
      commandSeq: 0,
    };
    m.flash.save(state);
  }

  function brokerUrls(): string[] {
    const host = target.host.includes(':') ? `[${target.host}]` : target.host;
    const urls = [`mqtts://${host}:${target.mqttsPort}`];
    if (target.mqttPort !== null) urls.push(`mqtt://${host}:${target.mqttPort}`);
    return urls;
  }

  function boot(m: Member, remainingMs: number): void {
    const base: DeviceOptions = {
      telemetry: { intervalMs: 1000 / options.ratePerDevice, jitter: 0.2, stream: 'telemetry', event: { every: 10, name: 'status' } },
      ringCapacity: options.ringCapacity ?? 1024,
      recordAcks: true,
      ...(spread ? { localAddress: sourceAddress(m.index) } : {}),
      onAck: (item) => {
        m.lastAcked = item;
      },
    };
    const deviceClock = m.profile.clock?.(clock, facts) ?? clock;
    const device = createDevice(
      { log, clock: deviceClock, flash: m.flash, random },
      m.profile.device?.(base, facts) ?? base,
    );
    m.device = device;
    device.start();
    if (m.profile.run === undefined && m.profile.settle === undefined) return;
    // A peer to impersonate or copy from: an honest device if there is one, else any other.
    const candidates = honestPeers.length > 0 ? honestPeers : members.filter((x) => x !== m);
    const peer = candidates.length > 0 ? candidates[m.index % candidates.length] : undefined;
    const ctx = contextFor(m, device, deviceClock, remainingMs, peer);
    m.ctx = ctx;
    if (m.profile.run === undefined) return;
    const run = m.profile.run;
    m.run = (async () => {
      if (!(await device.waitOnline(Math.max(remainingMs, 1)))) return;
      await run(ctx, facts);
    })().catch((err: unknown) => {
      log.error({ err, device: m.id, profile: m.profile.name }, 'profile failed');
      ctx.check('the profile ran without an error', false, err instanceof Error ? err.message : String(err));
    });
  }

  function contextFor(m: Member, device: Device, deviceClock: Clock, durationMs: number, peer: Member | undefined): ProfileContext {
    return {
      device,
      clock: deviceClock,
      random,
      ratePerDevice: options.ratePerDevice,
      durationMs,
      peer: peer === undefined ? undefined : { id: peer.id, captured: () => peer.lastAcked },
      expect(bucket: Bucket, code: ErrorCode | '', certainty: Certainty = 'certain', n = 1) {
        if (n <= 0) return;
        const key = bucketKey(bucket, code);
        const cur = m.expected.get(key) ?? { min: 0, max: 0 };
        if (certainty === 'certain') m.expected.set(key, { min: cur.min + n, max: cur.max + n });
        else if (certainty === 'maybe') m.expected.set(key, { min: cur.min, max: cur.max + n });
        else m.expected.set(key, { min: cur.min + n, max: Infinity });
        if (bucket !== 'duplicates' || certainty !== 'maybe') m.attacks += certainty === 'atLeast' ? 1 : n;
      },
      forbid: (seq) => void m.forbidden.add(seq),
      mustDeliver: (seq) => void m.mustDeliver.add(seq),
      check(name, pass, detail) {
        const c = m.checks.get(name) ?? { name, passed: 0, failed: 0 };
        if (pass) c.passed += 1;
        else {
          c.failed += 1;
          c.firstFailure ??= `${m.id}: ${detail ?? 'failed'}`;
        }
        m.checks.set(name, c);
      },
      sleep: (ms) => sleep(ms, abort.signal),
      get aborted() {
        return abort.signal.aborted;
      },
    };
  }
}
