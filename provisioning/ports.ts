/**
 * `edgegw provision --list`: the serial ports of this machine with their USB vendor and
 * product ids, so the technician can tell the adapter from the rest. serialport's list asks
 * udevadm on Linux; where udev is absent (containers, minimal images) the same facts are read
 * from sysfs: /sys/class/tty/<name>/device leads up to the USB device, whose directory holds
 * idVendor, idProduct, manufacturer and serial.
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SerialPort } from 'serialport';
import { EdgegwError } from '../common/errors.js';

export interface PortListing {
  path: string;
  vendorId?: string;
  productId?: string;
  manufacturer?: string;
  serialNumber?: string;
}

function clean(p: { path: string; vendorId?: string | undefined; productId?: string | undefined; manufacturer?: string | undefined; serialNumber?: string | undefined }): PortListing {
  return {
    path: p.path,
    ...(p.vendorId ? { vendorId: p.vendorId.toLowerCase() } : {}),
    ...(p.productId ? { productId: p.productId.toLowerCase() } : {}),
    ...(p.manufacturer ? { manufacturer: p.manufacturer } : {}),
    ...(p.serialNumber ? { serialNumber: p.serialNumber } : {}),
  };
}

const readAttr = (dir: string, name: string): string | undefined => {
  try {
    return readFileSync(join(dir, name), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
};

/** USB serial ports from sysfs (`root` is `/sys/class/tty`, a parameter so a test can lay out its own tree). */
export function listUsbPortsFromSysfs(root = '/sys/class/tty', devDir = '/dev'): PortListing[] {
  if (!existsSync(root)) return [];
  const out: PortListing[] = [];
  for (const name of readdirSync(root).sort()) {
    const deviceLink = join(root, name, 'device');
    if (!existsSync(deviceLink)) continue;
    // Walk up from the tty's device to the USB device (the first directory with idVendor); bounded by the path depth.
    let dir = realpathSync(deviceLink);
    while (dir !== dirname(dir) && readAttr(dir, 'idVendor') === undefined) dir = dirname(dir);
    const vendorId = readAttr(dir, 'idVendor');
    if (vendorId === undefined) continue;
    out.push(clean({ path: join(devDir, name), vendorId, productId: readAttr(dir, 'idProduct'), manufacturer: readAttr(dir, 'manufacturer'), serialNumber: readAttr(dir, 'serial') }));
  }
  return out;
}

/** The serial ports serialport finds, or on Linux without udev the USB ones sysfs shows. */
export async function listPorts(): Promise<PortListing[]> {
  try {
    return (await SerialPort.list()).map(clean);
  } catch (err) {
    if (process.platform === 'linux') return listUsbPortsFromSysfs();
    throw new EdgegwError('EDGEGW_PROVISION_PORT', 'cannot list serial ports', { cause: err });
  }
}
