// Issue 4 §2: the MQTT bridge uplink, against a real Mosquitto with `require_certificate
// true`. Batches arrive as QoS 1 publishes with the §8 body and an idempotency-key user
// property; each device's records in order; the outbox is emptied only by PUBACKs, so a broker
// restart in the middle loses nothing; certificate failures halt the relay with an event.
import t, { type Test } from 'tap';
import { connect, type MqttClient } from 'mqtt';
import { setTimeout as delay } from 'node:timers/promises';
import { createRelay } from '../../gateway/relay/index.js';
import { decodeBatch, verifyRecord, parseDeviceExport, buildDeviceExport } from '../../cloud-sim/index.js';
import { createPki } from '../../provisioning/pki/index.js';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../helpers/tmp.js';
import { collectAlerts, fill, makeFleet, openStore, waitFor, type SimDevice } from './fixtures/fleet.js';
import { brokerPki, mosquittoBinary, startMosquitto, type BrokerPki } from './fixtures/mosquitto.js';

const bin = mosquittoBinary();
if (bin === undefined) {
  t.comment('mosquitto is not installed (apt-get install mosquitto; .ci/run does it): skipping the MQTT bridge tests');
  t.pass('skipped: no mosquitto binary');
} else {
  const mosquitto = bin;

  interface Received {
    key: string | undefined;
    records: ReturnType<typeof decodeBatch>;
  }

  /** The cloud side: a persistent-session QoS 1 subscriber with its own certificate. */
  async function consumer(t: Parameters<typeof tempDir>[0], url: string, pki: BrokerPki): Promise<{ client: MqttClient; got: Received[] }> {
    const creds = await pki.client('cloud-consumer');
    const got: Received[] = [];
    const client = connect(url, { ca: pki.caPem, ...{ cert: creds.certPem, key: creds.keyPem }, rejectUnauthorized: true, clientId: 'cloud-consumer', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 200 });
    client.on('message', (_topic, payload, packet) => {
      const key = packet.properties?.userProperties?.['idempotency-key'];
      got.push({ key: Array.isArray(key) ? key[0] : key, records: decodeBatch(new Uint8Array(payload)) });
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    await client.subscribeAsync('edgegw/+/ingest', { qos: 1 });
    t.teardown(() => client.endAsync(true));
    return { client, got };
  }

  const relayFor = async (t: Parameters<typeof tempDir>[0], url: string, pki: BrokerPki, store: ReturnType<typeof openStore>, extra: Record<string, unknown> = {}) => {
    const creds = await pki.client('gw-bridge');
    const { alerts, events } = collectAlerts();
    const relay = createRelay({ store, log: silentLogger(), clock: systemClock, alerts }, {
      url,
      caPem: pki.caPem,
      certPem: creds.certPem,
      keyPem: creds.keyPem,
      gatewayId: 'gw-bridge',
      batchMaxRecords: 50,
      batchMaxAgeMs: 10,
      maxInFlight: 2,
      retry: { initialDelayMs: 50, maxDelayMs: 500 },
      breaker: { threshold: 3, halfOpenAfterMs: 300, maxHalfOpenAfterMs: 1000 },
      timeouts: { connectMs: 2000, requestMs: 3000 },
      mqtt: { reconnectMs: 200 },
      ...extra,
    });
    await relay.start();
    t.teardown(() => relay.stop());
    return { relay, events };
  };

  const check = (t: Test, got: Received[], fleet: SimDevice[]) => {
    const devices = parseDeviceExport(buildDeviceExport(fleet.map((d) => ({ id: d.id, alg: d.alg, pub: d.publicKey, kid: d.signer.kid }))));
    const seen = new Map<string, number[]>();
    let bad = 0;
    for (const b of got) {
      for (const r of b.records) {
        if (!verifyRecord(r, devices).ok) bad++;
        seen.set(r.dev, [...(seen.get(r.dev) ?? []), r.seq]);
      }
    }
    t.equal(bad, 0, 'every record re-verifies end to end');
    for (const d of fleet) {
      // QoS 1 is at least once: a redelivery may repeat a seq, but order never goes back past a gap.
      const unique = [...new Set(seen.get(d.id) ?? [])];
      t.same(unique, Array.from({ length: d.seq }, (_, i) => i + 1), `${d.id}: every seq, in order`);
    }
  };

  t.test('batches arrive over mqtts with QoS 1, the §8 body and an idempotency key', async (t) => {
    const dir = tempDir(t);
    const pki = await brokerPki(dir);
    const broker = await startMosquitto(t, mosquitto, dir, pki.files);
    const { got } = await consumer(t, broker.url, pki);
    const fleet = makeFleet(5, 'mq');
    const store = openStore(t, tempDir(t));
    const total = await fill(store, fleet, 60);
    const { relay } = await relayFor(t, broker.url, pki, store);
    await waitFor('outbox drained', () => store.counters.get('outbox_rows') === 0, 30_000);
    await waitFor('all received', () => got.reduce((n, b) => n + b.records.length, 0) >= total, 10_000);
    t.equal(relay.stats().acceptedRecords, total);
    t.ok(got.every((b) => typeof b.key === 'string' && b.key.length > 0), 'every publish carries its batch id');
    t.ok(got.every((b) => b.records.length <= 50), 'batches bounded by batchMaxRecords');
    t.ok(got.every((b) => b.records.every((r) => r.gw === 'gw-bridge')));
    check(t, got, fleet);
  });

  t.test('a broker restart in the middle loses nothing: only PUBACKs empty the outbox', async (t) => {
    const dir = tempDir(t);
    const pki = await brokerPki(dir);
    const broker = await startMosquitto(t, mosquitto, dir, pki.files);
    const { got } = await consumer(t, broker.url, pki);
    const fleet = makeFleet(4, 'rs');
    const store = openStore(t, tempDir(t));
    await fill(store, fleet, 100);
    const { relay } = await relayFor(t, broker.url, pki, store, { batchMaxRecords: 20, maxInFlight: 1 });
    await waitFor('some delivered', () => relay.stats().acceptedRecords >= 40, 30_000, 2);
    await broker.stop();
    const duringOutage = store.counters.get('outbox_rows');
    t.ok(duringOutage > 0, `${duringOutage} records waiting while the broker is down`);
    await fill(store, fleet, 20);
    await delay(1500);
    t.ok(store.counters.get('outbox_rows') >= duringOutage, 'nothing leaves the outbox without a PUBACK');
    await broker.restart();
    await waitFor('outbox drained after the restart', () => store.counters.get('outbox_rows') === 0, 60_000);
    const total = fleet.reduce((n, d) => n + d.seq, 0);
    await waitFor('the consumer got everything', () => new Set(got.flatMap((b) => b.records.map((r) => `${r.dev}/${r.seq}`))).size >= total, 20_000);
    check(t, got, fleet);
  });

  t.test('a broker certificate from another CA halts the bridge with EDGEGW_RELAY_TLS', async (t) => {
    const dir = tempDir(t);
    const pki = await brokerPki(dir);
    const broker = await startMosquitto(t, mosquitto, dir, pki.files);
    const other = createPki({ log: silentLogger(), clock: systemClock }, { dir: `${tempDir(t)}/pki` });
    await other.ensure();
    const store = openStore(t, tempDir(t));
    await fill(store, makeFleet(1, 'x'), 5);
    const { relay, events } = await relayFor(t, broker.url, pki, store, { caPem: `${other.rootCaPem}\n${other.issuingCaPem}` });
    await waitFor('halted', () => relay.stats().state === 'halted', 15_000);
    t.equal(events.find((e) => e.kind === 'relay_halted')?.code, 'EDGEGW_RELAY_TLS');
    t.equal(store.counters.get('outbox_rows'), 5);
  });

  t.test('a gateway certificate the broker does not trust halts the bridge with EDGEGW_RELAY_CLIENT_CERT_REFUSED', async (t) => {
    const dir = tempDir(t);
    const pki = await brokerPki(dir);
    const broker = await startMosquitto(t, mosquitto, dir, pki.files);
    const other = createPki({ log: silentLogger(), clock: systemClock }, { dir: `${tempDir(t)}/pki` });
    await other.ensure();
    const stranger = await other.issueClientCert({ cn: 'gw-bridge' });
    const store = openStore(t, tempDir(t));
    await fill(store, makeFleet(1, 'y'), 5);
    const { relay, events } = await relayFor(t, broker.url, pki, store, { certPem: stranger.chainPem, keyPem: stranger.keyPem });
    await waitFor('halted', () => relay.stats().state === 'halted', 15_000);
    t.equal(events.find((e) => e.kind === 'relay_halted')?.code, 'EDGEGW_RELAY_CLIENT_CERT_REFUSED');
    t.equal(store.counters.get('outbox_rows'), 5);
  });
}
