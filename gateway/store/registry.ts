/**
 * The device registry: devices (active / quarantined / revoked), their signing keys
 * (active / retiring / retired, PROTOCOL.md §5) and the certificates issued to them.
 * The gateway keeps a snapshot in memory for the hot path and reloads it when another
 * process (the CLI, the provisioning station) changes the database.
 */
import type { Db } from './db.js';
import type { Clock } from '../../common/clock.js';
import { EdgegwError } from '../../common/errors.js';

export type DeviceStatus = 'active' | 'quarantined' | 'revoked';
export type KeyStatus = 'active' | 'retiring' | 'retired';
export type KeyAlg = 'EdDSA' | 'ES256';

export interface KeyRecord {
  readonly kid: Uint8Array;
  readonly deviceId: string;
  readonly alg: KeyAlg;
  readonly pub: Uint8Array;
  readonly status: KeyStatus;
  readonly createdMs: number;
  /** When a retiring key stops being accepted. */
  readonly retireAtMs: number | null;
}

export interface DeviceRecord {
  readonly id: string;
  readonly status: DeviceStatus;
  readonly createdMs: number;
  readonly updatedMs: number;
  readonly firmware: string | null;
  readonly model: string | null;
}

export interface CertRecord {
  readonly serial: string;
  readonly deviceId: string;
  readonly kid: Uint8Array;
  readonly notAfterMs: number;
  readonly revokedMs: number | null;
}

export interface NewDevice {
  id: string;
  alg: KeyAlg;
  pub: Uint8Array;
  kid: Uint8Array;
  firmware?: string;
  model?: string;
}

interface KeyRow {
  kid: Buffer;
  device_id: string;
  alg: KeyAlg;
  pub: Buffer;
  status: KeyStatus;
  created_ms: number;
  retire_at_ms: number | null;
}
interface DeviceRow {
  id: string;
  status: DeviceStatus;
  created_ms: number;
  updated_ms: number;
  firmware: string | null;
  model: string | null;
}
interface CertRow {
  serial: string;
  device_id: string;
  kid: Buffer;
  not_after_ms: number;
  revoked_ms: number | null;
}

const toKey = (r: KeyRow): KeyRecord => ({
  kid: new Uint8Array(r.kid),
  deviceId: r.device_id,
  alg: r.alg,
  pub: new Uint8Array(r.pub),
  status: r.status,
  createdMs: r.created_ms,
  retireAtMs: r.retire_at_ms,
});
const toDevice = (r: DeviceRow): DeviceRecord => ({
  id: r.id,
  status: r.status,
  createdMs: r.created_ms,
  updatedMs: r.updated_ms,
  firmware: r.firmware,
  model: r.model,
});
const toCert = (r: CertRow): CertRecord => ({
  serial: r.serial,
  deviceId: r.device_id,
  kid: new Uint8Array(r.kid),
  notAfterMs: r.not_after_ms,
  revokedMs: r.revoked_ms,
});

export type Registry = ReturnType<typeof createRegistry>;

export function createRegistry(deps: { db: Db; clock: Clock }) {
  const { db, clock } = deps;
  const st = {
    insertDevice: db.prepare(
      'INSERT INTO devices (id, status, created_ms, updated_ms, firmware, model) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    insertKey: db.prepare(
      'INSERT INTO keys (kid, device_id, alg, pub, status, created_ms, retire_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    device: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE id = ?'),
    devices: db.prepare<[], DeviceRow>('SELECT * FROM devices ORDER BY id'),
    keysOf: db.prepare<[string], KeyRow>('SELECT * FROM keys WHERE device_id = ? ORDER BY created_ms'),
    key: db.prepare<[Uint8Array], KeyRow>('SELECT * FROM keys WHERE kid = ?'),
    allKeys: db.prepare<[], KeyRow>('SELECT * FROM keys'),
    setStatus: db.prepare('UPDATE devices SET status = ?, updated_ms = ? WHERE id = ?'),
    retireActive: db.prepare(
      "UPDATE keys SET status = 'retiring', retire_at_ms = ? WHERE device_id = ? AND status = 'active'",
    ),
    retireExpired: db.prepare(
      "UPDATE keys SET status = 'retired' WHERE status = 'retiring' AND retire_at_ms IS NOT NULL AND retire_at_ms <= ?",
    ),
    insertCert: db.prepare('INSERT INTO certs (serial, device_id, kid, not_after_ms, revoked_ms) VALUES (?, ?, ?, ?, NULL)'),
    cert: db.prepare<[string], CertRow>('SELECT * FROM certs WHERE serial = ?'),
    certsOf: db.prepare<[string], CertRow>('SELECT * FROM certs WHERE device_id = ? ORDER BY not_after_ms'),
    revokedCerts: db.prepare<[], CertRow>('SELECT * FROM certs WHERE revoked_ms IS NOT NULL'),
    revokeCertsOf: db.prepare('UPDATE certs SET revoked_ms = ? WHERE device_id = ? AND revoked_ms IS NULL'),
    deleteDevice: db.prepare('DELETE FROM devices WHERE id = ?'),
    deleteKeys: db.prepare('DELETE FROM keys WHERE device_id = ?'),
    deleteCerts: db.prepare('DELETE FROM certs WHERE device_id = ?'),
  };

  function requireDevice(id: string): DeviceRecord {
    const row = st.device.get(id);
    if (!row) throw new EdgegwError('EDGEGW_REGISTRY_UNKNOWN_DEVICE', `no device ${id}`);
    return toDevice(row);
  }

  const addDevice = db.transaction((d: NewDevice, status: DeviceStatus): DeviceRecord => {
    if (st.device.get(d.id)) throw new EdgegwError('EDGEGW_REGISTRY_DEVICE_EXISTS', `device ${d.id} is already registered`);
    if (st.key.get(d.kid)) throw new EdgegwError('EDGEGW_REGISTRY_KEY_EXISTS', `that public key is already registered`);
    const now = clock.now();
    st.insertDevice.run(d.id, status, now, now, d.firmware ?? null, d.model ?? null);
    st.insertKey.run(d.kid, d.id, d.alg, d.pub, 'active', now, null);
    return requireDevice(d.id);
  });

  const addDeviceWithCert = db.transaction(
    (d: NewDevice, cert: { serial: string; notAfterMs: number }): DeviceRecord => {
      const rec = addDevice(d, 'active');
      st.insertCert.run(cert.serial.toLowerCase(), d.id, d.kid, cert.notAfterMs);
      return rec;
    },
  );

  const rotateKey = db.transaction((deviceId: string, next: { alg: KeyAlg; pub: Uint8Array; kid: Uint8Array }, graceMs: number) => {
    requireDevice(deviceId);
    if (st.key.get(next.kid)) throw new EdgegwError('EDGEGW_REGISTRY_KEY_EXISTS', 'that public key is already registered');
    const now = clock.now();
    st.retireActive.run(now + graceMs, deviceId);
    st.insertKey.run(next.kid, deviceId, next.alg, next.pub, 'active', now, null);
  });

  const setStatus = db.transaction((id: string, status: DeviceStatus) => {
    requireDevice(id);
    const now = clock.now();
    st.setStatus.run(status, now, id);
    if (status === 'revoked') st.revokeCertsOf.run(now, id);
  });

  const removeDevice = db.transaction((id: string) => {
    st.deleteCerts.run(id);
    st.deleteKeys.run(id);
    st.deleteDevice.run(id);
  });

  return {
    /** Registers a device with its first key. `status` 'active' unless staged by provisioning. */
    addDevice(d: NewDevice, status: DeviceStatus = 'active'): DeviceRecord {
      return addDevice.immediate(d, status);
    },
    /**
     * Registers an active device with its key and certificate in one transaction: a crash
     * between the writes can never leave a device without its certificate.
     */
    addDeviceWithCert(d: NewDevice, cert: { serial: string; notAfterMs: number }): DeviceRecord {
      return addDeviceWithCert.immediate(d, cert);
    },
    /** Removes a device that never completed provisioning (no messages reference it). */
    removeDevice(id: string): void {
      removeDevice.immediate(id);
    },
    getDevice(id: string): DeviceRecord | undefined {
      const row = st.device.get(id);
      return row ? toDevice(row) : undefined;
    },
    requireDevice,
    listDevices(): DeviceRecord[] {
      return st.devices.all().map(toDevice);
    },
    keysOf(deviceId: string): KeyRecord[] {
      return st.keysOf.all(deviceId).map(toKey);
    },
    findKey(kid: Uint8Array): KeyRecord | undefined {
      const row = st.key.get(kid);
      return row ? toKey(row) : undefined;
    },
    allKeys(): KeyRecord[] {
      return st.allKeys.all().map(toKey);
    },
    setStatus(id: string, status: DeviceStatus): void {
      setStatus.immediate(id, status);
    },
    /** PROTOCOL.md §5: the new key becomes active, the old one retiring for `graceMs`. */
    rotateKey(deviceId: string, next: { alg: KeyAlg; pub: Uint8Array; kid: Uint8Array }, graceMs: number): void {
      rotateKey.immediate(deviceId, next, graceMs);
    },
    /** Moves retiring keys past their grace period to retired; returns how many. */
    retireExpiredKeys(): number {
      return st.retireExpired.run(clock.now()).changes;
    },
    recordCert(c: { serial: string; deviceId: string; kid: Uint8Array; notAfterMs: number }): void {
      st.insertCert.run(c.serial.toLowerCase(), c.deviceId, c.kid, c.notAfterMs);
    },
    getCert(serial: string): CertRecord | undefined {
      const row = st.cert.get(serial.toLowerCase());
      return row ? toCert(row) : undefined;
    },
    certsOf(deviceId: string): CertRecord[] {
      return st.certsOf.all(deviceId).map(toCert);
    },
    revokedCerts(): CertRecord[] {
      return st.revokedCerts.all().map(toCert);
    },
  };
}
