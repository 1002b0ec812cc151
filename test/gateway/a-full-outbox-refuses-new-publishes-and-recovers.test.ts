// PROTOCOL.md §3 durability with a bounded outbox: when it is full the gateway refuses new
// QoS 1 publishes (no PUBACK; the device keeps the message and retries) rather than drop
// anything it acknowledged, and raises an alert at the high-water mark.
import t from 'tap';
import { startGateway } from '../helpers/gateway.js';
import { makeDevice, connectDevice, signedTelemetry, publishQos1 } from '../helpers/devices.js';

t.test('a full outbox refuses, alerts, and accepts again once drained', async (t) => {
  const gw = await startGateway(t, { outbox: { maxRows: 5, highWaterFraction: 0.8 } });
  const dev = await makeDevice(gw.registrar, 'busy', 'EdDSA');
  const client = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
  for (let seq = 1; seq <= 5; seq++) {
    const m = signedTelemetry(dev, seq);
    await publishQos1(client, m.topic, m.payload);
  }
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  let acked = false;
  const sixth = signedTelemetry(dev, 6);
  client.publish(sixth.topic, sixth.payload, { qos: 1 }, (err) => {
    acked = !err;
  });
  await closed;
  t.notOk(acked, 'no PUBACK for a message that could not be stored');
  const store = gw.gateway.store;
  t.equal(store.counters.get('refused.EDGEGW_STORE_OUTBOX_FULL'), 1, 'refusal counted by code');
  await new Promise((r) => setTimeout(r, 1200));
  t.ok(gw.gateway.alerts.recent().some((e) => e.kind === 'outbox_high_water' && e.code === 'EDGEGW_STORE_OUTBOX_FULL'), 'high-water alert raised');

  // The relay drains two records; the device retries the same message and it is accepted.
  store.outbox.ack(store.outbox.read(0, 2, 1 << 20).map((r) => r.id));
  const again = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
  t.teardown(() => void again.end(true));
  await publishQos1(again, sixth.topic, sixth.payload);
  t.equal(store.counters.get('accepted'), 6, 'the retried message is accepted');
  t.equal(store.counters.get('duplicates'), 0, 'and it was not mistaken for a duplicate');
});
