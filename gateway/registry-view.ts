/**
 * The hot path's view of the registry: kids -> imported keys, device -> status, held in
 * memory and rebuilt when the database changes (another process such as `edgegw device
 * revoke` or the provisioning station wrote to it). A rebuild reports which devices lost
 * their right to be connected, so their sessions can be closed at once.
 */
import { importPublicKey } from '../protocol/index.js';
import type { Registry, DeviceStatus } from './store/index.js';
import type { KeyEntry, RegistryView } from './verify/checks.js';
import { hexOf } from './verify/checks.js';

export interface CachedRegistry extends RegistryView {
  /** Rebuilds from the database; returns ids of devices that are no longer active. */
  reload(): string[];
  deviceIds(): IterableIterator<string>;
}

export function createRegistryView(registry: Registry): CachedRegistry {
  let keys = new Map<string, KeyEntry>();
  let devices = new Map<string, DeviceStatus>();
  const imported = new Map<string, KeyEntry['key']>();

  function build(): string[] {
    const nextDevices = new Map<string, DeviceStatus>();
    for (const d of registry.listDevices()) nextDevices.set(d.id, d.status);
    const nextKeys = new Map<string, KeyEntry>();
    for (const k of registry.allKeys()) {
      const kidHex = hexOf(k.kid);
      let key = imported.get(kidHex);
      if (key === undefined) {
        const res = importPublicKey(k.alg, k.pub);
        if (!res.ok) continue; // a key that cannot be imported verifies nothing: treated as unknown
        key = res.value;
        imported.set(kidHex, key);
      }
      nextKeys.set(kidHex, { key, kidHex, deviceId: k.deviceId, status: k.status, retireAtMs: k.retireAtMs });
    }
    const lost: string[] = [];
    for (const [id, status] of devices) {
      if (status === 'active' && nextDevices.get(id) !== 'active') lost.push(id);
    }
    keys = nextKeys;
    devices = nextDevices;
    return lost;
  }
  build();

  return {
    key: (kidHex) => keys.get(kidHex),
    deviceStatus: (id) => devices.get(id),
    reload: build,
    deviceIds: () => devices.keys(),
  };
}
