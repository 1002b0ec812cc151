/**
 * The end of a fleet run: waiting for the gateway to settle (outbox relayed, counters still),
 * asking the cloud what it holds of each device, and summing the devices into one tally per
 * profile for the report.
 */
import type { FleetObserver } from './fleet.js';
import type { Member } from './plan.js';
import { sleep } from './timers.js';
import type { CloudFindings, GatewayCounts, ProfileTally } from './report.js';

/** Polls the gateway until its outbox is empty and neither its counters nor the cloud's move. */
export async function settle(observer: FleetObserver, timeoutMs: number): Promise<GatewayCounts> {
  const deadline = performance.now() + timeoutMs;
  let last = await observer.gateway();
  let lastCloud = (await observer.cloudCount?.()) ?? 0;
  for (;;) {
    await sleep(500);
    const now = await observer.gateway();
    const cloud = (await observer.cloudCount?.()) ?? 0;
    // Without a cloud to relay to, the outbox only grows; then stable counters are enough.
    const drained = observer.cloudCount === undefined || now.outboxRows === 0;
    const quiet = drained && now.accepted === last.accepted && now.duplicates === last.duplicates && cloud === lastCloud;
    if (quiet || performance.now() > deadline) return now;
    last = now;
    lastCloud = cloud;
  }
}

/** Per device: acknowledged honest (and must-deliver) seqs the cloud lacks, forbidden seqs it holds. */
export async function cloudFindings(observer: FleetObserver, members: Member[], cloudBefore: number): Promise<CloudFindings> {
  let missing = 0;
  let leaked = 0;
  const examples: string[] = [];
  for (const m of members) {
    if (m.device === undefined) continue;
    const held = await observer.cloudSeqs!(m.id);
    const must = new Set<number>(m.mustDeliver);
    const forbidden = new Set<number>(m.forbidden);
    for (const seq of m.device.ackedSeqs) (m.profile.honestTraffic ? must : forbidden).add(seq);
    for (const seq of must) {
      if (held.has(seq)) continue;
      missing += 1;
      if (examples.length < 5) examples.push(`missing: ${m.id} seq ${seq}`);
    }
    for (const seq of forbidden) {
      if (!held.has(seq)) continue;
      leaked += 1;
      if (examples.length < 5) examples.push(`leaked: ${m.id} seq ${seq}`);
    }
  }
  const after = (await observer.cloudCount?.()) ?? 0;
  return { missing, leaked, recordsDelta: after - cloudBefore, examples };
}

/** Sums the devices of each profile: firmware stats, predictions and device-side checks. */
export function tallies(members: Member[]): ProfileTally[] {
  const byProfile = new Map<string, ProfileTally>();
  for (const m of members) {
    let t = byProfile.get(m.profile.name);
    if (t === undefined) {
      t = {
        profile: m.profile.name,
        devices: 0,
        made: 0,
        published: 0,
        acked: 0,
        resent: 0,
        dropped: 0,
        backlog: 0,
        connects: 0,
        disconnects: 0,
        connectFailures: 0,
        attacks: 0,
        expected: {},
        checks: [],
      };
      byProfile.set(m.profile.name, t);
    }
    t.devices += 1;
    t.attacks += m.attacks;
    const d = m.device;
    if (d !== undefined) {
      t.made += d.stats.made;
      t.published += d.stats.published;
      t.acked += d.stats.acked;
      t.resent += d.stats.resent;
      t.dropped += d.stats.dropped;
      t.backlog += d.backlog;
      t.connects += d.stats.connects;
      t.disconnects += d.stats.disconnects;
      t.connectFailures += d.stats.connectFailures;
    }
    for (const [key, r] of m.expected) {
      const cur = t.expected[key] ?? { min: 0, max: 0 };
      t.expected[key] = { min: cur.min + r.min, max: cur.max + r.max };
    }
    for (const c of m.checks.values()) {
      const cur = t.checks.find((x) => x.name === c.name);
      if (cur === undefined) t.checks.push({ ...c });
      else {
        cur.passed += c.passed;
        cur.failed += c.failed;
        cur.firstFailure ??= c.firstFailure;
      }
    }
  }
  return [...byProfile.values()];
}
