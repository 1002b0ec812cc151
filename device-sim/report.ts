/**
 * The fleet's verdict: what each profile sent and had acknowledged, what the gateway
 * counted (the difference of `edgegw status` before and after the run), and whether that is
 * what the profiles should get:
 *   - every rejection and refusal the gateway counted, by code, within the range the attack
 *     profiles predicted; no code that nobody predicted;
 *   - every honest message acknowledged, none dropped, and each one in the cloud;
 *   - no attack message in the cloud; everything the gateway accepted relayed to the cloud;
 *   - every device-side observation held (connections cut, refused, let in).
 * Pure: built from plain numbers, so it is tested without sockets.
 */
import type { Bucket } from './profiles/index.js';

/** A gateway's counters as `edgegw status` reports them. */
export interface GatewayCounts {
  accepted: number;
  duplicates: number;
  rejected: Record<string, number>;
  refused: Record<string, number>;
  /** Rows waiting in the outbox for the relay. */
  outboxRows: number;
}

/** min ≤ actual ≤ max; max = Infinity for "at least". */
export interface Range {
  min: number;
  max: number;
}

export interface CheckTally {
  name: string;
  passed: number;
  failed: number;
  /** The detail of the first failure. */
  firstFailure?: string;
}

export interface ProfileTally {
  profile: string;
  devices: number;
  /** Messages the firmware made (buffered, signed). */
  made: number;
  published: number;
  acked: number;
  resent: number;
  /** Dropped from a full offline buffer. */
  dropped: number;
  /** Still unacknowledged when the run ended. */
  backlog: number;
  connects: number;
  disconnects: number;
  connectFailures: number;
  /** Attacks whose outcome the profile predicted. */
  attacks: number;
  /** Predicted gateway counts, by `bucket.code`. */
  expected: Record<string, Range>;
  checks: CheckTally[];
}

export interface Expectation {
  /** What is checked, e.g. `rejected.EDGEGW_VERIFY_REPLAY` or `honest messages in the cloud`. */
  name: string;
  expected: string;
  actual: number | string;
  pass: boolean;
}

export interface CloudFindings {
  /** Acknowledged honest messages not found in the cloud. */
  missing: number;
  /** Attack messages found in the cloud. */
  leaked: number;
  /** Records the cloud gained during the run. */
  recordsDelta: number;
  /** Examples, for the person reading the report. */
  examples: string[];
}

export interface FleetReport {
  ok: boolean;
  run: {
    devices: number;
    ratePerDevice: number;
    durationMs: number;
    /** Provisioning (keys, registration, flash) before the run. */
    provisionMs: number;
    /** Booting every device, staggered; the run of `durationMs` follows. */
    rampMs: number;
    /** From the first boot to the verdict: the run, draining and settling. */
    elapsedMs: number;
    profiles: Record<string, number>;
  };
  totals: Omit<ProfileTally, 'profile' | 'expected' | 'checks'>;
  profiles: ProfileTally[];
  gateway: GatewayCounts;
  cloud: CloudFindings | null;
  expectations: Expectation[];
}

export function bucketKey(bucket: Bucket, code: string): string {
  return bucket === 'duplicates' ? 'duplicates' : `${bucket}.${code}`;
}

/** after − before, counter by counter (a counter missing before counts as 0). */
export function diffCounts(before: GatewayCounts, after: GatewayCounts): GatewayCounts {
  const sub = (a: Record<string, number>, b: Record<string, number>): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(a)) {
      const d = v - (b[k] ?? 0);
      if (d !== 0) out[k] = d;
    }
    return out;
  };
  return {
    accepted: after.accepted - before.accepted,
    duplicates: after.duplicates - before.duplicates,
    rejected: sub(after.rejected, before.rejected),
    refused: sub(after.refused, before.refused),
    outboxRows: after.outboxRows,
  };
}

function formatRange(r: Range): string {
  if (r.max === Infinity) return `>= ${r.min}`;
  return r.min === r.max ? `${r.min}` : `${r.min}..${r.max}`;
}

export interface ReportInput {
  run: FleetReport['run'];
  profiles: ProfileTally[];
  /** The gateway's counts gained during the run. */
  gateway: GatewayCounts;
  /** Honest acknowledged messages the gateway must have accepted (lower bound). */
  honestAcked: number;
  cloud: CloudFindings | null;
}

/** Compares what happened with what the profiles predicted. */
export function buildReport(input: ReportInput): FleetReport {
  const { profiles, gateway, cloud } = input;
  const expected = new Map<string, Range>();
  for (const p of profiles) {
    for (const [key, r] of Object.entries(p.expected)) {
      const cur = expected.get(key) ?? { min: 0, max: 0 };
      expected.set(key, { min: cur.min + r.min, max: cur.max + r.max });
    }
  }
  const expectations: Expectation[] = [];
  const actualOf = (key: string): number => {
    if (key === 'duplicates') return gateway.duplicates;
    const [bucket, code] = key.split('.', 2) as ['rejected' | 'refused', string];
    return gateway[bucket][code] ?? 0;
  };
  const keys = new Set<string>([...expected.keys()]);
  for (const code of Object.keys(gateway.rejected)) keys.add(`rejected.${code}`);
  for (const code of Object.keys(gateway.refused)) keys.add(`refused.${code}`);
  for (const key of [...keys].sort()) {
    // A QoS 1 resend after a lost PUBACK is also a duplicate, so only the floor is predicted.
    const range = key === 'duplicates' ? { min: expected.get(key)?.min ?? 0, max: Infinity } : (expected.get(key) ?? { min: 0, max: 0 });
    const actual = actualOf(key);
    expectations.push({ name: key, expected: formatRange(range), actual, pass: actual >= range.min && actual <= range.max });
  }
  if (!keys.has('duplicates')) {
    expectations.push({ name: 'duplicates', expected: '>= 0', actual: gateway.duplicates, pass: true });
  }
  expectations.push({
    name: 'accepted (at least every acknowledged honest message)',
    expected: `>= ${input.honestAcked}`,
    actual: gateway.accepted,
    pass: gateway.accepted >= input.honestAcked,
  });
  const honest = profiles.reduce(
    (acc, p) => ({ dropped: acc.dropped + p.dropped, backlog: acc.backlog + p.backlog }),
    { dropped: 0, backlog: 0 },
  );
  expectations.push({ name: 'honest messages dropped from a full buffer', expected: '0', actual: honest.dropped, pass: honest.dropped === 0 });
  expectations.push({ name: 'messages still unacknowledged at the end', expected: '0', actual: honest.backlog, pass: honest.backlog === 0 });
  if (cloud !== null) {
    expectations.push({ name: 'acknowledged honest messages missing from the cloud', expected: '0', actual: cloud.missing, pass: cloud.missing === 0 });
    expectations.push({ name: 'attack messages found in the cloud', expected: '0', actual: cloud.leaked, pass: cloud.leaked === 0 });
    expectations.push({ name: 'cloud records gained = gateway accepted', expected: `${gateway.accepted}`, actual: cloud.recordsDelta, pass: cloud.recordsDelta === gateway.accepted });
    expectations.push({ name: 'gateway outbox drained', expected: '0', actual: gateway.outboxRows, pass: gateway.outboxRows === 0 });
  }
  for (const p of profiles) {
    for (const c of p.checks) {
      expectations.push({
        name: `${p.profile}: ${c.name}`,
        expected: `${c.passed + c.failed} of ${c.passed + c.failed}`,
        actual: c.failed === 0 ? `${c.passed} of ${c.passed}` : `${c.passed}; first failure: ${c.firstFailure ?? ''}`,
        pass: c.failed === 0,
      });
    }
  }
  const sum = (f: (p: ProfileTally) => number): number => profiles.reduce((a, p) => a + f(p), 0);
  const totals = {
    devices: sum((p) => p.devices),
    made: sum((p) => p.made),
    published: sum((p) => p.published),
    acked: sum((p) => p.acked),
    resent: sum((p) => p.resent),
    dropped: sum((p) => p.dropped),
    backlog: sum((p) => p.backlog),
    connects: sum((p) => p.connects),
    disconnects: sum((p) => p.disconnects),
    connectFailures: sum((p) => p.connectFailures),
    attacks: sum((p) => p.attacks),
  };
  return { ok: expectations.every((e) => e.pass), run: input.run, totals, profiles, gateway, cloud, expectations };
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function lpad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

/** The report for a person: a table per profile, then every expectation with ok / FAIL. */
export function renderReport(r: FleetReport): string {
  const lines: string[] = [];
  const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  lines.push(
    `fleet: ${r.run.devices} devices, ${r.run.ratePerDevice} msg/s each for ${secs(r.run.durationMs)} ` +
      `(provisioning ${secs(r.run.provisionMs)}, ramp ${secs(r.run.rampMs)}, ramp to verdict ${secs(r.run.elapsedMs)})`,
  );
  lines.push('');
  const cols = ['profile', 'devices', 'made', 'acked', 'resent', 'dropped', 'attacks', 'connects', 'drops'];
  const widths = [16, 8, 9, 9, 7, 8, 8, 9, 6];
  lines.push(cols.map((c, i) => (i === 0 ? pad(c, widths[i]!) : lpad(c, widths[i]!))).join(' '));
  const row = (name: string, t: Omit<ProfileTally, 'profile' | 'expected' | 'checks'>): string =>
    [name, t.devices, t.made, t.acked, t.resent, t.dropped, t.attacks, t.connects, t.disconnects]
      .map((v, i) => (i === 0 ? pad(String(v), widths[i]!) : lpad(String(v), widths[i]!)))
      .join(' ');
  for (const p of r.profiles) lines.push(row(p.profile, p));
  lines.push(row('total', r.totals));
  lines.push('');
  lines.push(`gateway: accepted ${r.gateway.accepted}, duplicates ${r.gateway.duplicates}, outbox ${r.gateway.outboxRows}`);
  if (r.cloud === null) lines.push('cloud: not checked (no cloud given)');
  else lines.push(`cloud: ${r.cloud.recordsDelta} new records, ${r.cloud.missing} honest missing, ${r.cloud.leaked} attack messages leaked`);
  for (const ex of r.cloud?.examples ?? []) lines.push(`  ${ex}`);
  lines.push('');
  const nameWidth = Math.min(72, Math.max(...r.expectations.map((e) => e.name.length)));
  for (const e of r.expectations) {
    lines.push(`${e.pass ? '  ok  ' : ' FAIL '} ${pad(e.name, nameWidth)}  expected ${e.expected}, got ${e.actual}`);
  }
  lines.push('');
  lines.push(r.ok ? 'PASS: every expectation held' : `FAIL: ${r.expectations.filter((e) => !e.pass).length} expectation(s) did not hold`);
  return lines.join('\n');
}
