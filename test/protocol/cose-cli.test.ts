// `edgegw cose verify|sign|decrypt|keygen` as a user runs it: the built executable
// (dist/cli/main.js; `npm test` builds it in pretest, or run `npx tsc -p tsconfig.json`)
// in a child process. Exit 0 valid, 1 invalid with the code in one JSON line, 2 bad usage
// with a message on stderr.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeSign1, verifySign1, importPublicKey, kidOf, generateKeyPair, type CoseAlg } from '../../protocol/index.js';
import { VECTORS_DIR, hex, toHex, keyField, rawPublicKey, readJson } from './_vectors.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'dist/cli/main.js');
// Generous: each run starts a Node process, and CI machines are shared.
const SPAWN_TIMEOUT_MS = 120_000;
// The CLI runs as a user runs it, without the loaders tap puts in NODE_OPTIONS to follow
// its own child processes.
const { NODE_OPTIONS: _tapLoaders, ...CHILD_ENV } = process.env;

interface Run {
  code: number | null;
  json: any;
  stdout: string;
  stderr: string;
}

function edgegw(...args: string[]): Run {
  const r = spawnSync(process.execPath, [MAIN, 'cose', ...args], { encoding: 'utf8', timeout: SPAWN_TIMEOUT_MS, env: CHILD_ENV });
  const lines = r.stdout.split('\n').filter((l) => l.length > 0);
  return { code: r.status, json: lines.length === 1 ? JSON.parse(lines[0]!) : undefined, stdout: r.stdout, stderr: r.stderr };
}

/** Runs independent invocations two at a time (the machine has two cores), results in order. */
async function edgegwAll(argsList: string[][]): Promise<Run[]> {
  const out: Run[] = new Array(argsList.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < argsList.length) {
      const i = next++;
      out[i] = await edgegwAsync(...argsList[i]!);
    }
  };
  await Promise.all([worker(), worker()]);
  return out;
}

/** The same, without blocking. */
function edgegwAsync(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, 'cose', ...args], { timeout: SPAWN_TIMEOUT_MS, env: CHILD_ENV });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const lines = stdout.split('\n').filter((l) => l.length > 0);
      resolve({ code, json: lines.length === 1 ? JSON.parse(lines[0]!) : undefined, stdout, stderr });
    });
  });
}

// Each case starts a Node process; on a shared two-core machine one start can take seconds.
t.setTimeout(600_000);

t.before(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first with npx tsc -p tsconfig.json`);
});

for (const alg of ['EdDSA', 'ES256'] as CoseAlg[]) {
  t.test(`${alg}: keygen, sign and verify agree with each other and with the library`, async (t) => {
    const keys = edgegw('keygen', '--alg', alg);
    t.equal(keys.code, 0);
    t.equal(keys.json.alg, alg);
    t.equal(keys.json.priv_hex.length, 64, '32-byte private key');
    t.equal(keys.json.pub_hex.length, alg === 'EdDSA' ? 64 : 130, 'raw public key of PROTOCOL.md section 1');
    t.equal(keys.json.kid_hex, toHex(kidOf(hex(keys.json.pub_hex))));

    const topic = 'd/dev-1/t/temp';
    const signed = edgegw('sign', '--alg', alg, '--key', keys.json.priv_hex, '--topic', topic, 'a201010200');
    t.equal(signed.code, 0);
    t.equal(signed.json.pub_hex, keys.json.pub_hex);
    t.equal(signed.json.kid_hex, keys.json.kid_hex);
    const msg = decodeSign1(hex(signed.json.cose_hex));
    const key = importPublicKey(alg, hex(keys.json.pub_hex));
    t.ok(msg.ok && key.ok && verifySign1(msg.value, key.value, new TextEncoder().encode(topic)).ok, 'the library verifies what the CLI signed');

    const ok = edgegw('verify', '--alg', alg, '--pub', keys.json.pub_hex, '--kid', keys.json.kid_hex, '--topic', topic, signed.json.cose_hex);
    t.equal(ok.code, 0);
    t.same(ok.json, { valid: true, alg, payload_hex: 'a201010200', kid_hex: keys.json.kid_hex }, 'valid, and the expected kid matches');
  });
}

t.test('verify refuses with exit 1 and the code: other topic, other kid, untagged, other alg', async (t) => {
  const { privateKey, publicKey } = generateKeyPair('EdDSA');
  const pub = toHex(publicKey);
  const topic = 'd/dev-1/t/temp';
  const aadHex = (name: string): string => toHex(new TextEncoder().encode(name));
  const [signed, untagged] = (await edgegwAll([
    ['sign', '--alg', 'EdDSA', '--key', toHex(privateKey), '--aad', aadHex(topic), 'a0'],
    ['sign', '--alg', 'EdDSA', '--key', toHex(privateKey), '--untagged', 'a0'],
  ])) as [Run, Run];
  const [moved, otherKid, refused, mismatch] = (await edgegwAll([
    ['verify', '--alg', 'EdDSA', '--pub', pub, '--aad', aadHex('d/dev-2/t/temp'), signed.json.cose_hex],
    ['verify', '--alg', 'EdDSA', '--pub', pub, '--kid', '0011223344556677', '--topic', topic, signed.json.cose_hex],
    ['verify', '--alg', 'EdDSA', '--pub', pub, untagged.json.cose_hex],
    ['verify', '--alg', 'ES256', '--pub', toHex(generateKeyPair('ES256').publicKey), '--topic', topic, signed.json.cose_hex],
  ])) as [Run, Run, Run, Run];
  t.equal(moved.code, 1);
  t.same(moved.json, { valid: false, code: 'EDGEGW_COSE_BAD_SIGNATURE' }, 'signed for one topic (--aad hex), checked for another');
  t.equal(otherKid.code, 1);
  t.same(otherKid.json, { valid: false, code: 'EDGEGW_COSE_KID_MISMATCH' }, 'right topic (--topic), another kid');
  t.equal(refused.code, 1);
  t.same(refused.json, { valid: false, code: 'EDGEGW_COSE_NOT_TAGGED' }, 'sign --untagged output is refused');
  t.equal(mismatch.code, 1);
  t.same(mismatch.json, { valid: false, code: 'EDGEGW_COSE_ALG_KEY_MISMATCH' }, 'EdDSA message, ES256 key');
});

t.test('verify accepts an independent vector (RFC 8152 C.2.1) and refuses bad keys and bytes with exit 1', async (t) => {
  const j = readJson(join(VECTORS_DIR, 'cose/RFC8152/Appendix_C_2_1.json'));
  const pub = toHex(rawPublicKey(j.input.sign0.key));
  const [ok, shortKey, garbage] = (await edgegwAll([
    ['verify', '--alg', 'ES256', '--pub', pub, j.output.cbor],
    ['verify', '--alg', 'ES256', '--pub', pub.slice(2), j.output.cbor],
    ['verify', '--alg', 'ES256', '--pub', pub, 'ff00'],
  ])) as [Run, Run, Run];
  t.equal(ok.code, 0);
  t.same(ok.json, { valid: true, alg: 'ES256', payload_hex: toHex(new TextEncoder().encode('This is the content.')), kid_hex: '3131' });
  t.equal(shortKey.code, 1);
  t.same(shortKey.json, { valid: false, code: 'EDGEGW_COSE_BAD_KEY' });
  t.equal(garbage.code, 1);
  t.same(garbage.json, { valid: false, code: 'EDGEGW_CBOR_MALFORMED' });
});

t.test('bad usage exits 2 with a message on stderr and nothing on stdout', async (t) => {
  const { privateKey, publicKey } = generateKeyPair('EdDSA');
  const [pub, priv] = [toHex(publicKey), toHex(privateKey)];
  const cases: [string, string[]][] = [
    ['odd-length hex', ['verify', '--alg', 'EdDSA', '--pub', pub, 'abc']],
    ['missing --pub', ['verify', '--alg', 'EdDSA', 'a0']],
    ['unknown alg', ['verify', '--alg', 'RS256', '--pub', pub, 'a0']],
    ['missing argument', ['verify', '--alg', 'EdDSA', '--pub', pub]],
    ['both --aad and --topic', ['verify', '--alg', 'EdDSA', '--pub', pub, '--aad', '00', '--topic', 'x', 'a0']],
    ['both --key and --key-file', ['sign', '--alg', 'EdDSA', '--key', priv, '--key-file', '/nonexistent', 'a0']],
    ['key size not that of --alg', ['decrypt', '--alg', 'A256GCM', '--key', '00'.repeat(16), 'a0']],
  ];
  const runs = await edgegwAll(cases.map(([, args]) => args));
  for (const [i, [name]] of cases.entries()) {
    const r = runs[i]!;
    t.equal(r.code, 2, `${name}: exit 2`);
    t.not(r.stderr.trim(), '', `${name}: says why on stderr`);
    t.equal(r.stdout, '', `${name}: no JSON`);
  }
});

t.test('decrypt opens the cose-wg Encrypt0 vectors, with the key on the command line or in a 0600 file', async (t) => {
  const good = readJson(join(VECTORS_DIR, 'cose/aes-gcm-examples/aes-gcm-enc-01.json'));
  const key = toHex(keyField(good.input.encrypted.recipients[0].key, 'k'));
  const plain = toHex(new TextEncoder().encode(good.input.plaintext));
  const dir = t.testdir({ 'aes.key': `${key}\n`, 'open.key': key });
  chmodSync(join(dir, 'aes.key'), 0o600);
  chmodSync(join(dir, 'open.key'), 0o644);
  const tampered = readJson(join(VECTORS_DIR, 'cose/aes-gcm-examples/aes-gcm-enc-04.json'));
  const [ok, bad, fromFile, readable] = (await edgegwAll([
    ['decrypt', '--alg', 'A128GCM', '--key', key, good.output.cbor],
    ['decrypt', '--alg', 'A128GCM', '--key', key, tampered.output.cbor],
    ['decrypt', '--alg', 'A128GCM', '--key-file', join(dir, 'aes.key'), good.output.cbor],
    ['decrypt', '--alg', 'A128GCM', '--key-file', join(dir, 'open.key'), good.output.cbor],
  ])) as [Run, Run, Run, Run];
  t.equal(ok.code, 0);
  t.same(ok.json, { plaintext_hex: plain });
  t.equal(bad.code, 1);
  t.same(bad.json, { code: 'EDGEGW_COSE_DECRYPT_FAILED' }, 'GCM tag changed');
  t.equal(fromFile.code, 0);
  t.same(fromFile.json, { plaintext_hex: plain }, 'key from a 0600 file');
  t.equal(readable.code, 1, 'a key file others can read is refused');
  t.match(readable.stderr, /EDGEGW_SECRET_FILE_MODE/);
});

t.test('sign reads its private key from a 0600 file', async (t) => {
  const keys = generateKeyPair('ES256');
  const dir = t.testdir({});
  const file = join(dir, 'device.key');
  writeFileSync(file, toHex(keys.privateKey), { mode: 0o600 });
  const [signed, zero] = (await edgegwAll([
    ['sign', '--alg', 'ES256', '--key-file', file, 'a0'],
    ['sign', '--alg', 'ES256', '--key', '00'.repeat(32), 'a0'],
  ])) as [Run, Run];
  t.equal(signed.code, 0);
  t.equal(signed.json.pub_hex, toHex(keys.publicKey));
  t.equal(zero.code, 1, 'an out-of-range P-256 scalar is refused');
  t.match(zero.stderr, /EDGEGW_COSE_BAD_KEY/);
});
