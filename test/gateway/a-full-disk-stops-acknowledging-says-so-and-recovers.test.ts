// The gateway's data dir on a real, tiny tmpfs (root needed; CI runs as root): when the disk
// fills, the gateway stops acknowledging, says so (a critical alert, an error log), and
// once space returns the device's retried messages are accepted; nothing acknowledged is lost.
import t from 'tap';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { tinyTmpfs } from '../helpers/tmp.js';
import { makeDevice, connectDevice, signedTelemetry, type TestDevice } from '../helpers/devices.js';
import { openDatabase } from '../../gateway/store/index.js';

const fs = tinyTmpfs(t, '640k', 'edgegw-gwfull-');
const mnt = fs.dir ?? '';
const big = { blob: new Uint8Array(4000).fill(1) };

/** Publishes until the gateway closes the connection instead of acknowledging. */
async function fillUntilRefused(gw: RunningGateway, dev: TestDevice): Promise<{ acked: Set<number>; lastSeq: number }> {
  const acked = new Set<number>();
  let seq = 0;
  const client: MqttClient = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
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
  return { acked, lastSeq: seq };
}

t.test('disk full: no PUBACK, an alert, then recovery with nothing acknowledged lost', { skip: fs.skip }, async (t) => {
  const gw = await startGateway(t, { dataDir: join(mnt, 'data'), limits: { publishRatePerSec: 1e6, publishBurst: 1e6 } });
  const dev = await makeDevice(gw.registrar, 'filler', 'EdDSA');
  const { acked, lastSeq: seq } = await fillUntilRefused(gw, dev);
  const store = gw.gateway.store;
  t.ok(acked.size > 5, `messages acknowledged before the disk filled (${acked.size})`);
  t.ok(store.counters.get('refused.EDGEGW_STORE_DISK_FULL') >= 1, 'refused with EDGEGW_STORE_DISK_FULL');
  t.ok(gw.gateway.alerts.recent().some((e) => e.kind === 'store_failed' && e.code === 'EDGEGW_STORE_DISK_FULL' && e.severity === 'critical'), 'a critical alert says so');
  const failedSeq = seq;
  t.notOk(acked.has(failedSeq), 'the refused message was not acknowledged');

  fs.grow('64m');
  const client = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
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

const fs2 = tinyTmpfs(t, '640k', 'edgegw-gwfull-stop-');

t.test('a gateway stopped while its disk is full stops cleanly; nothing acknowledged is lost', { skip: fs2.skip }, async (t) => {
  const dataDir = join(fs2.dir ?? '', 'data');
  const gw = await startGateway(t, { dataDir, limits: { publishRatePerSec: 1e6, publishBurst: 1e6 } });
  const dev = await makeDevice(gw.registrar, 'filler', 'EdDSA');
  const { acked } = await fillUntilRefused(gw, dev);
  t.ok(gw.gateway.store.counters.get('refused.EDGEGW_STORE_DISK_FULL') >= 1, 'the disk is full');
  // SIGINT/SIGTERM take this path: it must resolve, and close the database, with the disk still full.
  await gw.gateway.stop();
  fs2.grow('64m');
  const db = openDatabase(join(dataDir, 'edgegw.db'), { readonly: true });
  t.teardown(() => db.close());
  const seqs = db.prepare<[], { seq: number }>("SELECT seq FROM outbox WHERE device_id = 'filler'").all().map((r) => r.seq);
  t.same([...acked].filter((s) => !seqs.includes(s)), [], `all ${acked.size} acknowledged messages are in the database after the stop`);
});
