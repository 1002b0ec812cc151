// The gateway checks Ed25519 with libsodium when it loads, else node:crypto (protocol/ed25519.ts).
// For honest signatures and for every change an attacker without the key can make, both give
// the same verdict; the one difference is a signature with a small-order R, which only the
// key's holder can make and which libsodium alone refuses. Without the addon, the gateway falls
// back to node:crypto and refuses to start only when libsodium was asked for by name.
import t from 'tap';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  ed25519Verifier,
  importPublicKey,
  selectEd25519Verifier,
  verifyEd25519Libsodium,
  verifySignatureBytes,
  verifySignatureBytesNoble,
  type Ed25519Verifier,
  type VerifyKey,
} from '../../protocol/index.js';
import { holds } from './_property.js';
import { neutralRSignature } from '../helpers/ed25519.js';
import type { tempDir } from '../helpers/tmp.js';

const L = ed25519.Point.Fn.ORDER;

function keyOf(seed: Uint8Array): VerifyKey {
  const k = importPublicKey('EdDSA', ed25519.getPublicKey(seed));
  if (!k.ok) throw new Error(k.reason);
  return k.value;
}

function verdicts(key: VerifyKey, message: Uint8Array, signature: Uint8Array): Record<Ed25519Verifier, boolean> {
  const out = {} as Record<Ed25519Verifier, boolean>;
  for (const v of ['node', 'libsodium'] as const) {
    // Were libsodium missing, both verdicts would be node:crypto's and every property vacuous.
    if (!selectEd25519Verifier(v).ok) throw new Error(`${v} cannot be selected here`);
    out[v] = verifySignatureBytes(key, message, signature);
  }
  return out;
}

const seedArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
const messageArb = fc.uint8Array({ maxLength: 300 });

t.test('honest signatures verify with both libraries, and every tampering fails with both', async (t) => {
  holds(
    t,
    'a signature verifies with both; a flipped bit of signature or message fails with both',
    fc.property(seedArb, messageArb, fc.nat(), fc.boolean(), (seed, message, bit, inSignature) => {
      const key = keyOf(seed);
      const sig = ed25519.sign(message, seed);
      const good = verdicts(key, message, sig);
      if (!good.node || !good.libsodium) return false;
      if (!inSignature && message.length === 0) return true;
      const target = inSignature ? sig.slice() : message.slice();
      target[(bit >> 3) % target.length]! ^= 1 << (bit & 7);
      const bad = inSignature ? verdicts(key, message, target) : verdicts(key, target, sig);
      return !bad.node && !bad.libsodium;
    }),
    { numRuns: 300 },
  );
  holds(
    t,
    'random 64-byte signatures: the same verdict (false) from both',
    fc.property(seedArb, messageArb, fc.uint8Array({ minLength: 64, maxLength: 64 }), (seed, message, sig) => {
      const v = verdicts(keyOf(seed), message, sig);
      return v.node === v.libsodium && !v.node;
    }),
    { numRuns: 300 },
  );
  holds(
    t,
    'S + L in place of S (non-canonical, RFC 8032 §5.1.7 strict): both refuse it',
    fc.property(seedArb, messageArb, (seed, message) => {
      const sig = ed25519.sign(message, seed);
      let s = 0n;
      for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
      s += L;
      if (s >= 1n << 256n) return true;
      const forged = sig.slice();
      for (let i = 0; i < 32; i++) forged[32 + i] = Number((s >> BigInt(8 * i)) & 0xffn);
      const v = verdicts(keyOf(seed), message, forged);
      return !v.node && !v.libsodium;
    }),
    { numRuns: 100 },
  );
});

t.test("a small-order R, which only the key's holder can make: node:crypto and noble accept it, libsodium refuses it", async (t) => {
  const seed = new Uint8Array(32).fill(7);
  const message = new TextEncoder().encode('made by the holder of the key');
  const sig = neutralRSignature(seed, message);
  const v = verdicts(keyOf(seed), message, sig);
  t.equal(v.node, true, 'OpenSSL accepts it (so the signature is well made)');
  t.equal(verifySignatureBytesNoble('EdDSA', ed25519.getPublicKey(seed), message, sig), true, 'noble accepts it');
  t.equal(v.libsodium, false, 'libsodium refuses it');
  t.equal(verifyEd25519Libsodium(ed25519.getPublicKey(seed), message, sig), false, 'libsodium refuses it when called directly too');
});

t.test("the selection is reported back, and 'auto' is libsodium where it loads", async (t) => {
  t.same(selectEd25519Verifier('node'), { ok: true, value: 'node' });
  t.equal(ed25519Verifier(), 'node');
  t.same(selectEd25519Verifier('libsodium'), { ok: true, value: 'libsodium' });
  t.equal(ed25519Verifier(), 'libsodium');
  t.same(selectEd25519Verifier('auto'), { ok: true, value: 'libsodium' }, "'auto' is libsodium where it loads");
});

// A temporary directory from which sodium-native cannot be resolved (no node_modules above it
// that holds it), or undefined.
function dirWithoutSodium(t: Parameters<typeof tempDir>[0]): string | undefined {
  for (const parent of [tmpdir(), '/dev/shm', '/var/tmp']) {
    let dir: string;
    try {
      dir = mkdtempSync(join(parent, 'edgegw-nosodium-'));
    } catch {
      continue;
    }
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    try {
      createRequire(join(dir, 'probe.js')).resolve('sodium-native');
    } catch {
      return dir;
    }
  }
  return undefined;
}

const noSodium = dirWithoutSodium(t);
t.test(
  'without the addon: node:crypto does the checks, and asking for libsodium by name is a config error',
  { skip: noSodium === undefined ? 'every temporary directory here has a node_modules with sodium-native above it' : false },
  async (t) => {
    // The built module and its one import, copied where sodium-native cannot be resolved.
    const dist = fileURLToPath(new URL('../../dist/', import.meta.url));
    const dir = noSodium!;
    for (const f of ['protocol/ed25519.js', 'common/errors.js']) {
      mkdirSync(join(dir, f, '..'), { recursive: true });
      cpSync(join(dist, f), join(dir, f));
    }
    const script = `
      import { generateKeyPairSync, sign } from 'node:crypto';
      import * as m from ${JSON.stringify(join(dir, 'protocol/ed25519.js'))};
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
      const msg = Buffer.from('hello');
      const sig = sign(null, msg, privateKey);
      const bad = Buffer.from(sig); bad[5] ^= 1;
      console.log(JSON.stringify({
        status: m.libsodiumStatus(), initial: m.ed25519Verifier(),
        named: m.selectEd25519Verifier('libsodium'), auto: m.selectEd25519Verifier('auto'),
        good: m.verifyEd25519(raw, publicKey, msg, sig), bad: m.verifyEd25519(raw, publicKey, msg, bad),
      }));`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8' });
    t.equal(child.status, 0, child.stderr);
    const out = JSON.parse(child.stdout) as {
      status: { available: boolean; why: string };
      initial: string;
      named: { ok: boolean; reason: string; detail: string };
      auto: unknown;
      good: boolean;
      bad: boolean;
    };
    t.equal(out.status.available, false);
    t.match(out.status.why, /sodium-native/, 'the reason names the missing package');
    t.equal(out.initial, 'node', 'node:crypto by default');
    t.equal(out.named.ok, false);
    t.equal(out.named.reason, 'EDGEGW_CONFIG_INVALID');
    t.match(out.named.detail, /ed25519Verifier: libsodium is not available here/);
    t.same(out.auto, { ok: true, value: 'node' });
    t.equal(out.good, true, 'a good signature verifies through node:crypto');
    t.equal(out.bad, false, 'a bad one does not');
  },
);
