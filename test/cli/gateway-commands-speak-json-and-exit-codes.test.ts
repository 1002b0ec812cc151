// The gateway's commands as a user runs them: the built CLI in a child process.
import t from 'tap';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair } from '../../protocol/index.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli, spawnReady, waitExit } from '../helpers/cli.js';

t.setTimeout(300_000);

t.test('invalid configuration is refused with every problem listed at once', async (t) => {
  const dir = tempDir(t);
  const cfg = join(dir, 'edgegw.json');
  writeFileSync(cfg, JSON.stringify({ dataDir: dir, mqttsPort: 70000, freshnessS: -1, colour: 'blue', limits: { banMs: 'soon' } }));
  const res = await runCli(['start', '--config', cfg]);
  t.equal(res.code, 1);
  t.match(res.stderr, /EDGEGW_CONFIG_INVALID/);
  for (const key of ['mqttsPort', 'freshnessS', 'colour', 'limits.banMs']) t.match(res.stderr, key, `mentions ${key}`);
  const usage = await runCli(['start', '--mqtts-port', 'abc']);
  t.equal(usage.code, 2, 'bad flag value is a usage error');
  t.match(usage.stderr, /--mqtts-port/);
  // Numbers out of range, from flags and the file together: one list, not one at a time.
  const ranges = await runCli(['start', '--config', cfg, '--mqtt-port', '99999', '--publish-rate', '-1', '--verify-workers', '1.5']);
  t.equal(ranges.code, 1);
  for (const key of ['mqttsPort', 'mqttPort', 'limits.publishRatePerSec', 'verifyWorkers', 'colour']) t.match(ranges.stderr, key, `mentions ${key}`);
});

t.test('start prints its ready line, with port 0 resolved, and the plain listener only when asked', async (t) => {
  const dir = tempDir(t);
  const gw = await spawnReady(['start', '--data-dir', dir, '--host', '127.0.0.1', '--mqtts-port', '0', '--mqtt-port', '0', '--verify-workers', '0']);
  t.teardown(() => void gw.child.kill('SIGKILL'));
  t.equal(gw.ready.msg, 'ready');
  t.ok(Number(gw.ready.mqttsPort) > 0, 'mqtts port picked');
  t.ok(Number(gw.ready.mqttPort) > 0, 'plain port picked');
  t.ok(existsSync(String(gw.ready.caFile)), 'caFile exists');
  t.match(readFileSync(String(gw.ready.caFile), 'utf8'), /BEGIN CERTIFICATE/);
  t.match(String(gw.ready.gatewayPublicKey), /^[0-9a-f]{64}$/);
  t.equal(statSync(join(dir, 'gateway-signing-key.pem')).mode & 0o777, 0o600, 'signing key is 0600');
  t.equal(statSync(join(dir, 'edgegw.db')).mode & 0o777, 0o600, 'database is 0600');
  await new Promise((r) => setTimeout(r, 1500));
  const status = await runCli(['status', '--data-dir', dir]);
  t.equal(status.code, 0);
  const s = JSON.parse(status.stdout) as Record<string, unknown>;
  t.equal(s.running, true, 'status works while the gateway runs');
  t.same(s.outbox, { rows: 0, bytes: 0 });
  gw.child.kill('SIGINT');
  t.equal(await waitExit(gw.child), 0, 'SIGINT exits 0');

  const second = await spawnReady(['start', '--data-dir', dir, '--host', '127.0.0.1', '--mqtts-port', '0', '--verify-workers', '0']);
  t.equal(second.ready.mqttPort, null, 'plain listener off by default');
  t.equal(second.ready.gatewayId, gw.ready.gatewayId, 'the gateway id persists in the data dir');
  second.child.kill('SIGTERM');
  t.equal(await waitExit(second.child), 0);
});

t.test('device add, list, show, export, revoke', async (t) => {
  const dir = tempDir(t);
  const { publicKey } = generateKeyPair('ES256');
  const pubHex = Buffer.from(publicKey).toString('hex');
  const certOut = join(dir, 'pump.pem');
  const add = await runCli(['device', 'add', '--data-dir', dir, '--id', 'pump-7', '--alg', 'ES256', '--pub', pubHex, '--cert-out', certOut]);
  t.equal(add.code, 0, add.stderr);
  const added = JSON.parse(add.stdout) as { deviceId: string; kid: string };
  t.equal(added.deviceId, 'pump-7');
  t.match(added.kid, /^[0-9a-f]{16}$/);
  t.match(readFileSync(certOut, 'utf8'), /BEGIN CERTIFICATE/);

  const dup = await runCli(['device', 'add', '--data-dir', dir, '--id', 'pump-7', '--alg', 'ES256', '--pub', pubHex]);
  t.equal(dup.code, 1);
  t.match(dup.stderr, /EDGEGW_REGISTRY_DEVICE_EXISTS/);
  const badKey = await runCli(['device', 'add', '--data-dir', dir, '--id', 'x', '--alg', 'EdDSA', '--pub', 'abcd']);
  t.equal(badKey.code, 1);
  t.match(badKey.stderr, /EDGEGW_COSE_BAD_KEY/);
  const badId = await runCli(['device', 'add', '--data-dir', dir, '--id', 'no/slash', '--alg', 'ES256', '--pub', pubHex]);
  t.match(badId.stderr, /EDGEGW_DEVICE_ID_INVALID/);
  const badAlg = await runCli(['device', 'add', '--data-dir', dir, '--id', 'y', '--alg', 'RSA', '--pub', pubHex]);
  t.equal(badAlg.code, 2, 'unknown alg is a usage error');

  const list = await runCli(['device', 'list', '--data-dir', dir]);
  t.equal(JSON.parse(list.stdout.trim()).id, 'pump-7');
  const exp = await runCli(['device', 'export', '--data-dir', dir]);
  const exported = JSON.parse(exp.stdout) as { devices: { id: string; keys: { kid: string; alg: string; pub: string }[] }[] };
  t.same(exported.devices[0]!.keys[0], { kid: added.kid, alg: 'ES256', pub: pubHex, status: 'active' });
  const revoke = await runCli(['device', 'revoke', 'pump-7', '--data-dir', dir]);
  t.equal(revoke.code, 0);
  const show = JSON.parse((await runCli(['device', 'show', 'pump-7', '--data-dir', dir])).stdout) as { status: string; certs: { revokedMs: number | null }[] };
  t.equal(show.status, 'revoked');
  t.ok(show.certs[0]!.revokedMs !== null, 'its certificate is revoked too');
  const unknown = await runCli(['device', 'show', 'nobody', '--data-dir', dir]);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /EDGEGW_REGISTRY_UNKNOWN_DEVICE/);
  const noDb = await runCli(['status', '--data-dir', join(dir, 'nothing')]);
  t.equal(noDb.code, 1);
  t.match(noDb.stderr, /EDGEGW_STORE_IO/);
});
