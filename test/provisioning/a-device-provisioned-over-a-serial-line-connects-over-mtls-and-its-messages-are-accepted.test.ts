// Issue 6 "done when", first item: the whole §7 session over a real pty pair against a real
// gateway, then the device boots from the flash file it wrote and publishes over mTLS.
import t from 'tap';
import { existsSync, statSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { silentLogger } from '../../common/log.js';
import { systemClock } from '../../common/clock.js';
import { createDevice, fileFlash } from '../../device-sim/index.js';
import { kidOf, type CoseAlg } from '../../protocol/index.js';
import { startGateway } from '../helpers/gateway.js';
import { tempDir } from '../helpers/tmp.js';
import { openBoth, ptyPair } from './_pty.js';
import { hex, simDevice, stationFor } from './_station.js';

for (const alg of ['EdDSA', 'ES256'] as CoseAlg[]) {
  t.test(`a device provisioned over a serial line connects over mTLS and its signed messages are accepted (${alg})`, async (t) => {
    const gw = await startGateway(t);
    const dir = tempDir(t, 'edgegw-prov-');
    const lines = await openBoth(t, await ptyPair(t, dir));
    const { device, flashPath } = simDevice(dir, { serialNumber: `SN 0001/${alg}`, alg, firmwareVersion: '2.1.0', hardwareModel: 'sensor-r3' });
    const id = `SN-0001-${alg}`;
    t.equal(device.deviceId, id, 'the proposed id comes from the serial number');
    t.notOk(existsSync(flashPath), 'nothing in flash before provisioning');

    const [station, dev] = await Promise.all([stationFor(gw).provision(lines.station), device.run(lines.device)]);
    const kid = hex(kidOf(device.publicKey));
    t.same(station, { status: 'provisioned', deviceId: id, kid, retries: 0, badFrames: 0 }, 'the station reports the device');
    t.same(dev, { status: 'provisioned', deviceId: id, kid, errorsReceived: [] }, 'the device got DONE');

    const registry = gw.registrar.store.registry;
    t.match(registry.getDevice(id), { id, status: 'active', firmware: '2.1.0', model: 'sensor-r3' }, 'registered active with IDENTITY fields 5 and 6');
    t.same(registry.keysOf(id).map((k) => hex(k.kid)), [kid], 'with its key');
    t.equal(registry.certsOf(id).length, 1, 'and its certificate recorded');

    t.equal(statSync(flashPath).mode & 0o777, 0o600, 'the flash file holds the private key: mode 0600');
    const flash = fileFlash(flashPath).load()!;
    t.equal(flash.deviceId, id);
    t.equal(flash.gatewayId, gw.ready.gatewayId, 'gateway id from HELLO');
    t.equal(hex(flash.gatewayPublicKey), gw.ready.gatewayPublicKey, 'gateway signing key from CREDENTIALS field 4');
    t.same(flash.brokerUrls, [`mqtts://127.0.0.1:${gw.ready.mqttsPort}`]);
    const cert = new X509Certificate(flash.certPem);
    t.match(cert.subject, new RegExp(`CN=${id}`), 'the certificate names the device');
    t.ok(cert.checkIssued(new X509Certificate(flash.caPem)), 'issued by the CA sent in field 3');

    const firmware = createDevice({ log: silentLogger(), clock: systemClock, flash: fileFlash(flashPath) }, { backoff: { initialMs: 100, maxMs: 400 } });
    t.teardown(() => firmware.stop());
    firmware.start();
    t.ok(await firmware.waitOnline(10_000), 'connected over mTLS with the provisioned certificate');
    for (let i = 0; i < 3; i++) firmware.telemetry('temp', { c: 21 + i });
    t.ok(await firmware.drain(10_000), 'every message acknowledged');
    t.equal(gw.gateway.store.counters.get('accepted'), 3, 'the gateway verified and committed all three');
    t.same(gw.gateway.store.outbox.read(0, 10, 1 << 20).map((r) => r.deviceId), [id, id, id]);
  });
}
