// A station against a real in-process gateway's registry and PKI, and a simulated device with
// a flash file in the test's directory.
import { join } from 'node:path';
import { silentLogger } from '../../common/log.js';
import { systemClock } from '../../common/clock.js';
import { fileFlash } from '../../device-sim/index.js';
import { createSerialDevice, createStation, type SerialDeviceOptions, type Station, type StationOptions } from '../../provisioning/index.js';
import type { RunningGateway } from '../helpers/gateway.js';

export function stationFor(gw: RunningGateway, options: Partial<StationOptions> = {}): Station {
  return createStation(
    { log: silentLogger(), clock: systemClock, registrar: gw.registrar },
    { brokerUrls: [`mqtts://127.0.0.1:${gw.ready.mqttsPort}`], ...options },
  );
}

export function simDevice(dir: string, options: Partial<SerialDeviceOptions> & { flashName?: string } = {}) {
  const flashPath = join(dir, options.flashName ?? 'device.flash');
  const device = createSerialDevice({ log: silentLogger(), flash: fileFlash(flashPath) }, { serialNumber: 'SN-0001', ...options });
  return { device, flashPath };
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
