/**
 * Public surface of provisioning/: the local PKI (issue 6 §1, see docs/pki.md) and the serial
 * station with its simulated device (issue 6 §2-§3, PROTOCOL.md §7, see docs/provisioning.md).
 */
export * from './pki/index.js';
export { createStation, type Station, type StationDeps, type StationOptions, type ProvisionOutcome } from './station.js';
export { frameLine, openSerialLine, DEFAULT_BAUD, type FrameLine, type LineEvent } from './line.js';
export { listPorts, listUsbPortsFromSysfs, type PortListing } from './ports.js';
export { watchPort, type WatchOptions } from './watch.js';
export {
  createSerialDevice,
  deviceIdFromSerial,
  describeFaults,
  DEVICE_FAULTS,
  type DeviceFault,
  type DeviceOutcome,
  type SerialDevice,
  type SerialDeviceDeps,
  type SerialDeviceOptions,
} from './serial-device.js';
