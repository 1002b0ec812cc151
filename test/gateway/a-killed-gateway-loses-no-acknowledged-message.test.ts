// SIGKILL of a real gateway process mid-stream, then a restart: every message it had
// acknowledged is in the store exactly once, and the devices reconnect and continue.
import t from 'tap';
import { openRegistrar, createStore, dataPaths } from '../../gateway/index.js';
import { silentLogger } from '../../common/log.js';
import { systemClock } from '../../common/clock.js';
import { tempDir } from '../helpers/tmp.js';
import { makeDevice, connectDevice, signedTelemetry, type TestDevice } from '../helpers/devices.js';
import { spawnReady, runCli, waitExit } from '../helpers/cli.js';
import type { MqttClient } from 'mqtt';

t.test('SIGKILL mid-stream: every PUBACKed message is present exactly once after restart', async (t) => {
  const dataDir = tempDir(t, 'edgegw-kill-');
  const registrar = await openRegistrar({ log: silentLogger(), clock: systemClock }, dataDir);
  const devices: TestDevice[] = [];
  for (let i = 0; i < 5; i++) devices.push(await makeDevice(registrar, `k-${i}`, i % 2 ? 'ES256' : 'EdDSA'));
  registrar.close();

  const args = ['start', '--data-dir', dataDir, '--host', '127.0.0.1', '--mqtts-port', '0', '--verify-workers', '1', '--publish-rate', '100000', '--log-level', 'error'];
  const first = await spawnReady(args);
  t.teardown(() => void first.child.kill('SIGKILL'));
  const acked = new Map<string, Set<number>>(devices.map((d) => [d.id, new Set<number>()]));
  const nextSeq = new Map<string, number>(devices.map((d) => [d.id, 1]));

  async function stream(port: number, caFile: string, untilMs: number): Promise<void> {
    await Promise.all(devices.map(async (d) => {
      let client: MqttClient;
      try {
        client = await connectDevice(d, port, caFile);
      } catch {
        return;
      }
      const inflight = new Set<Promise<void>>();
      // mqtt.js keeps QoS 1 callbacks pending across a lost connection: stop waiting on close.
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      while (Date.now() < untilMs && client.connected) {
        const seq = nextSeq.get(d.id)!;
        nextSeq.set(d.id, seq + 1);
        const m = signedTelemetry(d, seq);
        const p = new Promise<void>((resolve) => client.publish(m.topic, m.payload, { qos: 1 }, (err) => {
          if (!err) acked.get(d.id)!.add(seq);
          resolve();
        }));
        inflight.add(p);
        void p.then(() => inflight.delete(p));
        if (inflight.size >= 20) await Promise.race([...inflight, closed]);
      }
      client.end(true);
    }));
  }

  const countAcked = (): number => [...acked.values()].reduce((n, s) => n + s.size, 0);
  const streaming = stream(first.ready.mqttsPort as number, first.ready.caFile as string, Date.now() + 60_000);
  // Kill mid-stream: once a good number of messages were acknowledged, with more in flight.
  const deadline = Date.now() + 30_000;
  while (countAcked() < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  first.child.kill('SIGKILL');
  await waitExit(first.child);
  await streaming;
  const ackedBefore = countAcked();
  t.ok(ackedBefore >= 300, `messages were acknowledged before the kill (${ackedBefore})`);

  const second = await spawnReady(args);
  await stream(second.ready.mqttsPort as number, second.ready.caFile as string, Date.now() + 1500);
  second.child.kill('SIGTERM');
  t.equal(await waitExit(second.child), 0, 'SIGTERM stops the gateway cleanly');

  const status = await runCli(['status', '--data-dir', dataDir]);
  t.equal(status.code, 0);
  const s = JSON.parse(status.stdout) as { accepted: number; outbox: { rows: number } };

  const store = createStore({ log: silentLogger(), clock: systemClock }, { path: dataPaths(dataDir).db, maxOutboxRows: 1e9, maxOutboxBytes: 1e12, maxBatchRows: 100 });
  t.teardown(() => store.close());
  const stored = new Map<string, number[]>();
  let after = 0;
  for (;;) {
    const rows = store.outbox.read(after, 5000, 1 << 30);
    if (rows.length === 0) break;
    for (const r of rows) stored.set(r.deviceId, [...(stored.get(r.deviceId) ?? []), r.seq]);
    after = rows[rows.length - 1]!.id;
  }
  let total = 0;
  for (const d of devices) {
    const seqs = stored.get(d.id) ?? [];
    total += seqs.length;
    t.equal(new Set(seqs).size, seqs.length, `${d.id}: nothing stored twice`);
    const missing = [...acked.get(d.id)!].filter((x) => !seqs.includes(x));
    t.same(missing, [], `${d.id}: every acknowledged message present`);
  }
  const ackedAfter = [...acked.values()].reduce((n, s) => n + s.size, 0);
  t.ok(ackedAfter > ackedBefore, 'devices reconnected and continued after the restart');
  t.equal(s.outbox.rows, total, 'status reports the outbox rows');
  t.equal(s.accepted, total, 'status reports the accepted count');
});
