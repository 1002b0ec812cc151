// PROTOCOL.md §7 frames, byte for byte. Each expected frame is written out twice: as the
// literal line bytes, and rebuilt here from a CBOR map spelled by hand from the §7 table, a
// CRC-32 (zlib, checked against the CRC catalogue's check value) and a SLIP escaper written
// from RFC 1055 — so the encoder is checked against an independent reading of the contract.
import t from 'tap';
import { createPublicKey, verify } from 'node:crypto';
import { crc32 } from 'node:zlib';
import {
  credentialsDigest,
  decodeFrameContent,
  encodeFrame,
  encodeFrameCbor,
  exampleFrames,
  FRAME_ERROR,
  FRAME_TYPE,
  frameErrorFor,
  nobleSigner,
  popMessage,
  type Frame,
} from '../../protocol/index.js';
import { hex, toHex } from './_vectors.js';

const ascii = (s: string): string => Buffer.from(s, 'ascii').toString('hex');

/** RFC 1055: END (c0) and ESC (db) inside a packet become ESC ESC_END (db dc) and ESC ESC_ESC (db dd). */
function slipHex(contentHex: string): string {
  const body = (contentHex.match(/../g) ?? []).map((b) => (b === 'c0' ? 'dbdc' : b === 'db' ? 'dbdd' : b)).join('');
  return `c0${body}c0`;
}

function lineHex(cborHex: string): string {
  const crc = crc32(hex(cborHex)).toString(16).padStart(8, '0'); // big-endian
  return slipHex(cborHex + crc);
}

// Fixed inputs: RFC 8032 §7.1 TEST 1 key for the device, TEST 2 public key for the gateway.
const NONCE = '000102030405060708090a0b0c0d0e0f';
const DEVICE_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const DEVICE_PUB = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const GATEWAY_PUB = '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c';
const DER = '3003020101';
const SN = ascii('SN-0001');

const device = nobleSigner('EdDSA', hex(DEVICE_SEED));
const pop = toHex(device.sign(popMessage(hex(NONCE), device.publicKey)));

const credentials: Frame = {
  type: FRAME_TYPE.CREDENTIALS,
  deviceId: 'SN-0001',
  deviceCert: hex(DER),
  caCert: hex(DER),
  gatewayPublicKey: hex(GATEWAY_PUB),
  brokerUrls: ['mqtts://gateway.local:8883'],
  config: new Map<unknown, unknown>([['telemetryIntervalS', 60]]),
};
const credentialsCbor =
  'a7' + '0003' + '0167' + SN + '0245' + DER + '0345' + DER + '045820' + GATEWAY_PUB +
  '0581781a' + ascii('mqtts://gateway.local:8883') + '06a172' + ascii('telemetryIntervalS') + '183c';
const digest = toHex(credentialsDigest(hex(credentialsCbor)));

const CASES: { name: string; frame: Frame; cbor: string; line: string }[] = [
  {
    name: 'HELLO',
    frame: { type: FRAME_TYPE.HELLO, nonce: hex(NONCE), gatewayId: 'gw-example' },
    cbor: 'a3' + '0001' + '0150' + NONCE + '026a' + ascii('gw-example'),
    line: 'c0a300010150000102030405060708090a0b0c0d0e0f026a67772d6578616d706c656f91b605c0',
  },
  {
    name: 'IDENTITY',
    frame: {
      type: FRAME_TYPE.IDENTITY,
      deviceId: 'SN-0001',
      alg: 'EdDSA',
      publicKey: hex(DEVICE_PUB),
      pop: hex(pop),
      firmwareVersion: '1.4.2',
      hardwareModel: 'edge-sensor-r2',
    },
    cbor: 'a7' + '0002' + '0167' + SN + '0227' + '035820' + DEVICE_PUB + '045840' + pop + '0565' + ascii('1.4.2') + '066e' + ascii('edge-sensor-r2'),
    line:
      'c0a700020167534e2d303030310227035820d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a045840' +
      '133ae60d0125fcb748bb93501362f663581843e6ea780ba626a850ccfa4a059e4a370306d5fb882b2a8d9a74bd3c3f921c4c96c51d6145139c38814fc9cfa806' +
      '0565312e342e32066e656467652d73656e736f722d7232fc3941b7c0',
  },
  {
    name: 'CREDENTIALS',
    frame: credentials,
    cbor: credentialsCbor,
    line:
      'c0a700030167534e2d3030303102453003020101034530030201010458203d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cdbdccd55f12af4660c' +
      '0581781a6d717474733a2f2f676174657761792e6c6f63616c3a3838383306a17274656c656d65747279496e74657276616c53183c69993131c0',
  },
  {
    name: 'COMMIT',
    frame: { type: FRAME_TYPE.COMMIT, credentialsDigest: hex(digest) },
    cbor: 'a2' + '0004' + '015820' + digest,
    line: 'c0a20004015820dfa1721d666c7dd4e5e8edbd30526d4d471e00b4036309dbdc3716612dbf44240df2bc4958c0',
  },
  {
    name: 'DONE',
    frame: { type: FRAME_TYPE.DONE, deviceId: 'SN-0001' },
    cbor: 'a2' + '0005' + '0167' + SN,
    line: 'c0a200050167534e2d303030318082c236c0',
  },
  {
    name: 'ERROR',
    frame: { type: FRAME_TYPE.ERROR, code: FRAME_ERROR.POP_FAILED, message: 'proof of possession failed' },
    cbor: 'a3' + '000f' + '0103' + '02781a' + ascii('proof of possession failed'),
    line: 'c0a3000f010302781a70726f6f66206f6620706f7373657373696f6e206661696c65648373b23fc0',
  },
];

t.test('zlib.crc32 is the IEEE 802.3 CRC-32 of PROTOCOL.md §7', async (t) => {
  // CRC RevEng catalogue, CRC-32/ISO-HDLC (the IEEE 802.3 CRC): check = 0xcbf43926 for "123456789".
  t.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
});

t.test('each frame type encodes to its known line bytes', async (t) => {
  for (const c of CASES) {
    t.equal(lineHex(c.cbor), c.line, `${c.name}: the hand-built frame is the literal`);
    t.equal(toHex(encodeFrameCbor(c.frame)), c.cbor, `${c.name}: CBOR`);
    t.equal(toHex(encodeFrame(c.frame)), c.line, `${c.name}: line bytes`);
  }
  t.ok(CASES.some((c) => c.line.includes('dbdc')), 'the vectors exercise SLIP escaping of END');
});

t.test('each known frame decodes back to its fields', async (t) => {
  for (const c of CASES) {
    const content = hex(c.cbor + crc32(hex(c.cbor)).toString(16).padStart(8, '0'));
    const r = decodeFrameContent(content);
    t.same(r, { ok: true, value: c.frame }, c.name);
  }
});

t.test('exampleFrames gives the docs the same bytes, with diagnostic notation', async (t) => {
  const examples = exampleFrames();
  t.same(examples.map((e) => e.name), CASES.map((c) => c.name));
  for (const [i, e] of examples.entries()) t.equal(e.hex, CASES[i]!.line, `${e.name} hex`);
  t.equal(examples[0]!.diag, `{0: 1, 1: h'${NONCE}', 2: "gw-example"}`);
  t.equal(examples[4]!.diag, '{0: 5, 1: "SN-0001"}');
  t.equal(examples[5]!.diag, '{0: 15, 1: 3, 2: "proof of possession failed"}');
  t.match(examples[2]!.diag, /^\{0: 3, 1: "SN-0001", 2: h'3003020101', .*5: \["mqtts:\/\/gateway\.local:8883"\], 6: \{"telemetryIntervalS": 60\}\}$/);
});

t.test('the IDENTITY pop is a signature over "edgegw-provision-v1" ‖ nonce ‖ raw public key', async (t) => {
  const msg = popMessage(hex(NONCE), hex(DEVICE_PUB));
  t.equal(toHex(msg), ascii('edgegw-provision-v1') + NONCE + DEVICE_PUB);
  t.equal(toHex(device.publicKey), DEVICE_PUB, 'RFC 8032 §7.1 TEST 1 public key');
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(DEVICE_PUB, 'hex').toString('base64url') }, format: 'jwk' });
  t.ok(verify(null, msg, key, hex(pop)), 'node:crypto verifies the example pop');
});

t.test('the COMMIT digest is SHA-256 of the CREDENTIALS CBOR bytes', async (t) => {
  // FIPS 180-2 Appendix B.1: SHA-256("abc").
  t.equal(toHex(credentialsDigest(Buffer.from('abc'))), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  t.equal(toHex(credentialsDigest(encodeFrameCbor(credentials))), digest);
});

t.test('frame rejections map to the ERROR codes of §7', async (t) => {
  t.equal(frameErrorFor('EDGEGW_FRAME_BAD_CRC'), 1);
  t.equal(frameErrorFor('EDGEGW_FRAME_TOO_LARGE'), 1);
  t.equal(frameErrorFor('EDGEGW_FRAME_MALFORMED'), 2);
  t.equal(frameErrorFor('EDGEGW_INTERNAL'), 6);
  t.same(FRAME_ERROR, { BAD_FRAME: 1, BAD_MESSAGE: 2, POP_FAILED: 3, REFUSED: 4, TIMEOUT: 5, INTERNAL: 6 });
  t.same(FRAME_TYPE, { HELLO: 1, IDENTITY: 2, CREDENTIALS: 3, COMMIT: 4, DONE: 5, ERROR: 15 });
});
