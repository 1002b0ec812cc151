import t from 'tap';
import { startGateway } from '../helpers/gateway.js';
import { makeDevice, connectDevice, signedTelemetry, publishQos1 } from '../helpers/devices.js';

for (const verifyWorkers of [0, 2]) {
  t.test(`a device's signed telemetry is verified, committed and acknowledged (verifyWorkers=${verifyWorkers})`, async (t) => {
    const gw = await startGateway(t, { verifyWorkers });
    const ed = await makeDevice(gw.registrar, 'sensor-ed', 'EdDSA');
    const p256 = await makeDevice(gw.registrar, 'sensor-p256', 'ES256');
    for (const dev of [ed, p256]) {
      const client = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
      t.teardown(() => void client.end(true));
      for (let seq = 1; seq <= 20; seq++) {
        const m = signedTelemetry(dev, seq);
        await publishQos1(client, m.topic, m.payload);
      }
    }
    const store = gw.gateway.store;
    t.equal(store.counters.get('accepted'), 40, 'every message committed before its PUBACK');
    const rows = store.outbox.read(0, 100, 1 << 20);
    t.equal(rows.length, 40);
    t.same(rows.filter((r) => r.deviceId === 'sensor-ed').map((r) => r.seq), Array.from({ length: 20 }, (_, i) => i + 1), 'per-device order kept');
    t.equal(store.replayState('sensor-p256').high, 20);
  });
}
