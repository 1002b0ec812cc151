/**
 * The cloud simulator: an mTLS ingest endpoint (PROTOCOL.md §8) for the demo, the tests and
 * the benchmarks, run in-process with createCloudSim or as `edgegw cloud-sim`.
 */
export { createCloudSim, parseFaults, type CloudSim, type CloudSimOptions, type CloudSimReady, type CloudSimStats, type Faults, type FaultsInput } from './sim.js';
export { parseDeviceExport, buildDeviceExport, DEVICE_EXPORT_VERSION, type DeviceExport, type DeviceSet } from './devices.js';
export { decodeBatch, verifyRecord } from './ingest.js';
export type { StoredRecord, RejectedRecord } from './db.js';
