/**
 * Planning a fleet: which devices of which profile (`--profile` parsing), their ids and
 * flash files, the order they boot in, and the source address each connects from. Pure
 * apart from the flash store handles it creates.
 */
import { join } from 'node:path';
import { EdgegwError } from '../common/errors.js';
import type { Device } from './firmware.js';
import { fileFlash, type FlashStore } from './flash.js';
import { PROFILES, type Profile, type ProfileContext } from './profiles/index.js';
import type { CheckTally, Range } from './report.js';

/** The fleet's record of one device: its profile, its firmware model, what it predicted. */
export interface Member {
  readonly index: number;
  readonly id: string;
  readonly profile: Profile;
  readonly flash: FlashStore;
  device?: Device;
  ctx?: ProfileContext;
  run?: Promise<void>;
  readonly expected: Map<string, Range>;
  readonly checks: Map<string, CheckTally>;
  readonly forbidden: Set<number>;
  readonly mustDeliver: Set<number>;
  attacks: number;
  lastAcked?: { topic: string; bytes: Uint8Array };
}

/** Parses `--profile` values: `name`, `name:count`, comma lists, and `all` (one of each attacker). */
export function parsePlan(devices: number, profileArgs: readonly string[], hostile: readonly string[]): Map<string, number> {
  const plan = new Map<string, number>();
  if (!Number.isSafeInteger(devices) || devices < 0) throw new EdgegwError('EDGEGW_USAGE', '--devices must be a non-negative integer');
  if (devices > 0) plan.set('honest', devices);
  for (const arg of profileArgs.flatMap((a) => a.split(',')).map((a) => a.trim()).filter((a) => a !== '')) {
    const [name, countText] = arg.split(':', 2) as [string, string | undefined];
    const count = countText === undefined ? 1 : Number(countText);
    if (!Number.isSafeInteger(count) || count < 1) throw new EdgegwError('EDGEGW_USAGE', `bad count in --profile ${arg}`);
    const names = name === 'all' ? hostile : [name];
    for (const n of names) {
      if (!PROFILES.has(n)) throw new EdgegwError('EDGEGW_USAGE', `unknown profile ${n}; known: ${[...PROFILES.keys()].join(', ')}, all`);
      plan.set(n, (plan.get(n) ?? 0) + count);
    }
  }
  const total = [...plan.values()].reduce((a, b) => a + b, 0);
  if (total === 0) throw new EdgegwError('EDGEGW_USAGE', 'the fleet has no devices');
  return plan;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** 127.1.x.y for device i: 250 devices per /24, never .0 or .255. */
export function sourceAddress(i: number): string {
  const block = Math.floor(i / 250);
  return `127.${1 + Math.floor(block / 256)}.${block % 256}.${(i % 250) + 1}`;
}

export function planMembers(opts: { plan: ReadonlyMap<string, number>; fleetDir: string; idPrefix?: string }): Member[] {
  const prefix = opts.idPrefix ?? 'sim';
  const out: Member[] = [];
  for (const [name, count] of opts.plan) {
    const profile = PROFILES.get(name)!;
    const width = String(count).length;
    for (let n = 0; n < count; n++) {
      const id = `${prefix}-${name}-${String(n).padStart(width, '0')}`;
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new EdgegwError('EDGEGW_USAGE', `device id ${id} is not valid; use a shorter --id-prefix`);
      out.push({
        index: out.length,
        id,
        profile,
        flash: fileFlash(join(opts.fleetDir, `${id}.flash`)),
        expected: new Map(),
        checks: new Map(),
        forbidden: new Set(),
        mustDeliver: new Set(),
        attacks: 0,
      });
    }
  }
  return out;
}

/** Honest devices first in each stretch, attackers spread evenly between them. */
export function interleave(members: Member[]): Member[] {
  const honest = members.filter((m) => m.profile.run === undefined && m.profile.honestTraffic);
  const others = members.filter((m) => !(m.profile.run === undefined && m.profile.honestTraffic));
  if (others.length === 0) return honest;
  const out: Member[] = [];
  const stride = Math.max(1, Math.floor(honest.length / others.length));
  let o = 0;
  for (let i = 0; i < honest.length; i++) {
    out.push(honest[i]!);
    // The first attackers come after some honest devices, so that they have peers to copy.
    if ((i + 1) % stride === 0 && o < others.length) out.push(others[o++]!);
  }
  while (o < others.length) out.push(others[o++]!);
  return out;
}
