// `ed25519Verifier` picks the library that checks Ed25519 signatures (protocol/ed25519.ts), on
// the main thread and on every verify worker. Which one made a verdict shows in a signature
// with a small-order R (test/helpers/ed25519.ts): node:crypto accepts it, libsodium refuses it.
// An honest message is accepted either way.
import t from 'tap';
import { startGateway } from '../helpers/gateway.js';
import { makeDevice, connectDevice, signedTelemetry, publishQos1 } from '../helpers/devices.js';
import { neutralRSigner } from '../helpers/ed25519.js';

const CASES = [
  { verifier: 'node', workers: 1, accepted: true },
  { verifier: 'libsodium', workers: 1, accepted: false },
  { verifier: 'auto', workers: 1, accepted: false },
  { verifier: 'node', workers: 0, accepted: true },
  { verifier: 'libsodium', workers: 0, accepted: false },
] as const;

for (const c of CASES) {
  const where = c.workers === 0 ? 'on the main thread' : 'on a verify worker';
  t.test(`ed25519Verifier '${c.verifier}' ${where}: the small-order R is ${c.accepted ? 'accepted' : 'refused'}`, async (t) => {
    const gw = await startGateway(t, { ed25519Verifier: c.verifier, verifyWorkers: c.workers, verifyInlineWhenIdle: false });
    t.equal(gw.ready.ed25519Verifier, c.verifier === 'node' ? 'node' : 'libsodium', 'the ready line names the library');
    const dev = await makeDevice(gw.registrar, 'holder');
    const client = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
    t.teardown(() => void client.end(true));
    const counters = gw.gateway.store.counters;

    const honest = signedTelemetry(dev, 1);
    await publishQos1(client, honest.topic, honest.payload);
    t.equal(counters.get('accepted'), 1, 'an honest signature is accepted');

    const crafted = signedTelemetry({ id: dev.id, signer: neutralRSigner(dev.privateKey) }, 2);
    await publishQos1(client, crafted.topic, crafted.payload);
    t.equal(counters.get('accepted'), c.accepted ? 2 : 1);
    t.equal(counters.get('rejected.EDGEGW_COSE_BAD_SIGNATURE'), c.accepted ? 0 : 1);
    t.equal(gw.gateway.verifyStats().jobs, c.workers === 0 ? 0 : 2, `both checks ran ${where}`);
  });
}
