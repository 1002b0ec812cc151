// Issue 4, done-when: a wrong cloud server certificate is refused, an event raised, nothing
// sent; a gateway certificate the cloud does not know is a non-retryable failure with an
// event. Real TLS against a real cloud-sim, with certificates from a second, unrelated PKI.
// In both cases the relay halts (no backoff loop against a channel it cannot trust), the
// records stay in the outbox, and `resume()` tries once more.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRelay } from '../../gateway/relay/index.js';
import { createPki } from '../../provisioning/pki/index.js';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../helpers/tmp.js';
import { collectAlerts, fill, makeFleet, openStore, relayOptions, startCloud, waitFor } from './fixtures/fleet.js';

async function otherPki(t: Parameters<typeof tempDir>[0]) {
  const pki = createPki({ log: silentLogger(), clock: systemClock }, { dir: join(tempDir(t), 'pki'), caName: 'not the cloud' });
  await pki.ensure();
  const client = await pki.issueClientCert({ cn: 'gateway' });
  return { caPem: `${pki.rootCaPem}\n${pki.issuingCaPem}`, certPem: client.chainPem, keyPem: client.keyPem };
}

t.test('a cloud certificate from another CA: refused, critical event, nothing sent, even with NODE_TLS_REJECT_UNAUTHORIZED=0', async (t) => {
  const saved = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  t.teardown(() => {
    if (saved === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    else process.env.NODE_TLS_REJECT_UNAUTHORIZED = saved;
  });
  const fleet = makeFleet(2, 'tls');
  const store = openStore(t, tempDir(t));
  const cloud = await startCloud(t, tempDir(t), fleet);
  await fill(store, fleet, 20);
  const other = await otherPki(t);
  const { alerts, events } = collectAlerts();
  const { caFile: _ca, ...rest } = relayOptions(cloud.ready);
  const relay = createRelay({ store, log: silentLogger(), clock: systemClock, alerts }, { ...rest, caPem: other.caPem });
  await relay.start();
  t.teardown(() => relay.stop());

  await waitFor('halted', () => relay.stats().state === 'halted', 10_000);
  const halt = events.filter((e) => e.kind === 'relay_halted');
  t.equal(halt.length, 1, 'one event, however many lanes hit it');
  t.equal(halt[0]!.code, 'EDGEGW_RELAY_TLS');
  t.equal(halt[0]!.severity, 'critical');
  t.equal(relay.stats().halted?.code, 'EDGEGW_RELAY_TLS');
  t.equal(cloud.sim.stats().requests, 0, 'no request reached the cloud');
  t.equal(store.counters.get('outbox_rows'), 40, 'the records stay in the outbox');
  t.equal(store.outbox.deadLetterCount(), 0, 'a certificate problem never dead-letters data');

  relay.resume();
  await waitFor('halted again', () => events.filter((e) => e.kind === 'relay_halted').length === 2, 10_000);
  t.equal(relay.stats().state, 'halted', 'resume() tries again and halts again while the certificate is wrong');
  t.equal(cloud.sim.stats().requests, 0);
});

t.test('a cloud certificate for another name: refused as a TLS failure', async (t) => {
  const fleet = makeFleet(1, 'name');
  const store = openStore(t, tempDir(t));
  await fill(store, fleet, 5);
  // The server certificate names localhost, 127.0.0.1 and ::1; 127.0.0.2 is loopback too, but not in it.
  const cloudDir = tempDir(t);
  const { createCloudSim } = await import('../../cloud-sim/index.js');
  const { writeExport } = await import('./fixtures/fleet.js');
  writeExport(join(cloudDir, 'devices.json'), fleet);
  const sim = createCloudSim({ log: silentLogger(), clock: systemClock }, { dataDir: cloudDir, host: '127.0.0.2', port: 0, devicesFile: join(cloudDir, 'devices.json') });
  const ready = await sim.start();
  t.teardown(() => sim.stop());
  const { alerts, events } = collectAlerts();
  const relay = createRelay({ store, log: silentLogger(), clock: systemClock, alerts }, relayOptions(ready));
  await relay.start();
  t.teardown(() => relay.stop());
  await waitFor('halted', () => relay.stats().state === 'halted', 10_000);
  t.equal(events.find((e) => e.kind === 'relay_halted')?.code, 'EDGEGW_RELAY_TLS');
  t.match(relay.stats().halted?.detail ?? '', /ALTNAME|HOSTNAME/);
  t.equal(sim.stats().requests, 0);
});

t.test('a gateway certificate the cloud does not know: non-retryable, critical event, records kept', async (t) => {
  const fleet = makeFleet(2, 'cli');
  const store = openStore(t, tempDir(t));
  const cloud = await startCloud(t, tempDir(t), fleet);
  await fill(store, fleet, 20);
  const other = await otherPki(t);
  const { alerts, events } = collectAlerts();
  const { certFile: _c, keyFile: _k, ...rest } = relayOptions(cloud.ready, { maxInFlight: 2 });
  const relay = createRelay({ store, log: silentLogger(), clock: systemClock, alerts }, { ...rest, certPem: other.certPem, keyPem: other.keyPem });
  await relay.start();
  t.teardown(() => relay.stop());

  await waitFor('halted', () => relay.stats().state === 'halted', 10_000);
  const halt = events.filter((e) => e.kind === 'relay_halted');
  t.equal(halt.length, 1);
  t.equal(halt[0]!.code, 'EDGEGW_RELAY_CLIENT_CERT_REFUSED');
  t.equal(halt[0]!.severity, 'critical');
  t.equal(cloud.sim.stats().requests, 0, 'the cloud processed nothing');
  t.ok(cloud.sim.stats().tlsRefused >= 1, 'the cloud refused the handshake');
  // Not retried on the backoff schedule: over the next second no further handshakes arrive.
  const refused = cloud.sim.stats().tlsRefused;
  await new Promise((r) => setTimeout(r, 1000));
  t.ok(cloud.sim.stats().tlsRefused <= Math.max(refused, 2), 'no retry loop while halted');
  t.equal(relay.stats().retries, 0, 'no backoff retries');
  t.equal(store.counters.get('outbox_rows'), 40, 'records kept');
  t.equal(store.outbox.deadLetterCount(), 0);

  // The real credentials still work: a relay with them drains the same outbox.
  await relay.stop();
  const good = createRelay({ store, log: silentLogger(), clock: systemClock, alerts }, {
    ...relayOptions(cloud.ready),
    certPem: readFileSync(cloud.ready.clientCertFile, 'utf8'),
    keyPem: readFileSync(cloud.ready.clientKeyFile, 'utf8'),
    certFile: undefined,
    keyFile: undefined,
  });
  await good.start();
  t.teardown(() => good.stop());
  await waitFor('drained', () => store.counters.get('outbox_rows') === 0, 10_000);
  t.equal(cloud.sim.stats().stored.records, 40);
});
