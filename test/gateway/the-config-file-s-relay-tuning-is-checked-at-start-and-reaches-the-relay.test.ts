// `upstream.tuning` in the gateway's config: the relay's options (docs/relay.md), checked with
// the rest of the file (every problem at once), and applied to the relay that `edgegw start`
// runs: a real gateway, a real cloud-sim over mutual TLS, real publishes.
import t from 'tap';
import { isEdgegwError } from '../../common/errors.js';
import { parseConfig } from '../../gateway/config.js';
import { startGateway } from '../helpers/gateway.js';
import { makeDevice, connectDevice, signedTelemetry, publishQos1 } from '../helpers/devices.js';
import { tempDir } from '../helpers/tmp.js';
import { startCloud, waitFor } from '../relay/fixtures/fleet.js';

const upstream = { url: 'https://127.0.0.1:8443', caFile: '/ca.pem', certFile: '/gw.pem', keyFile: '/gw.key' };

t.test('tuning is checked with the rest of the file, every problem listed', async (t) => {
  const ok = parseConfig({ dataDir: '/d', upstream: { ...upstream, tuning: { batchMaxRecords: 200, retry: { maxDelayMs: 60_000 } } } });
  t.same(ok.upstream?.tuning, { batchMaxRecords: 200, retry: { maxDelayMs: 60_000 } });
  let err: unknown;
  try {
    parseConfig({ dataDir: '/d', mqttsPort: 70_000, upstream: { ...upstream, tuning: { batchMaxRecords: 0, retry: { maxDelayMs: 'soon' }, rejectUnauthorized: false, caPem: 'x' } } });
  } catch (e) {
    err = e;
  }
  t.ok(isEdgegwError(err, 'EDGEGW_CONFIG_INVALID'), 'refused as invalid configuration');
  const message = (err as Error).message;
  for (const part of ['mqttsPort', 'upstream.tuning.batchMaxRecords', 'upstream.tuning.retry.maxDelayMs', 'rejectUnauthorized', 'upstream.tuning.caPem: set by upstream itself']) {
    t.match(message, part, `names ${part}`);
  }
  t.throws(() => parseConfig({ dataDir: '/d', upstream: { ...upstream, tuning: 'fast' } }), { code: 'EDGEGW_CONFIG_INVALID' }, 'tuning must be an object');
});

t.test('the relay that the gateway runs uses the tuning', async (t) => {
  const cloud = await startCloud(t, tempDir(t, 'edgegw-cloud-'), []);
  // Full batches of 2 leave at once; a batch that is not full would wait ten minutes.
  const tuning = { batchMaxRecords: 2, batchMaxAgeMs: 600_000, pollIntervalMs: 20 };
  const gw = await startGateway(t, {
    upstream: { url: cloud.ready.url, caFile: cloud.ready.caFile, certFile: cloud.ready.clientCertFile, keyFile: cloud.ready.clientKeyFile, tuning },
  });
  const dev = await makeDevice(gw.registrar, 'tuned');
  const client = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
  t.teardown(() => void client.end(true));
  for (let seq = 1; seq <= 5; seq++) {
    const m = signedTelemetry(dev, seq);
    await publishQos1(client, m.topic, m.payload);
  }
  await waitFor('two full batches at the cloud', () => cloud.sim.stats().recordsReceived >= 4, 15_000);
  await new Promise((r) => setTimeout(r, 1_000));
  const stats = cloud.sim.stats();
  t.equal(stats.batches, 2, 'two batches of two records (the default would send up to 1,000 in one)');
  t.equal(stats.recordsReceived, 4, 'the fifth record waits for its batch to fill or age (the default age is 200 ms)');
  t.equal(gw.gateway.store.counters.get('accepted'), 5);
});
