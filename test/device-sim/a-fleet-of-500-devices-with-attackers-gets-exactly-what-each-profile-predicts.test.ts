// The acceptance test: `edgegw demo` with at least 500 devices and every hostile
// profile (at least 5) for at least 20 s, against a real gateway and a real cloud that it
// starts as child processes. It runs the built CLI, dist/cli/main.js (`npm test` builds it
// first), so that what is tested is what a user runs. The report must hold: every attack
// rejected with its reason, every honest message in the cloud.
import t from 'tap';
import { existsSync } from 'node:fs';
import { cliPath, lastJson, runCli } from './_cli.js';
import { HOSTILE_PROFILES, type FleetReport } from '../../device-sim/index.js';

t.test('edgegw demo: 500 honest devices and every hostile profile for 20 s, and the report holds', { timeout: 240_000 }, async (t) => {
  if (!existsSync(cliPath)) {
    t.fail(`${cliPath} is missing: build first (npm test runs tsc before tap)`);
    return;
  }
  const { code, stdout, stderr } = await runCli(['demo', '--duration', '20s', '--devices', '500', '--rate', '0.5', '--json']);
  const report = lastJson<FleetReport>(stdout);
  const failed = report.expectations.filter((e) => !e.pass);
  t.same(failed, [], 'every expectation held');
  t.equal(code, 0, code === 0 ? 'exit code 0' : `exit code ${code}: ${stderr.slice(-800)}`);
  t.ok(report.ok);
  t.ok(report.run.devices >= 500, `${report.run.devices} devices`);
  t.ok(report.run.durationMs >= 20_000, 'ran for 20 s after the last device booted');
  const attacking = report.profiles.filter((p) => HOSTILE_PROFILES.includes(p.profile) && (p.attacks > 0 || p.checks.length > 0));
  t.ok(attacking.length >= 5, `${attacking.length} hostile profiles attacked: ${attacking.map((p) => p.profile).join(', ')}`);
  // The reasons the issue names, each counted by the gateway under its code.
  for (const name of [
    'rejected.EDGEGW_VERIFY_REPLAY',
    'rejected.EDGEGW_COSE_BAD_SIGNATURE',
    'rejected.EDGEGW_VERIFY_STALE',
    'rejected.EDGEGW_VERIFY_TOO_LARGE',
    'rejected.EDGEGW_CBOR_MALFORMED',
    'rejected.EDGEGW_VERIFY_KID_NOT_BOUND',
    'refused.EDGEGW_BROKER_ACL_PUBLISH',
    'refused.EDGEGW_BROKER_CLIENT_ID_MISMATCH',
    'refused.EDGEGW_BROKER_RATE_LIMITED',
  ]) {
    const e = report.expectations.find((x) => x.name === name);
    t.ok(e !== undefined && e.pass && Number(e.actual) > 0, `${name}: ${e?.actual ?? 'none'} counted, as predicted (${e?.expected ?? '-'})`);
  }
  t.equal(report.cloud?.missing, 0, 'every acknowledged honest message is in the cloud');
  t.equal(report.cloud?.leaked, 0, 'no attack message is in the cloud');
  t.equal(report.cloud?.recordsDelta, report.gateway.accepted, 'everything accepted was relayed');
  const honest = report.profiles.find((p) => p.profile === 'honest')!;
  t.ok(honest.acked >= 500 * 0.5 * 15, `honest devices delivered ${honest.acked} messages`);
  t.equal(honest.dropped, 0);
  t.notMatch(stderr, /data and logs kept/, 'the temporary directory was removed');
});
