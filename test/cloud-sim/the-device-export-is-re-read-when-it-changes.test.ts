// cloud-sim verifies against the device export `edgegw device export` writes, and re-reads it
// when the file changes: a device added later verifies once the new export lands, a broken
// new export is refused while the last good one stays in force, and an invalid export at
// start-up is an error. The first test uses the real CLI (`device add`, `device export`) so
// the two ends agree on the format.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { encodeBatch } from '../../gateway/relay/index.js';
import { createCloudSim, parseDeviceExport, buildDeviceExport } from '../../cloud-sim/index.js';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { isEdgegwError } from '../../common/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { cloudClient, EDGEGW_MAIN, makeFleet, nextMessage, writeExport, type SimDevice } from '../relay/fixtures/fleet.js';

let id = 1;
const batch = (...ds: SimDevice[]) => encodeBatch('gw', ds.map((d) => ({ id: id++, ...nextMessage(d, Date.now()) })));

t.test('an export from `edgegw device export` is what cloud-sim verifies against', async (t) => {
  t.ok(existsSync(EDGEGW_MAIN), 'the CLI is built (npx tsc -p tsconfig.json)');
  const gwDir = tempDir(t);
  const [d] = makeFleet(1, 'cli') as [SimDevice];
  const edgegw = (...args: string[]) => spawnSync(process.execPath, [EDGEGW_MAIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  const added = edgegw('device', 'add', '--data-dir', gwDir, '--id', d.id, '--alg', 'EdDSA', '--pub', Buffer.from(d.publicKey).toString('hex'));
  t.equal(added.status, 0, added.stderr);
  const devicesFile = join(gwDir, 'devices.json');
  const exported = edgegw('device', 'export', '--data-dir', gwDir, '--out', devicesFile);
  t.equal(exported.status, 0, exported.stderr);

  const sim = createCloudSim({ log: silentLogger(), clock: systemClock }, { dataDir: tempDir(t), devicesFile });
  const ready = await sim.start();
  t.teardown(() => sim.stop());
  const client = cloudClient(ready);
  t.teardown(() => client.close());
  const res = await client.request('/v1/ingest', { method: 'POST', headers: { 'content-type': 'application/cbor', 'idempotency-key': 'x1' }, body: batch(d, d) });
  t.same(JSON.parse(res.text), { accepted: 2, duplicates: 0, rejected: 0 });
});

t.test('a device added to the export later verifies once the new export is written', async (t) => {
  const [a, b] = makeFleet(2, 'later') as [SimDevice, SimDevice];
  const dir = tempDir(t);
  const devicesFile = join(dir, 'devices.json');
  writeExport(devicesFile, [a]);
  const sim = createCloudSim({ log: silentLogger(), clock: systemClock }, { dataDir: dir, devicesFile });
  const ready = await sim.start();
  t.teardown(() => sim.stop());
  const client = cloudClient(ready);
  t.teardown(() => client.close());
  const post = async (key: string, ...ds: SimDevice[]) =>
    JSON.parse((await client.request('/v1/ingest', { method: 'POST', headers: { 'content-type': 'application/cbor', 'idempotency-key': key }, body: batch(...ds) })).text);

  t.same(await post('1', a, b), { accepted: 1, duplicates: 0, rejected: 1 }, 'b is unknown at first');
  t.equal(sim.stats().devices, 1);

  writeExport(devicesFile, [a, b]);
  await delay(400);
  t.same(await post('2', a, b), { accepted: 2, duplicates: 0, rejected: 0 }, 'b verifies after the export changed');
  t.equal(sim.stats().devices, 2);
  t.equal(sim.stats().deviceExportReloads, 2);

  writeFileSync(devicesFile, '{"version": 1, "devices": [{"id": "broken"');
  await delay(400);
  t.same(await post('3', a, b), { accepted: 2, duplicates: 0, rejected: 0 }, 'a broken export is refused; the last good one stays');
  t.equal(sim.stats().deviceExportReloads, 2);
});

t.test('invalid exports are refused with EDGEGW_CLOUDSIM_DEVICES_INVALID', async (t) => {
  const [a, b] = makeFleet(2, 'inv') as [SimDevice, SimDevice];
  const good = JSON.parse(buildDeviceExport([{ id: a.id, alg: 'EdDSA', pub: a.publicKey, kid: a.signer.kid }]));
  const variants: [string, string][] = [
    ['not JSON', '{'],
    ['another version', JSON.stringify({ ...good, version: 2 })],
    ['an unknown field', JSON.stringify({ ...good, extra: 1 })],
    ['a bad device id', JSON.stringify({ version: 1, devices: [{ ...good.devices[0], id: 'a/b' }] })],
    ['a kid that is not the key\'s', JSON.stringify({ version: 1, devices: [{ ...good.devices[0], keys: [{ ...good.devices[0].keys[0], kid: Buffer.from(b.signer.kid).toString('hex') }] }] })],
    ['a key that is not a point', JSON.stringify({ version: 1, devices: [{ ...good.devices[0], keys: [{ ...good.devices[0].keys[0], alg: 'ES256' }] }] })],
  ];
  for (const [what, text] of variants) {
    t.throws(() => parseDeviceExport(text), { code: 'EDGEGW_CLOUDSIM_DEVICES_INVALID' }, what);
  }
  t.equal(parseDeviceExport(JSON.stringify(good)).byKid.size, 1);

  const dir = tempDir(t);
  writeFileSync(join(dir, 'devices.json'), '[]');
  const sim = createCloudSim({ log: silentLogger(), clock: systemClock }, { dataDir: dir, devicesFile: join(dir, 'devices.json') });
  await t.rejects(sim.start(), { code: 'EDGEGW_CLOUDSIM_DEVICES_INVALID' }, 'an invalid export at start-up is an error');
  t.ok(isEdgegwError(parseDeviceExportSafe('{}'), 'EDGEGW_CLOUDSIM_DEVICES_INVALID'));
});

function parseDeviceExportSafe(text: string): unknown {
  try {
    return parseDeviceExport(text);
  } catch (err) {
    return err;
  }
}
