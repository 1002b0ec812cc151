// `edgegw provision --list` without udev reads sysfs: a tty whose device sits under a USB
// device is listed with that device's ids; other ttys are not. The tree is laid out as Linux
// lays it out (class/tty/<name>/device -> ../../devices/.../<interface>/<name>), in a temp dir.
import t from 'tap';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listUsbPortsFromSysfs, openSerialLine } from '../../provisioning/index.js';
import { tempDir } from '../helpers/tmp.js';

t.test('USB serial ports are listed from sysfs with their vendor and product ids', async (t) => {
  const root = tempDir(t, 'edgegw-sysfs-');
  const usb = join(root, 'devices/pci0000:00/usb1/1-1');
  mkdirSync(join(usb, '1-1:1.0/ttyUSB0'), { recursive: true });
  writeFileSync(join(usb, 'idVendor'), '0403\n');
  writeFileSync(join(usb, 'idProduct'), '6001\n');
  writeFileSync(join(usb, 'manufacturer'), 'FTDI\n');
  writeFileSync(join(usb, 'serial'), 'A10K1234\n');
  const platform = join(root, 'devices/platform/serial8250/tty/ttyS0');
  mkdirSync(platform, { recursive: true });
  mkdirSync(join(root, 'class/tty/ttyUSB0'), { recursive: true });
  mkdirSync(join(root, 'class/tty/ttyS0'), { recursive: true });
  mkdirSync(join(root, 'class/tty/tty0'), { recursive: true });
  symlinkSync(join(usb, '1-1:1.0/ttyUSB0'), join(root, 'class/tty/ttyUSB0/device'));
  symlinkSync(platform, join(root, 'class/tty/ttyS0/device'));

  t.same(listUsbPortsFromSysfs(join(root, 'class/tty'), '/dev'), [
    { path: '/dev/ttyUSB0', vendorId: '0403', productId: '6001', manufacturer: 'FTDI', serialNumber: 'A10K1234' },
  ], 'only the USB adapter, with its ids; the on-board UART and virtual consoles are left out');
  t.same(listUsbPortsFromSysfs(join(root, 'nowhere')), [], 'no sysfs, no ports');
});

t.test('a port that cannot be opened is refused with EDGEGW_PROVISION_PORT', async (t) => {
  const dir = tempDir(t, 'edgegw-port-');
  await t.rejects(openSerialLine(join(dir, 'ttyUSB9')), { code: 'EDGEGW_PROVISION_PORT' });
});
