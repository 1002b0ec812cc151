// `edgegw provision --watch` as a library call: each socat pair created at the watched path is
// a device plugged in; killing socat removes the path, as unplugging a USB adapter does.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../common/log.js';
import { openSerialLine, watchPort, type ProvisionOutcome } from '../../provisioning/index.js';
import { startGateway } from '../helpers/gateway.js';
import { tempDir } from '../helpers/tmp.js';
import { ptyPair } from './_pty.js';
import { simDevice, stationFor } from './_station.js';

t.test('a production line in watch mode provisions each device as it is plugged in, one line each', async (t) => {
  const gw = await startGateway(t);
  const dir = tempDir(t, 'edgegw-prov-');
  const path = join(dir, 'usb-a');
  const stop = new AbortController();
  const outcomes: ProvisionOutcome[] = [];
  const watching = watchPort({ log: silentLogger(), station: stationFor(gw) }, { path, signal: stop.signal, pollMs: 50, onOutcome: (o) => outcomes.push(o) });
  t.teardown(() => stop.abort());

  for (const serialNumber of ['LINE-1', 'LINE-2', 'LINE-3']) {
    const pair = await ptyPair(t, dir, 'usb');
    t.equal(pair.a, path);
    const line = await openSerialLine(pair.b);
    const { device } = simDevice(dir, { serialNumber, flashName: `${serialNumber}.flash` });
    const out = await device.run(line);
    t.equal(out.status, 'provisioned', `${serialNumber} provisioned`);
    await line.close();
    await pair.cut();
    t.notOk(existsSync(path), 'unplugged');
    // Give the watcher a poll to notice the unplug before the next device appears at the same path.
    await sleep(150);
  }
  stop.abort();
  t.same(await watching, { provisioned: 3, failed: 0 });
  t.same(outcomes.map((o) => [o.deviceId, o.status]), [
    ['LINE-1', 'provisioned'],
    ['LINE-2', 'provisioned'],
    ['LINE-3', 'provisioned'],
  ], 'one outcome per device, in order');
  t.same(gw.registrar.store.registry.listDevices().map((d) => d.id).sort(), ['LINE-1', 'LINE-2', 'LINE-3']);
});
