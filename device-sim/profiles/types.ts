/**
 * The interface of a fleet profile: how one simulated device of that kind behaves and what
 * the gateway should do about it. A new profile is one file exporting a `Profile`, added to
 * the list in profiles/index.ts (docs/simulator.md walks through one).
 *
 * A profile device is an ordinary firmware model (firmware.ts) that the fleet provisions,
 * boots and connects. The profile may reshape it before boot (`device`, `clock`), act while
 * the fleet runs (`run`), and state its expectations through the context:
 *   - `expect(bucket, code)`: the gateway must count one more `rejected.CODE` (a message it
 *     acknowledged and refused, PROTOCOL.md §3) or `refused.CODE` (a connection or packet
 *     the broker turned away, §2); `atLeast` for attacks whose count the gateway decides
 *     (a flood is cut off by a token bucket, not message by message);
 *   - `forbid(seq)`: a message of this device that must never reach the cloud, and
 *     `mustDeliver(seq)`: one it sent outside the buffer that must;
 *   - `check(name, pass, detail)`: something the device itself observed.
 */
import type { Clock } from '../../common/clock.js';
import type { ErrorCode } from '../../common/errors.js';
import type { Device, DeviceOptions } from '../firmware.js';

/** Which gateway counter an expectation is about (`edgegw status`). */
export type Bucket = 'rejected' | 'refused' | 'duplicates';

/**
 * How sure the device is of the gateway's count: it saw the answer ('certain'); it lost the
 * connection before any answer, so the gateway counted 0 or 1 ('maybe'); or the gateway
 * decides how many beyond `n` ('atLeast').
 */
export type Certainty = 'certain' | 'maybe' | 'atLeast';

/** Another device of the fleet, as an attacker might have learnt it (id, a captured message). */
export interface Peer {
  readonly id: string;
  /** The peer's most recent acknowledged message and its topic, if any yet. */
  captured(): { topic: string; bytes: Uint8Array } | undefined;
}

export interface ProfileContext {
  readonly device: Device;
  readonly clock: Clock;
  readonly random: () => number;
  /** Messages per second an honest device of this fleet sends. */
  readonly ratePerDevice: number;
  /** How long the profile has to act, ms from its start. */
  readonly durationMs: number;
  /** Another device of the fleet (an honest one if any) to impersonate or copy from; none in a fleet of one. */
  readonly peer: Peer | undefined;
  /** The gateway is expected to count `n` (default 1) more under `bucket.code`. */
  expect(bucket: Bucket, code: ErrorCode | '', certainty?: Certainty, n?: number): void;
  /** A seq of this device that the cloud must not hold. */
  forbid(seq: number): void;
  /** A seq of this device, sent outside the buffer, that the cloud must hold. */
  mustDeliver(seq: number): void;
  /** A device-side observation that must hold. */
  check(name: string, pass: boolean, detail?: string): void;
  /** Resolves after `ms`, or early (false) when the run is aborted. */
  sleep(ms: number): Promise<boolean>;
  readonly aborted: boolean;
}

/** Facts about the gateway a profile may need to shape its attack. */
export interface TargetFacts {
  /** Largest accepted MQTT payload (PROTOCOL.md §3; 16 KiB by default). */
  readonly maxPayloadBytes: number;
  /** Largest MQTT packet the broker reads before closing the connection. */
  readonly maxPacketBytes: number;
  /** Freshness window, ms. */
  readonly freshnessMs: number;
  /** The broker's CONNECT timeout, ms. */
  readonly connectTimeoutMs: number;
  /** Per-device publish rate limit (messages/s) and burst. */
  readonly publishRatePerSec: number;
  readonly publishBurst: number;
  /** The plain listener is on (connect-token attacks need it). */
  readonly plainListener: boolean;
  /** A directory the profile may write to (a rogue CA, say). */
  readonly scratchDir: string;
}

export interface Profile {
  /** Lowercase name used on the command line (`--profile NAME`). */
  readonly name: string;
  /** One line for `--help` and the report. */
  readonly summary: string;
  /**
   * True when every message the firmware itself makes (telemetry, events) is valid and must
   * reach the cloud. False when the profile makes them invalid (a skewed clock).
   */
  readonly honestTraffic: boolean;
  /** The profile cannot run without the plain listener (connect tokens, PROTOCOL.md §4). */
  readonly needsPlainListener?: boolean;
  /** Firmware options for this profile's devices, from the fleet's defaults. */
  device?(base: DeviceOptions, facts: TargetFacts): DeviceOptions;
  /** The device's clock, from the true one (clock skew). */
  clock?(base: Clock, facts: TargetFacts): Clock;
  /** The attack, run once the device is online; resolve when done or when aborted. */
  run?(ctx: ProfileContext, facts: TargetFacts): Promise<void>;
  /** After the fleet drained: expectations that depend on what the device ended up sending. */
  settle?(ctx: ProfileContext, facts: TargetFacts): void;
}
