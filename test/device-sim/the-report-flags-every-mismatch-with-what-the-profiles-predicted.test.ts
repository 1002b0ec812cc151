import t from 'tap';
import { buildReport, diffCounts, renderReport, type GatewayCounts, type ProfileTally } from '../../device-sim/index.js';
import { finishWithReport } from '../../cli/sim.js';

function tally(profile: string, over: Partial<ProfileTally> = {}): ProfileTally {
  return {
    profile,
    devices: 1,
    made: 10,
    published: 10,
    acked: 10,
    resent: 0,
    dropped: 0,
    backlog: 0,
    connects: 1,
    disconnects: 0,
    connectFailures: 0,
    attacks: 0,
    expected: {},
    checks: [],
    ...over,
  };
}

const counts = (over: Partial<GatewayCounts> = {}): GatewayCounts => ({ accepted: 20, duplicates: 0, rejected: {}, refused: {}, outboxRows: 0, ...over });
const run = { devices: 2, ratePerDevice: 1, durationMs: 1000, provisionMs: 10, rampMs: 5, elapsedMs: 1000, profiles: { honest: 1, replay: 1 } };
const cloud = { missing: 0, leaked: 0, recordsDelta: 20, examples: [] };

const replay = tally('replay', { attacks: 3, expected: { 'rejected.EDGEGW_VERIFY_REPLAY': { min: 2, max: 3 }, duplicates: { min: 1, max: 1 } } });

t.test('counts inside the predicted ranges pass', (t) => {
  const r = buildReport({ run, profiles: [tally('honest'), replay], gateway: counts({ rejected: { EDGEGW_VERIFY_REPLAY: 3 }, duplicates: 4 }), honestAcked: 20, cloud });
  t.ok(r.ok, 'every expectation held');
  t.equal(r.totals.made, 20);
  t.match(renderReport(r), /PASS: every expectation held/);
  t.end();
});

t.test('every kind of mismatch is flagged', (t) => {
  const cases: [string, Parameters<typeof buildReport>[0], string][] = [
    ['too few rejections', { run, profiles: [replay], gateway: counts({ rejected: { EDGEGW_VERIFY_REPLAY: 1 }, duplicates: 1 }), honestAcked: 0, cloud: null }, 'rejected.EDGEGW_VERIFY_REPLAY'],
    ['too many rejections', { run, profiles: [replay], gateway: counts({ rejected: { EDGEGW_VERIFY_REPLAY: 4 }, duplicates: 1 }), honestAcked: 0, cloud: null }, 'rejected.EDGEGW_VERIFY_REPLAY'],
    ['a code nobody predicted', { run, profiles: [tally('honest')], gateway: counts({ refused: { EDGEGW_BROKER_CONN_RATE_LIMITED: 1 } }), honestAcked: 10, cloud: null }, 'refused.EDGEGW_BROKER_CONN_RATE_LIMITED'],
    ['fewer duplicates than the replays made', { run, profiles: [replay], gateway: counts({ rejected: { EDGEGW_VERIFY_REPLAY: 2 } }), honestAcked: 0, cloud: null }, 'duplicates'],
    ['an honest message not accepted', { run, profiles: [tally('honest')], gateway: counts({ accepted: 9 }), honestAcked: 10, cloud: null }, 'accepted (at least every acknowledged honest message)'],
    ['a dropped message', { run, profiles: [tally('honest', { dropped: 1 })], gateway: counts(), honestAcked: 10, cloud: null }, 'honest messages dropped from a full buffer'],
    ['a message never acknowledged', { run, profiles: [tally('honest', { backlog: 2 })], gateway: counts(), honestAcked: 10, cloud: null }, 'messages still unacknowledged at the end'],
    ['a message missing in the cloud', { run, profiles: [tally('honest')], gateway: counts(), honestAcked: 10, cloud: { ...cloud, missing: 1 } }, 'acknowledged honest messages missing from the cloud'],
    ['an attack in the cloud', { run, profiles: [tally('honest')], gateway: counts(), honestAcked: 10, cloud: { ...cloud, leaked: 1 } }, 'attack messages found in the cloud'],
    ['accepted but not relayed', { run, profiles: [tally('honest')], gateway: counts(), honestAcked: 10, cloud: { ...cloud, recordsDelta: 19 } }, 'cloud records gained = gateway accepted'],
    ['an outbox not drained', { run, profiles: [tally('honest')], gateway: counts({ outboxRows: 5 }), honestAcked: 10, cloud }, 'gateway outbox drained'],
    ['a device-side check that failed', { run, profiles: [tally('flood', { checks: [{ name: 'cut off', passed: 1, failed: 1, firstFailure: 'x' }] })], gateway: counts(), honestAcked: 10, cloud: null }, 'flood: cut off'],
  ];
  for (const [name, input, failing] of cases) {
    const r = buildReport(input);
    t.notOk(r.ok, name);
    t.same(r.expectations.filter((e) => !e.pass).map((e) => e.name), [failing], `${name}: only ${failing} fails`);
  }
  t.end();
});

t.test('an "at least" prediction has no ceiling', (t) => {
  const flood = tally('flood', { expected: { 'refused.EDGEGW_BROKER_RATE_LIMITED': { min: 2, max: Infinity } } });
  t.ok(buildReport({ run, profiles: [flood], gateway: counts({ refused: { EDGEGW_BROKER_RATE_LIMITED: 57 } }), honestAcked: 10, cloud: null }).ok);
  t.notOk(buildReport({ run, profiles: [flood], gateway: counts({ refused: { EDGEGW_BROKER_RATE_LIMITED: 1 } }), honestAcked: 10, cloud: null }).ok);
  t.end();
});

t.test('gateway counts are compared as differences over the run', (t) => {
  const before = counts({ accepted: 100, duplicates: 3, rejected: { EDGEGW_VERIFY_STALE: 7 }, refused: { EDGEGW_BROKER_ACL_PUBLISH: 1 } });
  const after = counts({ accepted: 130, duplicates: 3, rejected: { EDGEGW_VERIFY_STALE: 9, EDGEGW_VERIFY_REPLAY: 1 }, refused: { EDGEGW_BROKER_ACL_PUBLISH: 1 }, outboxRows: 4 });
  t.same(diffCounts(before, after), { accepted: 30, duplicates: 0, rejected: { EDGEGW_VERIFY_STALE: 2, EDGEGW_VERIFY_REPLAY: 1 }, refused: {}, outboxRows: 4 });
  t.end();
});

t.test('a failed report ends the command with EDGEGW_SIM_EXPECTATION_FAILED', (t) => {
  const failed = buildReport({ run, profiles: [tally('honest', { dropped: 1 })], gateway: counts(), honestAcked: 10, cloud: null });
  let printed = '';
  const write = (s: string): void => {
    printed += s;
  };
  t.throws(() => finishWithReport(failed, false, write), { code: 'EDGEGW_SIM_EXPECTATION_FAILED' });
  t.doesNotThrow(() => finishWithReport(buildReport({ run, profiles: [tally('honest')], gateway: counts(), honestAcked: 10, cloud: null }), true, write));
  t.match(printed, /FAIL: 1 expectation\(s\) did not hold/, 'the report is printed before the failure');
  t.match(JSON.parse(printed.trim().split('\n').pop()!), { ok: true }, '--json prints the report as one JSON document');
  t.end();
});
