/**
 * The gateway's configuration: one schema with defaults and units in the names, unknown keys
 * rejected, every problem reported at once, validated at start-up, then frozen. Nothing reads
 * process.env after this. docs/configuration.md documents every key and its default (a test
 * holds the two together).
 */
import { z } from 'zod';
import { readFileSync } from 'node:fs';
import { EdgegwError } from '../common/errors.js';
import { relayTuningProblems } from './relay/options.js';

const port = z.number().int().min(0).max(65535);
const deviceIdLike = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must match ^[A-Za-z0-9_-]{1,64}$');

export const ConfigSchema = z.strictObject({
  dataDir: z.string().min(1),
  /** Defaults to the id stored in the data dir, created on first start. */
  gatewayId: deviceIdLike.optional(),
  host: z.string().min(1).default('0.0.0.0'),
  mqttsPort: port.default(8883),
  /** The plain listener (connect tokens); null = off. */
  mqttPort: port.nullable().default(null),
  mqttHost: z.string().min(1).default('127.0.0.1'),
  /** Extra DNS names / IPs for the broker's server certificate. */
  serverNames: z.array(z.string().min(1)).default([]),
  maxPayloadBytes: z.number().int().min(256).max(256 * 1024).default(16 * 1024),
  freshnessS: z.number().int().min(1).max(86_400).default(300),
  allowedAlgs: z.array(z.enum(['EdDSA', 'ES256'])).min(1).default(['EdDSA', 'ES256']),
  keyGraceS: z.number().int().min(0).default(86_400),
  connectTokenWindowS: z.number().int().min(10).max(3600).default(300),
  /** Signature checks on worker threads: 'auto' = one per core; 0 = on the main thread. */
  verifyWorkers: z.union([z.literal('auto'), z.number().int().min(0).max(64)], { error: "must be 'auto' or a whole number from 0 to 64" }).default('auto'),
  /**
   * With workers: check on the main thread while the checks would take under a quarter of it
   * (about 2,600/s here, 1,000/s on a Raspberry Pi 4: gateway/verify/pool.ts) and the workers
   * have nothing queued (a lone message's round trip to a worker costs most of a check);
   * false sends every check to the workers.
   */
  verifyInlineWhenIdle: z.boolean().default(true),
  /**
   * The Ed25519 library (protocol/ed25519.ts): 'auto' = libsodium when its prebuilt addon
   * loads on this platform, else node:crypto; 'libsodium' refuses to start without it.
   */
  ed25519Verifier: z.enum(['auto', 'libsodium', 'node']).default('auto'),
  /** `edgegw status` reports the ingest latencies of the last window of this length. */
  latencyWindowS: z.number().int().min(1).max(3600).default(10),
  limits: z
    .strictObject({
      maxConnections: z.number().int().min(1).default(20_000),
      maxConnectionsPerAddress: z.number().int().min(1).default(5_000),
      maxConnectsPerWindow: z.number().int().min(1).default(1_000),
      connectWindowMs: z.number().int().min(100).default(10_000),
      banMs: z.number().int().min(0).default(60_000),
      /** IPv6 clients are counted per prefix of this length (128: per address). */
      ipv6PrefixLength: z.number().int().min(16).max(128).default(128),
      keepaliveMinS: z.number().int().min(0).default(5),
      keepaliveMaxS: z.number().int().min(1).max(65_535).default(1_200),
      connectTimeoutMs: z.number().int().min(100).default(10_000),
      publishRatePerSec: z.number().min(0.1).default(50),
      publishBurst: z.number().int().min(1).default(1_000),
    })
    .prefault({}),
  outbox: z
    .strictObject({
      maxRows: z.number().int().min(1).default(2_000_000),
      maxBytes: z.number().int().min(1024).default(1024 * 1024 * 1024),
      highWaterFraction: z.number().min(0.1).max(1).default(0.8),
    })
    .prefault({}),
  alerts: z
    .strictObject({
      /** Per (kind, code, device, address): events recorded one by one per window; the rest counted. */
      floodWindowMs: z.number().int().min(1000).default(60_000),
      floodBurst: z.number().int().min(1).default(10),
      /** The audit table keeps its newest rows up to this bound. */
      auditMaxRows: z.number().int().min(1000).default(1_000_000),
    })
    .prefault({}),
  upstream: z
    .strictObject({
      url: z.string().url(),
      caFile: z.string().min(1),
      certFile: z.string().min(1),
      keyFile: z.string().min(1),
      /** The relay's own options (docs/relay.md), checked by the relay's schema in parseConfig. */
      tuning: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type GatewayConfig = Readonly<z.output<typeof ConfigSchema>>;
export type GatewayConfigInput = z.input<typeof ConfigSchema>;

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Validates a whole configuration; throws EDGEGW_CONFIG_INVALID listing every problem. */
export function parseConfig(input: unknown): GatewayConfig {
  const res = ConfigSchema.safeParse(input);
  const problems = res.success ? [] : res.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  // The relay's tuning is checked here too, with the rest, not when the relay starts.
  const tuning = (input as { upstream?: { tuning?: unknown } } | null)?.upstream?.tuning;
  if (tuning !== null && typeof tuning === 'object' && !Array.isArray(tuning)) {
    problems.push(...relayTuningProblems(tuning as Record<string, unknown>).map((p) => `upstream.tuning.${p}`));
  }
  if (!res.success || problems.length > 0) {
    throw new EdgegwError('EDGEGW_CONFIG_INVALID', `invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return deepFreeze(res.data);
}

/** Reads a JSON config file (optional) and lays the flags over it. */
export function loadConfig(file: string | undefined, overrides: Record<string, unknown>): GatewayConfig {
  let base: Record<string, unknown> = {};
  if (file !== undefined) {
    try {
      base = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new EdgegwError('EDGEGW_CONFIG_INVALID', `cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
  const merged: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) continue;
    if (v && typeof v === 'object' && !Array.isArray(v) && typeof merged[k] === 'object' && merged[k] !== null) {
      merged[k] = { ...(merged[k] as object), ...(v as object) };
    } else merged[k] = v;
  }
  return parseConfig(merged);
}
