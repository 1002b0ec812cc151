/**
 * The relay's configuration: one schema with defaults and units in the names, unknown keys
 * rejected, every problem reported at once, then frozen. There is deliberately no option that
 * turns certificate verification off (issue 4 §1, egress safety): the schema is strict, so
 * `rejectUnauthorized` and the like are refused as unknown keys.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { EdgegwError } from '../../common/errors.js';
import { readSecretFile } from '../../common/files.js';

const ms = (min: number, max: number, dflt: number) => z.number().int().min(min).max(max).default(dflt);

const TimeoutsSchema = z.strictObject({
  /** TCP + TLS handshake. */
  connectMs: ms(100, 120_000, 5_000),
  /** From the request being written to the response headers. */
  headersMs: ms(100, 300_000, 15_000),
  /** Between body chunks of the response. */
  bodyMs: ms(100, 300_000, 15_000),
  /** The whole exchange, every phase included. */
  requestMs: ms(100, 600_000, 30_000),
});

const RetrySchema = z.strictObject({
  /** Cap of the first backoff; full jitter draws the delay from [0, cap). */
  initialDelayMs: ms(1, 60_000, 250),
  /** Largest backoff cap (the exponential growth stops here). */
  maxDelayMs: ms(10, 3_600_000, 30_000),
  /** A Retry-After larger than this is clamped, so a hostile answer cannot park the relay for days. */
  maxRetryAfterMs: ms(0, 3_600_000, 300_000),
});

const BreakerSchema = z.strictObject({
  /** Consecutive transient failures that open the circuit. */
  threshold: z.number().int().min(1).max(1000).default(5),
  /** Time the circuit stays open before one half-open probe; doubles on each re-open. */
  halfOpenAfterMs: ms(10, 600_000, 2_000),
  maxHalfOpenAfterMs: ms(10, 3_600_000, 60_000),
});

const PaceSchema = z.strictObject({
  /** Outbox rows above which the relay is draining a backlog and paces itself. */
  backlogRows: z.number().int().min(0).default(20_000),
  /** Event-loop utilisation above which the drain rate is cut (AIMD). */
  targetUtilization: z.number().min(0.1).max(1).default(0.8),
  /** The drain never goes slower than this... */
  minRecordsPerSec: z.number().int().min(1).default(1_000),
  /** ...nor slower than this multiple of live ingest, so the backlog shrinks even when ingest alone fills the machine. */
  minOverIngest: z.number().min(1).max(100).default(1.25),
  /** Additive increase per window while the loop has room. */
  stepRecordsPerSec: z.number().int().min(1).default(2_000),
  /** Multiplicative decrease when the loop is over the target. */
  decreaseFactor: z.number().gt(0).lt(1).default(0.7),
  windowMs: ms(20, 10_000, 1_000),
  /** Batch size cap while paced, so that each encode and ack is a short synchronous step. */
  batchMaxRecords: z.number().int().min(1).max(50_000).default(100),
  /** The drain rate is cut when live ingest falls below this share of its rate with the drain held. */
  ingestShare: z.number().gt(0).max(1).default(0.85),
  /** Every this many windows the drain is held for one window to measure ingest without it. */
  probeEveryWindows: z.number().int().min(2).max(1000).default(8),
});

const MqttSchema = z.strictObject({
  /** Topic the batches are published to; `{gatewayId}` is replaced. */
  topic: z.string().min(1).max(256).default('edgegw/{gatewayId}/ingest'),
  keepaliveS: z.number().int().min(5).max(3600).default(30),
  /** MQTT 5 session expiry: the broker keeps the session (and QoS 1 state) this long. */
  sessionExpiryS: z.number().int().min(0).max(4_294_967_295).default(86_400),
  reconnectMs: ms(100, 600_000, 1_000),
});

const OptionsSchema = z
  .strictObject({
    /** `https://host[:port][/base]` (PROTOCOL.md §8) or `mqtts://host[:port]` (the MQTT bridge). */
    url: z.string().min(1).max(2048),
    /** When given, the url's origin must be one of these (a second line of defence for assembled configs). */
    allowedOrigins: z.array(z.string().min(1).max(2048)).max(64).optional(),
    caFile: z.string().min(1).optional(),
    caPem: z.string().min(1).optional(),
    certFile: z.string().min(1).optional(),
    certPem: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
    keyPem: z.string().min(1).optional(),
    gatewayId: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'gatewayId must match ^[A-Za-z0-9_.-]{1,64}$'),
    batchMaxRecords: z.number().int().min(1).max(50_000).default(1_000),
    /** Sum of the COSE bytes of a batch (the first record is always taken, however large). */
    batchMaxBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
    /** A batch that is not full leaves once its oldest record has waited this long since receipt. */
    batchMaxAgeMs: ms(0, 600_000, 200),
    /** Batches in flight at once; also the number of per-device ordering lanes. */
    maxInFlight: z.number().int().min(1).max(64).default(4),
    /** How often the outbox is looked at when the relay is idle. */
    pollIntervalMs: ms(5, 60_000, 50),
    maxResponseBytes: z.number().int().min(256).max(16 * 1024 * 1024).default(64 * 1024),
    /** After a TLS authentication failure the relay halts; it looks again after this long (0 = only on resume()). */
    haltedProbeMs: ms(0, 86_400_000, 600_000),
    /** How long an idle, freshly authenticated probe connection must stay open for the certificate to count as accepted. */
    authProbeMs: ms(50, 60_000, 1_000),
    /** At most one certificate probe per this interval. */
    authProbeIntervalMs: ms(0, 3_600_000, 10_000),
    timeouts: TimeoutsSchema.prefault({}),
    retry: RetrySchema.prefault({}),
    breaker: BreakerSchema.prefault({}),
    pace: PaceSchema.prefault({}),
    mqtt: MqttSchema.prefault({}),
  })
  .superRefine((o, ctx) => {
    for (const [file, pem] of [
      ['caFile', 'caPem'],
      ['certFile', 'certPem'],
      ['keyFile', 'keyPem'],
    ] as const) {
      if ((o[file] === undefined) === (o[pem] === undefined)) {
        ctx.addIssue({ code: 'custom', path: [file], message: `give exactly one of ${file} and ${pem}` });
      }
    }
    if (o.retry.initialDelayMs > o.retry.maxDelayMs) {
      ctx.addIssue({ code: 'custom', path: ['retry', 'initialDelayMs'], message: 'must not exceed retry.maxDelayMs' });
    }
    if (o.breaker.halfOpenAfterMs > o.breaker.maxHalfOpenAfterMs) {
      ctx.addIssue({ code: 'custom', path: ['breaker', 'halfOpenAfterMs'], message: 'must not exceed breaker.maxHalfOpenAfterMs' });
    }
  });

/** What a caller passes: the required fields plus any defaults it wants to change. */
export type RelayOptionsInput = z.input<typeof OptionsSchema>;
export type RelayOptions = Readonly<z.output<typeof OptionsSchema>>;

/** Every default, for `edgegw start` and docs/relay.md. */
export const DEFAULT_RELAY_OPTIONS = Object.freeze({
  batchMaxRecords: 1_000,
  batchMaxBytes: 1024 * 1024,
  batchMaxAgeMs: 200,
  maxInFlight: 4,
  pollIntervalMs: 50,
  maxResponseBytes: 64 * 1024,
  haltedProbeMs: 600_000,
  authProbeMs: 1_000,
  authProbeIntervalMs: 10_000,
  timeouts: Object.freeze(TimeoutsSchema.parse({})),
  retry: Object.freeze(RetrySchema.parse({})),
  breaker: Object.freeze(BreakerSchema.parse({})),
  pace: Object.freeze(PaceSchema.parse({})),
  mqtt: Object.freeze(MqttSchema.parse({})),
});

export type Scheme = 'https' | 'mqtts';

export interface Upstream {
  scheme: Scheme;
  /** `https://host:port`: the only place the relay connects to. */
  origin: string;
  url: URL;
}

/**
 * Checks the upstream URL: https or mqtts only (no plaintext path exists), no credentials,
 * query or fragment in it, and, when an allow-list is configured, an allowed origin.
 * Throws EDGEGW_RELAY_ORIGIN_REFUSED.
 */
export function checkUpstream(options: Pick<RelayOptions, 'url' | 'allowedOrigins'>): Upstream {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new EdgegwError('EDGEGW_RELAY_ORIGIN_REFUSED', 'upstream url is not a URL');
  }
  const scheme = url.protocol === 'https:' ? 'https' : url.protocol === 'mqtts:' ? 'mqtts' : undefined;
  if (scheme === undefined) {
    throw new EdgegwError('EDGEGW_RELAY_ORIGIN_REFUSED', `upstream scheme ${url.protocol} refused: only https: and mqtts: (TLS with certificate verification)`);
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new EdgegwError('EDGEGW_RELAY_ORIGIN_REFUSED', 'upstream url must not carry credentials, a query or a fragment');
  }
  const origin = `${url.protocol}//${url.host}`;
  if (options.allowedOrigins !== undefined) {
    const allowed = options.allowedOrigins.map((o) => {
      try {
        const u = new URL(o);
        return `${u.protocol}//${u.host}`;
      } catch {
        return '';
      }
    });
    if (!allowed.includes(origin)) {
      throw new EdgegwError('EDGEGW_RELAY_ORIGIN_REFUSED', `upstream origin ${origin} is not in allowedOrigins`);
    }
  }
  return { scheme, origin, url };
}

/** Relay options that `edgegw start` sets itself, so its config's `upstream.tuning` may not. */
export const UPSTREAM_OWN_KEYS = ['url', 'caFile', 'caPem', 'certFile', 'certPem', 'keyFile', 'keyPem', 'gatewayId'] as const;

/**
 * The problems of a relay tuning object (every option but UPSTREAM_OWN_KEYS), as
 * "path: message" lines; none when it is valid. Pure: no file is read.
 */
export function relayTuningProblems(tuning: Record<string, unknown>): string[] {
  const own = UPSTREAM_OWN_KEYS.filter((k) => k in tuning).map((k) => `${k}: set by upstream itself, not by its tuning`);
  const probe = { ...tuning, url: 'https://upstream.invalid', caPem: '-', certPem: '-', keyPem: '-', gatewayId: 'gw' };
  const parsed = OptionsSchema.safeParse(probe);
  const issues = parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.') || '(tuning)'}: ${i.message}`);
  return [...own, ...issues];
}

/** Validates and freezes; throws EDGEGW_CONFIG_INVALID listing every problem. */
export function parseRelayOptions(input: RelayOptionsInput): RelayOptions {
  const parsed = OptionsSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`);
    throw new EdgegwError('EDGEGW_CONFIG_INVALID', `relay options: ${problems.join('; ')}`);
  }
  checkUpstream(parsed.data);
  return Object.freeze(parsed.data);
}

export interface TlsMaterial {
  ca: string;
  cert: string;
  key: string;
}

/** Reads the CA, certificate and key (the key file must be mode 0600). Called from start(), not the factory. */
export function loadTlsMaterial(o: RelayOptions): TlsMaterial {
  const read = (file: string | undefined, pem: string | undefined, what: string, secret: boolean): string => {
    if (pem !== undefined) return pem;
    try {
      return (secret ? readSecretFile(file!) : readFileSync(file!)).toString('utf8');
    } catch (err) {
      if (err instanceof EdgegwError) throw err;
      throw new EdgegwError('EDGEGW_CONFIG_INVALID', `relay ${what} ${file} cannot be read: ${(err as Error).message}`, { cause: err });
    }
  };
  return {
    ca: read(o.caFile, o.caPem, 'CA file', false),
    cert: read(o.certFile, o.certPem, 'certificate file', false),
    key: read(o.keyFile, o.keyPem, 'key file', true),
  };
}
