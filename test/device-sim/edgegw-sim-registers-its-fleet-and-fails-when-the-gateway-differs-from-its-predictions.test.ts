// `edgegw sim` as a user runs it (the built CLI, dist/cli/main.js, which `npm test` builds
// first) against a real gateway in this process.
import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cliPath, lastJson, runCli } from './_cli.js';
import { startGateway } from '../helpers/gateway.js';
import type { FleetReport } from '../../device-sim/index.js';

t.test('edgegw sim', { timeout: 120_000 }, async (t) => {
  if (!existsSync(cliPath)) {
    t.fail(`${cliPath} is missing: build first (npm test runs tsc before tap)`);
    return;
  }
  const gw = await startGateway(t, { mqttPort: 0 });
  const base = ['sim', '--data-dir', gw.dataDir, '--mqtts-port', String(gw.ready.mqttsPort), '--mqtt-port', String(gw.ready.mqttPort), '--json'];

  t.test('registers its devices, runs the profiles and exits 0 with a verified report', async (t) => {
    const first = await runCli([...base, '--devices', '6', '--duration', '3s', '--profile', 'replay,tampered,malformed', '--profile', 'token:2']);
    t.equal(first.code, 0, first.stderr.slice(-500));
    const report = lastJson<FleetReport>(first.stdout);
    t.ok(report.ok);
    t.same(report.run.profiles, { honest: 6, replay: 1, tampered: 1, malformed: 1, token: 2 });
    t.ok((report.gateway.rejected.EDGEGW_VERIFY_REPLAY ?? 0) >= 1, 'the replay was rejected');
    const flashes = readdirSync(join(gw.dataDir, 'sim-fleet')).filter((f) => f.endsWith('.flash'));
    t.equal(flashes.length, 11, 'one flash file per device');
    t.equal(gw.registrar.store.registry.getDevice('sim-honest-0')?.status, 'active', 'registered in the gateway');

    const second = await runCli([...base, '--devices', '6', '--duration', '2s']);
    t.equal(second.code, 0, 'a second run reuses the registered devices and their flash');
    t.ok(lastJson<FleetReport>(second.stdout).ok);
  });

  t.test('exits 1 with EDGEGW_SIM_EXPECTATION_FAILED when the gateway does not do what was predicted', async (t) => {
    // Told the gateway refuses payloads over 4 KiB while it accepts 16 KiB, the oversized
    // device predicts rejections that do not come, and its messages reach the outbox.
    const res = await runCli([...base, '--devices', '2', '--duration', '3s', '--profile', 'oversized', '--max-payload-bytes', '4096', '--id-prefix', 'wrong']);
    t.equal(res.code, 1);
    t.match(res.stderr, /EDGEGW_SIM_EXPECTATION_FAILED/);
    const report = lastJson<FleetReport>(res.stdout);
    t.notOk(report.ok);
    t.ok(
      report.expectations.some((e) => !e.pass && e.name === 'rejected.EDGEGW_VERIFY_TOO_LARGE'),
      'the missing rejections are named',
    );
  });

  t.test('bad usage exits 2', async (t) => {
    const res = await runCli([...base, '--profile', 'no-such-profile']);
    t.equal(res.code, 2);
    t.match(res.stderr, /unknown profile no-such-profile/);
  });
});
