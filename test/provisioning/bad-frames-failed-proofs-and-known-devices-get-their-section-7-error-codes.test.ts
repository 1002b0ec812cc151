// PROTOCOL.md §7 error handling over real ptys against a real gateway: each misbehaving
// device gets the ERROR code the contract names, and nothing is registered unless a valid
// COMMIT arrived.
import t, { type Test } from 'tap';
import { FRAME_ERROR, FRAME_TYPE, kidOf } from '../../protocol/index.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { tempDir } from '../helpers/tmp.js';
import { openBoth, ptyPair } from './_pty.js';
import { hex, simDevice, stationFor } from './_station.js';
import type { SerialDevice } from '../../provisioning/index.js';
import { fileFlash, tlsKeyPem } from '../../device-sim/index.js';
import { connectDevice } from '../helpers/devices.js';

async function session(t: Test, gw: RunningGateway, dir: string, device: SerialDevice, name: string) {
  const lines = await openBoth(t, await ptyPair(t, dir, name));
  const [station, dev] = await Promise.all([stationFor(gw).provision(lines.station), device.run(lines.device)]);
  return { station, dev };
}

const registered = (gw: RunningGateway): string[] => gw.registrar.store.registry.listDevices().map((d) => d.id);

t.test('a frame with a bad CRC is answered with ERROR 1 and the resent frame succeeds', async (t) => {
  const gw = await startGateway(t);
  const dir = tempDir(t, 'edgegw-prov-');
  const { device } = simDevice(dir, { faults: ['bad-crc'] });
  const { station, dev } = await session(t, gw, dir, device, 'crc');
  t.equal(station.badFrames, 1, 'the station dropped the corrupted IDENTITY');
  t.same(dev.errorsReceived, [FRAME_ERROR.BAD_FRAME], 'and answered it with ERROR 1');
  t.equal(station.status, 'provisioned', 'the device resent it and the session went on');
  t.equal(dev.status, 'provisioned');
  t.same(registered(gw), ['SN-0001']);
});

t.test('the station resends its last frame at once when the device reports ERROR 1', async (t) => {
  const gw = await startGateway(t);
  const dir = tempDir(t, 'edgegw-prov-');
  const lines = await openBoth(t, await ptyPair(t, dir, 'resend'));
  const stationRun = stationFor(gw).provision(lines.station);
  // Firmware by hand: take HELLO, claim it arrived corrupted.
  const first = await lines.device.next(2000);
  if (first.kind !== 'frame' || !first.result.ok || first.result.value.frame.type !== FRAME_TYPE.HELLO) throw new Error('expected HELLO');
  const sentAt = performance.now();
  await lines.device.send({ type: FRAME_TYPE.ERROR, code: FRAME_ERROR.BAD_FRAME, message: 'bad CRC' });
  const second = await lines.device.next(2000);
  const after = performance.now() - sentAt;
  t.ok(second.kind === 'frame' && second.result.ok && second.result.value.frame.type === FRAME_TYPE.HELLO, 'HELLO again');
  t.ok(after < 900, `resent on ERROR 1, not on the 1 s retry timer (${Math.round(after)} ms)`);
  if (second.kind === 'frame' && second.result.ok && first.result.value.frame.type === FRAME_TYPE.HELLO && second.result.value.frame.type === FRAME_TYPE.HELLO) {
    t.same(second.result.value.frame.nonce, first.result.value.frame.nonce, 'the same frame, same nonce');
  }
  // The simulated device takes over from here and answers the next retry.
  const { device } = simDevice(dir);
  const [station, dev] = await Promise.all([stationRun, device.run(lines.device)]);
  t.equal(station.status, 'provisioned');
  t.ok(station.retries >= 2, 'the ERROR 1 resend and the timer retry both count as retries');
  t.equal(dev.status, 'provisioned');
});

t.test('a failed proof of possession is answered with ERROR 3 and registers nothing', async (t) => {
  const gw = await startGateway(t);
  const dir = tempDir(t, 'edgegw-prov-');
  const { device } = simDevice(dir, { faults: ['bad-pop'] });
  const { station, dev } = await session(t, gw, dir, device, 'pop');
  t.match(station, { status: 'failed', error: 'EDGEGW_PROVISION_POP_FAILED', deviceId: 'SN-0001' });
  t.same(dev.errorsReceived, [FRAME_ERROR.POP_FAILED], 'the device was told ERROR 3');
  t.equal(dev.error, 'EDGEGW_PROVISION_POP_FAILED');
  t.same(registered(gw), [], 'nothing registered');
  t.equal(gw.registrar.store.registry.findKey(kidOf(device.publicKey)), undefined, 'not even the key');
});

t.test('an already provisioned device, or another key under its id, is answered with ERROR 4', async (t) => {
  const gw = await startGateway(t);
  const dir = tempDir(t, 'edgegw-prov-');
  const first = simDevice(dir);
  const once = await session(t, gw, dir, first.device, 'first');
  t.equal(once.station.status, 'provisioned');

  // The same device again: it boots from its flash and proposes the same id and key.
  const again = simDevice(dir);
  t.equal(hex(again.device.publicKey), hex(first.device.publicKey), 'the key came back from flash');
  const twice = await session(t, gw, dir, again.device, 'again');
  t.match(twice.station, { status: 'failed', error: 'EDGEGW_PROVISION_REFUSED', deviceId: 'SN-0001' });
  t.same(twice.dev.errorsReceived, [FRAME_ERROR.REFUSED], 'the device was told ERROR 4');
  t.equal(twice.dev.error, 'EDGEGW_PROVISION_REFUSED');

  // Another board with the same serial number (a new key) must not take the id over.
  const clone = simDevice(dir, { flashName: 'clone.flash' });
  const cloned = await session(t, gw, dir, clone.device, 'clone');
  t.match(cloned.station, { status: 'failed', error: 'EDGEGW_PROVISION_REFUSED' });
  t.equal(gw.registrar.store.registry.certsOf('SN-0001').length, 1, 'still the one certificate of the first session');
  t.same(gw.registrar.store.registry.keysOf('SN-0001').map((k) => hex(k.kid)), [hex(kidOf(first.device.publicKey))]);
});

t.test('a COMMIT with the wrong digest is answered with ERROR 2, registers nothing, and a clean rerun succeeds', async (t) => {
  const gw = await startGateway(t);
  const dir = tempDir(t, 'edgegw-prov-');
  const bad = simDevice(dir, { faults: ['bad-commit'] });
  const first = await session(t, gw, dir, bad.device, 'commit');
  t.match(first.station, { status: 'failed', error: 'EDGEGW_PROVISION_BAD_MESSAGE' });
  t.same(first.dev.errorsReceived, [FRAME_ERROR.BAD_MESSAGE]);
  t.same(registered(gw), [], 'nothing registered without a valid COMMIT');
  const orphan = fileFlash(bad.flashPath).load()!;

  // The device stored the credentials before its (bad) COMMIT; it runs again with the same key.
  const fixed = simDevice(dir);
  t.equal(hex(fixed.device.publicKey), hex(bad.device.publicKey));
  const second = await session(t, gw, dir, fixed.device, 'rerun');
  t.equal(second.station.status, 'provisioned', 'the session is simply run again');
  t.same(registered(gw), ['SN-0001']);

  // The certificate of the failed session was issued but never recorded: the broker refuses it.
  const current = fileFlash(fixed.flashPath).load()!;
  t.not(current.certPem, orphan.certPem, 'the rerun replaced the certificate in flash');
  const keyPem = tlsKeyPem(current.alg, current.privateKey);
  // The recorded one first: it shows the gateway knows the device, so the refusal below is the certificate's.
  const client = await connectDevice({ id: 'SN-0001', certPem: current.certPem, keyPem }, gw.ready.mqttsPort, gw.ready.caFile);
  t.ok(client.connected, 'the recorded certificate connects');
  client.end(true);
  await t.rejects(connectDevice({ id: 'SN-0001', certPem: orphan.certPem, keyPem }, gw.ready.mqttsPort, gw.ready.caFile), 'the unrecorded certificate, same key and CN, is refused at CONNECT');
});

t.test('a device that answers with an ERROR frame fails the session with its code in the detail', async (t) => {
  const gw = await startGateway(t);
  const dir = tempDir(t, 'edgegw-prov-');
  const { device } = simDevice(dir, { faults: ['refuse'] });
  const { station, dev } = await session(t, gw, dir, device, 'refuse');
  t.match(station, { status: 'failed', error: 'EDGEGW_PROVISION_DEVICE_ERROR', detail: /ERROR 4/ });
  t.equal(dev.status, 'failed');
  t.same(registered(gw), []);
});
