// `edgegw cloud-sim` as an operator runs it (the built CLI in a child process): one JSON ready
// line with the port, URL and the files the gateway needs; the key file private; the files
// work for an mTLS request; SIGTERM stops it with exit 0; a second start reuses its CA; bad
// flags exit 2.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { tempDir } from '../helpers/tmp.js';
import { cloudClient, EDGEGW_MAIN, spawnReady } from '../relay/fixtures/fleet.js';
import type { CloudSimReady } from '../../cloud-sim/index.js';

t.test('ready line, gateway files, mTLS, clean stop, CA reused', async (t) => {
  const dir = tempDir(t);
  const run = () => spawnReady(t, [EDGEGW_MAIN, 'cloud-sim', '--data-dir', dir, '--port', '0', '--log-level', 'warn', '--latency-ms', '1']);
  const first = await run();
  const ready = first.ready as unknown as CloudSimReady;
  t.equal(ready.msg, 'ready');
  t.match(ready.url, new RegExp(`^https://127\\.0\\.0\\.1:${ready.port}$`));
  t.ok(ready.port > 0);
  t.equal(statSync(ready.clientKeyFile).mode & 0o777, 0o600, 'the gateway key file is 0600');
  t.match(readFileSync(ready.clientCertFile, 'utf8'), /BEGIN CERTIFICATE/);
  const client = cloudClient(ready);
  const stats = await client.get<{ requests: number }>('/v1/stats');
  t.equal(stats.requests, 1, 'the written files authenticate to it');
  t.match(await client.get('/v1/faults'), { latencyMs: 1 }, 'fault flags applied');
  await client.close();
  const ca = readFileSync(ready.caFile, 'utf8');
  await first.stop();
  t.equal(first.proc.exitCode, 0, 'SIGTERM: exit 0');

  const second = await run();
  t.equal(readFileSync((second.ready as unknown as CloudSimReady).caFile, 'utf8'), ca, 'the CA is created once and reused');
  await second.stop();
});

t.test('bad usage exits 2', async (t) => {
  for (const args of [['--data-dir', tempDir(t), '--drop-rate', '2'], ['--port', '1'], ['--data-dir', tempDir(t), '--port', 'x']]) {
    const r = spawnSync(process.execPath, [EDGEGW_MAIN, 'cloud-sim', ...args], { encoding: 'utf8', timeout: 30_000 });
    t.equal(r.status, 2, args.join(' '));
  }
});
