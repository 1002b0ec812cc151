// Each malformed or tampered sample the profiles send must fail at the check PROTOCOL.md §3
// names, checked here with the protocol library alone (the fleet test checks the gateway).
import t from 'tap';
import { MALFORMED_SAMPLES, tamper } from '../../device-sim/index.js';
import { decodeSign1, encodeTelemetryPayload, generateKeyPair, nobleSigner, parseTelemetryPayload, signSign1, verifySign1Noble, type CoseAlg } from '../../protocol/index.js';

const utf8 = new TextEncoder();

/** The first failing check of §3 that needs no registry: structure, signature, payload. */
function firstFailure(bytes: Uint8Array, alg: CoseAlg, pub: Uint8Array, topic: string): string {
  const msg = decodeSign1(bytes);
  if (!msg.ok) return msg.reason;
  const sig = verifySign1Noble(msg.value, alg, pub, utf8.encode(topic));
  if (!sig.ok) return sig.reason;
  const payload = parseTelemetryPayload(msg.value.payload);
  return payload.ok ? 'valid' : payload.reason;
}

for (const alg of ['EdDSA', 'ES256'] as CoseAlg[]) {
  t.test(`malformed samples fail at their named check (${alg})`, (t) => {
    const { privateKey, publicKey } = generateKeyPair(alg);
    const signer = nobleSigner(alg, privateKey);
    const topic = 'd/dev-1/t/junk';
    for (const [i, sample] of MALFORMED_SAMPLES.entries()) {
      t.equal(firstFailure(sample.make(signer, topic, 10 + i, Date.now()), alg, publicKey, topic), sample.code, sample.name);
    }
    t.end();
  });

  t.test(`tampered messages keep their structure and fail the signature (${alg})`, (t) => {
    const { privateKey, publicKey } = generateKeyPair(alg);
    const signer = nobleSigner(alg, privateKey);
    const topic = 'd/dev-1/t/tampered';
    const signed = signSign1(signer, encodeTelemetryPayload({ seq: 1, ts: 5, body: new Uint8Array(16) }), utf8.encode(topic));
    t.equal(firstFailure(signed, alg, publicKey, topic), 'valid', 'the original is valid');
    t.equal(firstFailure(signed, alg, publicKey, 'd/dev-1/t/other'), 'EDGEGW_COSE_BAD_SIGNATURE', 'moved to another topic');
    const swapped = tamper(signed, { payload: encodeTelemetryPayload({ seq: 1, ts: 5, body: new Uint8Array(16).fill(1) }) });
    t.equal(firstFailure(swapped, alg, publicKey, topic), 'EDGEGW_COSE_BAD_SIGNATURE', 'payload swapped');
    for (const bit of [0, 255, 256, 511]) {
      t.equal(firstFailure(tamper(signed, { flipSignatureBit: bit }), alg, publicKey, topic), 'EDGEGW_COSE_BAD_SIGNATURE', `signature bit ${bit} flipped`);
    }
    t.end();
  });
}
