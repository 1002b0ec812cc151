// The gateway's data dir on a real, tiny tmpfs (root needed; CI runs as root): when the disk
// fills, the gateway stops acknowledging, says so (a critical alert, an error log), and
// once space returns the device's retried messages are accepted; nothing acknowledged is lost.
import t from 'tap';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { startGateway } from '../helpers/gateway.js';
import { tinyTmpfs } from '../helpers/tmp.js';
import { makeDevice, connectDevice, signedTelemetry } from '../helpers/devices.js';

const fs = tinyTmpfs(t, '640k', 'edgegw-gwfull-');
const mnt = fs.dir ?? '';

t.test('disk full: no PUBACK, an alert, then recovery with nothing acknowledged lost', { skip: fs.skip }, async (t) => {
  const gw = await startGateway(t, { dataDir: join(mnt, 'data'), limits: { publishRatePerSec: 1e6, publishBurst: 1e6 } });
  const dev = await makeDevice(gw.registrar, 'filler', 'EdDSA');
  const acked = new Set<number>();
  let seq = 0;
  const big = { blob: new Uint8Array(4000).fill(1) };
  let client: MqttClient = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
  // Publish until the gateway closes the connection instead of acknowledging.
  await new Promise<void>((resolve) => {
    client.once('close', () => resolve());
    const pump = (): void => {
      if (!client.connected) return;
      const s = ++seq;
      const m = signedTelemetry(dev, s, { body: big });
      client.publish(m.topic, m.payload, { qos: 1 }, (err) => {
        if (!err) {
          acked.add(s);
          pump();
        }
      });
    };
    pump();
  });
  const store = gw.gateway.store;
  t.ok(acked.size > 5, `messages acknowledged before the disk filled (${acked.size})`);
  t.ok(store.counters.get('refused.EDGEGW_STORE_DISK_FULL') >= 1, 'refused with EDGEGW_STORE_DISK_FULL');
  t.ok(gw.gateway.alerts.recent().some((e) => e.kind === 'store_failed' && e.code === 'EDGEGW_STORE_DISK_FULL' && e.severity === 'critical'), 'a critical alert says so');
  const failedSeq = seq;
  t.notOk(acked.has(failedSeq), 'the refused message was not acknowledged');

  fs.grow('64m');
  client = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
  t.teardown(() => void client.end(true));
  const retry = signedTelemetry(dev, failedSeq, { body: big });
  await new Promise<void>((resolve, reject) => client.publish(retry.topic, retry.payload, { qos: 1 }, (err) => (err ? reject(err) : resolve())));
  acked.add(failedSeq);
  t.ok(gw.gateway.alerts.recent().some((e) => e.kind === 'store_recovered'), 'recovery is said too');

  const stored: number[] = [];
  let after = 0;
  for (;;) {
    const rows = store.outbox.read(after, 1000, 1 << 30);
    if (rows.length === 0) break;
    for (const r of rows) stored.push(r.seq);
    after = rows[rows.length - 1]!.id;
  }
  t.equal(new Set(stored).size, stored.length, 'nothing stored twice');
  t.same([...acked].filter((s) => !stored.includes(s)), [], 'every acknowledged message is stored, the retried one included');
});
