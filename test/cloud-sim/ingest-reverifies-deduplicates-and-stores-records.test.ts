// cloud-sim's POST /v1/ingest (PROTOCOL.md §8) driven directly over mutual TLS: every record
// is re-verified against the device export (each failure kept with its reason), records are
// deduplicated by (dev, kid, seq) and batches by Idempotency-Key, malformed requests are
// refused with a code, and the inspection routes page through what was stored.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { encode, Tagged, decode } from '../../protocol/cbor.js';
import { encodeBatch } from '../../gateway/relay/index.js';
import { createCloudSim, type StoredRecord, type RejectedRecord } from '../../cloud-sim/index.js';
import { signSign1, encodeTelemetryPayload } from '../../protocol/index.js';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../helpers/tmp.js';
import { cloudClient, makeFleet, nextMessage, startCloud, type SimDevice } from '../relay/fixtures/fleet.js';
import type { OutboxRecord } from '../../gateway/store/index.js';

let nextId = 1;
const rec = (d: SimDevice, overrides: Partial<OutboxRecord> = {}): OutboxRecord => ({ id: nextId++, ...nextMessage(d, Date.now()), ...overrides });
const CBOR = { 'content-type': 'application/cbor' };

t.test('verified records are stored once; failures are kept with their reason', async (t) => {
  const fleet = [...makeFleet(2, 'ok'), ...makeFleet(1, 'p', 'ES256')];
  const [a, b, p] = fleet as [SimDevice, SimDevice, SimDevice];
  const stranger = makeFleet(1, 'stranger')[0]!;
  const cloud = await startCloud(t, tempDir(t), fleet);
  const client = cloudClient(cloud.ready);
  t.teardown(() => client.close());
  const post = (body: Uint8Array, key: string) => client.request('/v1/ingest', { method: 'POST', headers: { ...CBOR, 'idempotency-key': key }, body });

  const good = [rec(a), rec(b), rec(p), rec(a), rec(b), rec(p)];
  const body = encodeBatch('gw-1', good);
  const first = await post(body, 'k-1');
  t.equal(first.status, 200);
  t.same(JSON.parse(first.text), { accepted: 6, duplicates: 0, rejected: 0 });

  const again = await post(body, 'k-1');
  t.equal(again.status, 200, 'a re-sent batch gets the first answer');
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.same(JSON.parse(again.text), { accepted: 6, duplicates: 0, rejected: 0 });

  const conflict = await post(encodeBatch('gw-1', good.slice(0, 3)), 'k-1');
  t.equal(conflict.status, 422);
  t.equal(JSON.parse(conflict.text).code, 'EDGEGW_CLOUDSIM_IDEMPOTENCY_CONFLICT');

  const rekeyed = await post(body, 'k-2');
  t.same(JSON.parse(rekeyed.text), { accepted: 0, duplicates: 6, rejected: 0 }, 'the same records under a new key are duplicates by (dev, kid, seq)');

  // One batch, one kind of failure per record.
  const sigFlip = rec(a);
  const flipped = new Uint8Array(sigFlip.cose);
  flipped[flipped.length - 1]! ^= 1;
  const other = rec(b);
  const moved = rec(a);
  const seqLie = rec(b);
  const untaggedSrc = rec(p);
  const untagged = encode((decode(untaggedSrc.cose) as Tagged).value);
  const foreignTopic = rec(a);
  const bad = [
    { ...sigFlip, cose: flipped },
    rec(stranger),
    { ...other, deviceId: a.id, topic: other.topic.replace(b.id, a.id) },
    { ...moved, topic: moved.topic.replace('/temp', '/other') },
    { ...seqLie, seq: seqLie.seq + 1000 },
    { ...untaggedSrc, cose: untagged },
    { ...foreignTopic, topic: foreignTopic.topic.replace(a.id, b.id) },
  ];
  const mixed = await post(encodeBatch('gw-1', [rec(a), ...bad]), 'k-3');
  t.equal(mixed.status, 200, 'a batch with bad records is still accepted: they are findings, not transport errors');
  t.same(JSON.parse(mixed.text), { accepted: 1, duplicates: 0, rejected: bad.length });
  const { rejected } = await client.get<{ rejected: RejectedRecord[] }>('/v1/rejected?since=0');
  t.same(rejected.map((r) => r.reason), [
    'EDGEGW_COSE_BAD_SIGNATURE',
    'EDGEGW_VERIFY_UNKNOWN_KID',
    'EDGEGW_VERIFY_KID_NOT_BOUND',
    'EDGEGW_COSE_BAD_SIGNATURE',
    'EDGEGW_CLOUDSIM_BAD_REQUEST',
    'EDGEGW_COSE_NOT_TAGGED',
    'EDGEGW_VERIFY_IDENTITY_MISMATCH',
  ]);

  const stats = await client.get<{ stored: { records: number; rejected: number }; duplicateBatches: number; duplicateRecords: number; idempotencyConflicts: number }>('/v1/stats');
  t.same(stats.stored, { records: 7, rejected: 7 });
  t.equal(stats.duplicateBatches, 1);
  t.equal(stats.duplicateRecords, 6);
  t.equal(stats.idempotencyConflicts, 1);

  // Inspection: paging by storage id, and by device.
  const page1 = await client.get<{ records: StoredRecord[]; next: number }>('/v1/records?since=0&limit=4');
  t.equal(page1.records.length, 4);
  const page2 = await client.get<{ records: StoredRecord[]; next: number }>(`/v1/records?since=${page1.next}&limit=4`);
  t.equal(page2.records.length, 3);
  const ofA = await client.get<{ records: StoredRecord[] }>(`/v1/records?dev=${a.id}`);
  t.same(ofA.records.map((r) => r.seq), [1, 2, 6], 'device a: seq 1, 2 and the good one of the mixed batch (3-5 were the bad ones)');
  t.equal(ofA.records[0]!.kid, Buffer.from(a.signer.kid).toString('hex'));
  t.equal(ofA.records[0]!.gw, 'gw-1');
  const notFound = await client.request('/v1/nothing', { method: 'GET' });
  t.equal(notFound.status, 404);
  const badSince = await client.request('/v1/records?since=-1', { method: 'GET' });
  t.equal(badSince.status, 400);
});

t.test('malformed requests are refused with a code', async (t) => {
  const fleet = makeFleet(1, 'm');
  const cloud = await startCloud(t, tempDir(t), fleet);
  const client = cloudClient(cloud.ready);
  t.teardown(() => client.close());
  const codeOf = (r: { text: string }) => JSON.parse(r.text).code as string;

  const notCbor = await client.request('/v1/ingest', { method: 'POST', headers: { ...CBOR, 'idempotency-key': 'a' }, body: new Uint8Array([0xff, 0x00]) });
  t.equal(notCbor.status, 400);
  t.equal(codeOf(notCbor), 'EDGEGW_CLOUDSIM_BAD_REQUEST');
  const notArray = await client.request('/v1/ingest', { method: 'POST', headers: { ...CBOR, 'idempotency-key': 'b' }, body: encode({ gw: 'x' }) });
  t.equal(notArray.status, 400);
  const missingKey = encode([{ gw: 'g', dev: 'm-0', kid: new Uint8Array(8), seq: 1, ts: 0, rx: 0, topic: 'd/m-0/t/x' }]);
  t.equal((await client.request('/v1/ingest', { method: 'POST', headers: { ...CBOR, 'idempotency-key': 'c' }, body: missingKey })).status, 400);
  const json = await client.request('/v1/ingest', { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'd' }, body: '[]' });
  t.equal(json.status, 415);
  const noKey = await client.request('/v1/ingest', { method: 'POST', headers: CBOR, body: encodeBatch('g', [rec(fleet[0]!)]) });
  t.equal(noKey.status, 400);
  t.match(JSON.parse(noKey.text).message, /Idempotency-Key/);
  t.equal(cloud.sim.stats().stored.records, 0);

  // A small body bound, on a second instance over the same data dir.
  await cloud.sim.stop();
  const small = createCloudSim({ log: silentLogger(), clock: systemClock }, { dataDir: cloud.dir, devicesFile: cloud.devicesFile, maxBodyBytes: 1024 });
  const ready = await small.start();
  t.teardown(() => small.stop());
  const c2 = cloudClient(ready);
  t.teardown(() => c2.close());
  const big = await c2.request('/v1/ingest', { method: 'POST', headers: { ...CBOR, 'idempotency-key': 'e' }, body: new Uint8Array(4096) });
  t.equal(big.status, 413);
  t.equal(codeOf(big), 'EDGEGW_CLOUDSIM_TOO_LARGE');
});

t.test('a client without a certificate from the cloud CA gets no TLS session', async (t) => {
  const fleet = makeFleet(1, 'n');
  const cloud = await startCloud(t, tempDir(t), fleet);
  const outcome = await new Promise<string>((resolve) => {
    const s = connect({ host: '127.0.0.1', port: cloud.ready.port, ca: readFileSync(cloud.ready.caFile, 'utf8'), servername: 'localhost' }, () => {
      s.write('GET /v1/stats HTTP/1.1\r\nhost: x\r\n\r\n');
    });
    let data = '';
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => resolve(data));
  });
  t.equal(outcome, '', 'closed without an answer');
  t.ok(cloud.sim.stats().tlsRefused >= 1);
  t.equal(cloud.sim.stats().requests, 0);
});

t.test('records signed for the device export written by hand re-verify across key changes', async (t) => {
  // A device with two keys (one retired): records signed with either verify, and a record whose
  // kid field names one key while the other signed it is refused.
  const [k1, k2] = makeFleet(2, 'dual') as [SimDevice, SimDevice];
  const dir = tempDir(t);
  const devicesFile = join(dir, 'devices.json');
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  writeFileSync(devicesFile, JSON.stringify({
    version: 1,
    devices: [{ id: 'dual', status: 'active', keys: [
      { kid: hex(k1.signer.kid), alg: 'EdDSA', pub: hex(k1.publicKey), status: 'retired' },
      { kid: hex(k2.signer.kid).toUpperCase(), alg: 'EdDSA', pub: hex(k2.publicKey), status: 'active' },
    ] }],
  }));
  const sim = createCloudSim({ log: silentLogger(), clock: systemClock }, { dataDir: dir, devicesFile });
  const ready = await sim.start();
  t.teardown(() => sim.stop());
  const client = cloudClient(ready);
  t.teardown(() => client.close());
  const topic = 'd/dual/t/temp';
  const signed = (d: SimDevice, seq: number) => signSign1(d.signer, encodeTelemetryPayload({ seq, ts: 0, body: seq }), new TextEncoder().encode(topic));
  const r = (d: SimDevice, seq: number, kid = d.signer.kid): OutboxRecord => ({ id: nextId++, deviceId: 'dual', kid, seq, ts: 0, rxMs: 1, topic, cose: signed(d, seq) });
  const res = await client.request('/v1/ingest', { method: 'POST', headers: { ...CBOR, 'idempotency-key': 'dual-1' }, body: encodeBatch('gw', [r(k1, 1), r(k2, 2), r(k2, 3, k1.signer.kid)]) });
  t.same(JSON.parse(res.text), { accepted: 2, duplicates: 0, rejected: 1 });
  const { rejected } = await client.get<{ rejected: RejectedRecord[] }>('/v1/rejected');
  t.equal(rejected[0]!.reason, 'EDGEGW_COSE_KID_MISMATCH');
});
