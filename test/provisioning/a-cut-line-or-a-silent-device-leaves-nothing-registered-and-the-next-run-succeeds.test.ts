// PROTOCOL.md §7 retries and atomicity over real ptys: killing socat mid-session is a cable
// pulled out; a device that never answers gets 3 retries 1 s apart and then a timeout.
import t from 'tap';
import { FRAME_TYPE } from '../../protocol/index.js';
import { startGateway } from '../helpers/gateway.js';
import { tempDir } from '../helpers/tmp.js';
import { openBoth, ptyPair } from './_pty.js';
import { simDevice, stationFor } from './_station.js';

t.test('the line cut mid-session registers nothing and the next run succeeds', async (t) => {
  const gw = await startGateway(t);
  const dir = tempDir(t, 'edgegw-prov-');
  const pair = await ptyPair(t, dir, 'cut');
  const lines = await openBoth(t, pair);
  let cutDone: Promise<void> | undefined;
  // The device takes CREDENTIALS and never answers: the cable is pulled while the station waits for COMMIT.
  const { device, flashPath } = simDevice(dir, {
    faults: ['stall-after-credentials'],
    onFrame: (type) => {
      if (type === FRAME_TYPE.CREDENTIALS) cutDone ??= pair.cut();
    },
  });
  const deviceRun = device.run(lines.device);
  const station = await stationFor(gw).provision(lines.station);
  await cutDone;
  t.match(station, { status: 'failed', error: 'EDGEGW_PROVISION_LINE_CUT', deviceId: 'SN-0001' }, 'the station noticed the cut line');
  t.same(gw.registrar.store.registry.listDevices(), [], 'nothing registered');
  await lines.device.close();
  t.equal((await deviceRun).error, 'EDGEGW_PROVISION_LINE_CUT');

  // Plugged in again: a new line, the same device (same flash file), no fault.
  const again = await openBoth(t, await ptyPair(t, dir, 'again'));
  const retry = simDevice(dir, { flashName: flashPath.split('/').pop()! });
  const [second, dev] = await Promise.all([stationFor(gw).provision(again.station), retry.device.run(again.device)]);
  t.equal(second.status, 'provisioned', 'the next run succeeds');
  t.equal(dev.status, 'provisioned');
  t.same(gw.registrar.store.registry.listDevices().map((d) => d.id), ['SN-0001']);
});

t.test('a silent device gets HELLO and 3 retries 1 s apart, then the session times out', async (t) => {
  const gw = await startGateway(t);
  const dir = tempDir(t, 'edgegw-prov-');
  const lines = await openBoth(t, await ptyPair(t, dir, 'silent'));
  let hellos = 0;
  const { device } = simDevice(dir, { faults: ['silent'], onFrame: (type) => void (type === FRAME_TYPE.HELLO && hellos++) });
  const deviceRun = device.run(lines.device);
  const started = performance.now();
  const station = await stationFor(gw).provision(lines.station);
  const elapsed = performance.now() - started;
  t.match(station, { status: 'failed', error: 'EDGEGW_PROVISION_TIMEOUT', retries: 3 });
  t.equal(station.deviceId, undefined, 'no device identified');
  t.ok(elapsed >= 3900 && elapsed < 8000, `four waits of 1 s (took ${Math.round(elapsed)} ms)`);
  await lines.device.close();
  await deviceRun;
  t.equal(hellos, 4, 'HELLO and its 3 retries reached the device');
  t.same(gw.registrar.store.registry.listDevices(), []);
});
