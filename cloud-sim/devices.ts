/**
 * The cloud's view of the fleet: the device export the gateway writes (`edgegw device
 * export`), parsed strictly, with every public key imported once and its kid recomputed
 * (the export is not trusted to say which kid a key has). The file is re-read when it
 * changes, checked at most every `checkIntervalMs`; a bad new version is refused and the
 * last good one kept.
 *
 * Format (JSON, what `edgegw device export` writes; docs/relay.md): `{"version": 1, "devices":
 * [{"id", "status", "keys": [{"kid": hex, "alg": "EdDSA"|"ES256", "pub": hex, "status"}]}]}`. Keys of every
 * status are kept: a record signed while a key was active still verifies after it retired.
 */
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { EdgegwError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { importPublicKey, isDeviceId, type VerifyKey } from '../protocol/index.js';

export const DEVICE_EXPORT_VERSION = 1;
const MAX_EXPORT_BYTES = 64 * 1024 * 1024;

const hex = (min: number, max: number) => z.string().regex(new RegExp(`^([0-9a-fA-F]{2}){${min},${max}}$`), 'hex');

const ExportSchema = z.strictObject({
  version: z.literal(DEVICE_EXPORT_VERSION),
  devices: z
    .array(
      z.strictObject({
        id: z.string().refine(isDeviceId, 'deviceId must match ^[A-Za-z0-9_-]{1,64}$'),
        status: z.enum(['active', 'quarantined', 'revoked']),
        keys: z
          .array(
            z.strictObject({
              kid: hex(8, 8),
              alg: z.enum(['EdDSA', 'ES256']),
              pub: hex(32, 65),
              status: z.enum(['active', 'retiring', 'retired']),
            }),
          )
          .max(64),
      }),
    )
    .max(1_000_000),
});

export type DeviceExport = z.input<typeof ExportSchema>;

export interface KnownKey {
  readonly deviceId: string;
  readonly key: VerifyKey;
}

export interface DeviceSet {
  /** Keys by hex kid. */
  readonly byKid: ReadonlyMap<string, KnownKey>;
  readonly devices: number;
}

const EMPTY: DeviceSet = { byKid: new Map(), devices: 0 };

/** Parses an export; throws EDGEGW_CLOUDSIM_DEVICES_INVALID listing every problem. */
export function parseDeviceExport(text: string): DeviceSet {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new EdgegwError('EDGEGW_CLOUDSIM_DEVICES_INVALID', `device export is not JSON: ${(err as Error).message}`);
  }
  const parsed = ExportSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 20).map((i) => `${i.path.join('.') || '(export)'}: ${i.message}`);
    throw new EdgegwError('EDGEGW_CLOUDSIM_DEVICES_INVALID', `device export: ${problems.join('; ')}`);
  }
  const byKid = new Map<string, KnownKey>();
  for (const d of parsed.data.devices) {
    for (const k of d.keys) {
      const imported = importPublicKey(k.alg, Buffer.from(k.pub, 'hex'));
      if (!imported.ok) throw new EdgegwError('EDGEGW_CLOUDSIM_DEVICES_INVALID', `device ${d.id}: key ${k.kid}: ${imported.reason}`);
      const kid = Buffer.from(imported.value.kid).toString('hex');
      if (kid !== k.kid.toLowerCase()) throw new EdgegwError('EDGEGW_CLOUDSIM_DEVICES_INVALID', `device ${d.id}: kid ${k.kid} is not the kid of its key (${kid})`);
      if (byKid.has(kid)) throw new EdgegwError('EDGEGW_CLOUDSIM_DEVICES_INVALID', `kid ${kid} appears twice`);
      byKid.set(kid, { deviceId: d.id, key: imported.value });
    }
  }
  return { byKid, devices: parsed.data.devices.length };
}

/** The export as the gateway would write it, for tests and the demo. */
export function buildDeviceExport(devices: { id: string; alg: 'EdDSA' | 'ES256'; pub: Uint8Array; kid: Uint8Array }[]): string {
  const out: DeviceExport = {
    version: DEVICE_EXPORT_VERSION,
    devices: devices.map((d) => ({
      id: d.id,
      status: 'active',
      keys: [{ kid: Buffer.from(d.kid).toString('hex'), alg: d.alg, pub: Buffer.from(d.pub).toString('hex'), status: 'active' }],
    })),
  };
  return `${JSON.stringify(out)}\n`;
}

export interface DeviceWatcher {
  /** Loads the file now; throws when it exists but is invalid. */
  load(): void;
  /** The current set, re-read first when the file changed. */
  current(nowMs: number): DeviceSet;
  reloads(): number;
}

export function watchDeviceExport(deps: { log: Logger }, path: string | undefined, checkIntervalMs = 250): DeviceWatcher {
  let set = EMPTY;
  let stamp = '';
  let lastCheck = -Infinity;
  let reloads = 0;

  function stampOf(): string | undefined {
    try {
      const st = statSync(path!);
      return `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return undefined;
    }
  }

  function read(s: string): void {
    const st = statSync(path!);
    if (st.size > MAX_EXPORT_BYTES) throw new EdgegwError('EDGEGW_CLOUDSIM_DEVICES_INVALID', `device export is larger than ${MAX_EXPORT_BYTES} bytes`);
    set = parseDeviceExport(readFileSync(path!, 'utf8'));
    stamp = s;
    reloads++;
    deps.log.info({ devices: set.devices, keys: set.byKid.size }, 'device export loaded');
  }

  return {
    load() {
      if (path === undefined) return;
      const s = stampOf();
      if (s === undefined) {
        deps.log.warn({ path }, 'device export not there yet; records from unknown keys are refused until it is');
        return;
      }
      read(s);
    },
    current(nowMs) {
      if (path === undefined || nowMs - lastCheck < checkIntervalMs) return set;
      lastCheck = nowMs;
      const s = stampOf();
      if (s !== undefined && s !== stamp) {
        try {
          read(s);
        } catch (err) {
          // Keep the last good set: a half-written or broken export must not un-know the fleet.
          stamp = s;
          deps.log.warn({ code: (err as EdgegwError).code, message: (err as Error).message }, 'device export refused; keeping the previous one');
        }
      }
      return set;
    },
    reloads() {
      return reloads;
    },
  };
}
