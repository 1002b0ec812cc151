// cloud-sim's fault injection, as tests, the demo and the benchmarks use it: a fixed status
// (429 with Retry-After, 500, 400), a failure rate, added latency before processing, a delayed
// answer after storing, and dropped connections; changed in-process or over PUT /v1/faults.
import t from 'tap';
import { encodeBatch } from '../../gateway/relay/index.js';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { createCloudSim, parseFaults } from '../../cloud-sim/index.js';
import { tempDir } from '../helpers/tmp.js';
import { cloudClient, makeFleet, nextMessage, startCloud, type SimDevice } from '../relay/fixtures/fleet.js';

let id = 1;
const CBOR = { 'content-type': 'application/cbor' };

t.test('each fault does what it says', async (t) => {
  const [d] = makeFleet(1, 'f') as [SimDevice];
  const cloud = await startCloud(t, tempDir(t), [d]);
  const client = cloudClient(cloud.ready);
  t.teardown(() => client.close());
  const post = (key: string) => client.request('/v1/ingest', { method: 'POST', headers: { ...CBOR, 'idempotency-key': key }, body: encodeBatch('gw', [{ id: id++, ...nextMessage(d, Date.now()) }]) });

  cloud.sim.setFaults({ status: 429, retryAfterS: 7 });
  const throttled = await post('a');
  t.equal(throttled.status, 429);
  t.equal(throttled.headers['retry-after'], '7');
  t.equal(JSON.parse(throttled.text).code, 'EDGEGW_CLOUDSIM_FAULT');

  for (const status of [500, 400]) {
    cloud.sim.setFaults({ status, retryAfterS: null });
    const r = await post(`s${status}`);
    t.equal(r.status, status, `fixed status ${status}`);
    t.equal(r.headers['retry-after'], undefined);
  }

  cloud.sim.setFaults({ status: null, failureRate: 1, failureStatus: 503 });
  t.equal((await post('r')).status, 503, 'failure rate 1 with status 503');
  cloud.sim.setFaults({ failureRate: 0 });
  t.equal(cloud.sim.stats().stored.records, 0, 'nothing stored while faulting');

  cloud.sim.setFaults({ latencyMs: 300 });
  const t0 = Date.now();
  t.equal((await post('l')).status, 200);
  t.ok(Date.now() - t0 >= 290, 'latency added before processing');

  cloud.sim.setFaults({ latencyMs: 0, answerDelayMs: 300 });
  const late = post('late');
  await new Promise((r) => setTimeout(r, 150));
  t.equal(cloud.sim.stats().stored.records, 2, 'stored before the answer');
  t.equal((await late).status, 200);

  cloud.sim.setFaults({ answerDelayMs: 0, dropRate: 1 });
  await t.rejects(post('drop'), 'the connection is dropped without an answer');
  t.equal(cloud.sim.stats().faults.dropped, 1);
  t.equal(cloud.sim.stats().faults.injectedStatus, 4);

  // Over HTTP, for the demo: PUT merges into the current faults.
  const put = await client.request('/v1/faults', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ dropRate: 0, latencyMs: 5 }) });
  t.equal(put.status, 200);
  t.match(JSON.parse(put.text), { dropRate: 0, latencyMs: 5, status: null });
  t.match(await client.get('/v1/faults'), { latencyMs: 5 });
  const bad = await client.request('/v1/faults', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ dropRate: 2 }) });
  t.equal(bad.status, 400);
  t.equal(JSON.parse(bad.text).code, 'EDGEGW_CLOUDSIM_BAD_REQUEST');
  const notJson = await client.request('/v1/faults', { method: 'PUT', body: 'nope' });
  t.equal(notJson.status, 400);
  t.equal((await post('ok')).status, 200);
});

t.test('fault settings are validated', async (t) => {
  t.throws(() => parseFaults({ failureRate: 1.5 }), { code: 'EDGEGW_CONFIG_INVALID' });
  t.throws(() => parseFaults({ status: 99 }), { code: 'EDGEGW_CONFIG_INVALID' });
  t.throws(() => parseFaults({ surprise: true }), { code: 'EDGEGW_CONFIG_INVALID' });
  t.same(parseFaults({}), { failureRate: 0, failureStatus: 500, status: null, retryAfterS: null, latencyMs: 0, answerDelayMs: 0, dropRate: 0 });
  t.throws(() => createCloudSim({ log: silentLogger(), clock: systemClock }, { dataDir: '/nonexistent', faults: { dropRate: -1 } }), { code: 'EDGEGW_CONFIG_INVALID' });
});
