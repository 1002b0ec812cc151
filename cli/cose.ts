/**
 * `edgegw cose ...`: COSE tools for the firmware and cloud teams, on the same code the
 * gateway runs (protocol/). Each command prints one JSON line on stdout. Exit codes: 0 valid
 * / done, 1 the message is invalid (the JSON carries the code), 2 bad usage (message on
 * stderr). Private keys may come from a file (`--key-file`, mode 0600) rather than the
 * command line, where other local users can read them in the process list.
 */
import { Option, type Command } from 'commander';
import { readSecretFile } from '../common/files.js';
import { EdgegwError, type Result } from '../common/errors.js';
import {
  decodeSign1,
  decrypt0,
  generateKeyPair,
  importPublicKey,
  kidOf,
  nobleSigner,
  signSign1,
  verifySign1,
  type ContentAlg,
  type CoseAlg,
} from '../protocol/index.js';

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

function parseHex(name: string, value: string): Uint8Array {
  if (!HEX.test(value)) throw new EdgegwError('EDGEGW_USAGE', `${name} must be hex with an even number of digits`);
  return new Uint8Array(Buffer.from(value, 'hex'));
}

function toHex(bytes: Uint8Array | undefined): string | null {
  return bytes === undefined ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function print(obj: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

/** Prints the rejection and marks the run invalid (exit 1). */
function invalid(r: { ok: false; reason: string }, extra: Record<string, unknown> = {}): void {
  print({ ...extra, code: r.reason });
  process.exitCode = 1;
}

/** Exactly one of --key HEX and --key-file PATH (a file holding the hex, mode 0600). */
function privateKey(opts: { key?: string; keyFile?: string }): Uint8Array {
  if ((opts.key === undefined) === (opts.keyFile === undefined)) throw new EdgegwError('EDGEGW_USAGE', 'give exactly one of --key and --key-file');
  if (opts.key !== undefined) return parseHex('--key', opts.key);
  return parseHex('--key-file contents', readSecretFile(opts.keyFile!).toString('utf8').trim());
}

const sigAlg = (): Option => new Option('--alg <alg>', 'signature algorithm').choices(['EdDSA', 'ES256']).makeOptionMandatory();
const aadOption = (): Option => new Option('--aad <hex>', 'external_aad in hex').default('');
const topicOption = (): Option => new Option('--topic <topic>', 'external_aad given as the MQTT topic it is for (PROTOCOL.md section 3)').conflicts('aad');

/** --topic TOPIC is --aad with the topic's UTF-8 bytes. */
function externalAad(opts: { aad: string; topic?: string }): Uint8Array {
  return opts.topic !== undefined ? new TextEncoder().encode(opts.topic) : parseHex('--aad', opts.aad);
}

export function registerCose(program: Command): void {
  const cose = program.command('cose').description('sign, verify and decrypt COSE messages (PROTOCOL.md section 3)');

  cose
    .command('verify')
    .description('verify a tagged COSE_Sign1; prints {"valid":true,"payload_hex","kid_hex"} or {"valid":false,"code"}')
    .addOption(sigAlg())
    .requiredOption('--pub <hex>', 'raw public key: Ed25519 32 bytes, P-256 65 bytes 04||X||Y')
    .option('--kid <hex>', 'expected kid; a message with another kid is invalid')
    .addOption(aadOption())
    .addOption(topicOption())
    .argument('<cose-hex>', 'the COSE_Sign1 bytes in hex')
    .action((coseHex: string, opts: { alg: CoseAlg; pub: string; kid?: string; aad: string; topic?: string }) => {
      const bytes = parseHex('COSE_HEX', coseHex);
      const pub = parseHex('--pub', opts.pub);
      const expectedKid = opts.kid === undefined ? undefined : parseHex('--kid', opts.kid);
      const aad = externalAad(opts);
      const key = importPublicKey(opts.alg, pub);
      if (!key.ok) return invalid(key, { valid: false });
      const msg = decodeSign1(bytes);
      if (!msg.ok) return invalid(msg, { valid: false });
      if (expectedKid !== undefined && (msg.value.kid === undefined || Buffer.compare(msg.value.kid, expectedKid) !== 0)) {
        return invalid({ ok: false, reason: 'EDGEGW_COSE_KID_MISMATCH' }, { valid: false });
      }
      const verified: Result<void> = verifySign1(msg.value, key.value, aad);
      if (!verified.ok) return invalid(verified, { valid: false });
      print({ valid: true, alg: msg.value.alg, payload_hex: toHex(msg.value.payload), kid_hex: toHex(msg.value.kid) });
    });

  cose
    .command('sign')
    .description('sign a payload as PROTOCOL.md section 3 lays it out; prints {"cose_hex","kid_hex","pub_hex"}')
    .addOption(sigAlg())
    .option('--key <hex>', 'raw private key: Ed25519 32-byte seed, P-256 32-byte scalar')
    .option('--key-file <path>', 'a file (mode 0600) holding the private key in hex')
    .addOption(aadOption())
    .addOption(topicOption())
    .option('--untagged', 'omit CBOR tag 18 (invalid on the wire; for testing receivers)')
    .argument('<payload-hex>', 'the payload bytes in hex')
    .action((payloadHex: string, opts: { alg: CoseAlg; key?: string; keyFile?: string; aad: string; topic?: string; untagged?: boolean }) => {
      const payload = parseHex('PAYLOAD_HEX', payloadHex);
      const aad = externalAad(opts);
      const signer = nobleSigner(opts.alg, privateKey(opts));
      const cose = signSign1(signer, payload, aad, { tagged: opts.untagged !== true });
      print({ cose_hex: toHex(cose), kid_hex: toHex(signer.kid), pub_hex: toHex(signer.publicKey) });
    });

  cose
    .command('decrypt')
    .description('open a COSE_Encrypt0 with a shared key; prints {"plaintext_hex"} or {"code"}')
    .addOption(new Option('--alg <alg>', 'content algorithm').choices(['A128GCM', 'A256GCM']).makeOptionMandatory())
    .option('--key <hex>', 'the shared AES key (16 bytes for A128GCM, 32 for A256GCM)')
    .option('--key-file <path>', 'a file (mode 0600) holding the key in hex')
    .option('--base-iv <hex>', 'the 12-byte context IV, for messages carrying a Partial IV (RFC 9052 section 3.1)')
    .addOption(aadOption())
    .argument('<cose-hex>', 'the COSE_Encrypt0 bytes in hex')
    .action((coseHex: string, opts: { alg: ContentAlg; key?: string; keyFile?: string; baseIv?: string; aad: string }) => {
      const bytes = parseHex('COSE_HEX', coseHex);
      const aad = parseHex('--aad', opts.aad);
      const key = privateKey(opts);
      const wanted = opts.alg === 'A128GCM' ? 16 : 32;
      if (key.length !== wanted) throw new EdgegwError('EDGEGW_USAGE', `${opts.alg} needs a ${wanted}-byte key`);
      const baseIv = opts.baseIv === undefined ? undefined : parseHex('--base-iv', opts.baseIv);
      const r = decrypt0(bytes, key, aad, baseIv === undefined ? {} : { baseIv });
      if (!r.ok) return invalid(r);
      print({ plaintext_hex: toHex(r.value) });
    });

  cose
    .command('keygen')
    .description('generate a device key pair in the raw formats of PROTOCOL.md section 1')
    .addOption(sigAlg())
    .action((opts: { alg: CoseAlg }) => {
      const { privateKey: priv, publicKey } = generateKeyPair(opts.alg);
      print({ alg: opts.alg, priv_hex: toHex(priv), pub_hex: toHex(publicKey), kid_hex: toHex(kidOf(publicKey)) });
    });
}
