import t from 'tap';
import { startGateway } from '../helpers/gateway.js';
import { makeDevice, connectDevice, signedTelemetry, publishQos1 } from '../helpers/devices.js';

// Inline, and on workers only (a quiet gateway with workers would check these inline too).
for (const verifyWorkers of [0, 2]) {
  t.test(`a device's signed telemetry is verified, committed and acknowledged (verifyWorkers=${verifyWorkers})`, async (t) => {
    const gw = await startGateway(t, { verifyWorkers, verifyInlineWhenIdle: false });
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

t.test('with workers, a quiet gateway checks a lone message inline; with verifyInlineWhenIdle false, on a worker', async (t) => {
  for (const verifyInlineWhenIdle of [true, false]) {
    const gw = await startGateway(t, { verifyWorkers: 2, verifyInlineWhenIdle });
    const dev = await makeDevice(gw.registrar, `quiet-${verifyInlineWhenIdle}`, 'EdDSA');
    const client = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
    t.teardown(() => void client.end(true));
    // The rate of checks is sampled every 100 ms: after a quiet spell the first sample is low.
    await new Promise((r) => setTimeout(r, 300));
    for (let seq = 1; seq <= 20; seq++) {
      const m = signedTelemetry(dev, seq);
      await publishQos1(client, m.topic, m.payload);
      await new Promise((r) => setTimeout(r, 10));
    }
    t.equal(gw.gateway.store.counters.get('accepted'), 20);
    const { jobs } = gw.gateway.verifyStats();
    if (verifyInlineWhenIdle) t.ok(jobs < 10, `${20 - jobs} of 20 checked inline while the gateway was quiet`);
    else t.equal(jobs, 20, 'all 20 checked on the workers');
  }
});
