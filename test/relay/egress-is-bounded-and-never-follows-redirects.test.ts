// Issue 4 §1, egress safety: only the configured origin, no way to disable certificate
// verification, redirects not followed, the response size and every phase (connect, headers,
// body) bounded, credentials never logged. Each misbehaving cloud here is a real HTTPS server
// with mutual TLS on a loopback port; the relay's records must stay in the outbox throughout.
import t from 'tap';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRelay, checkUpstream, parseRelayOptions } from '../../gateway/relay/index.js';
import { createPki } from '../../provisioning/pki/index.js';
import { systemClock } from '../../common/clock.js';
import { createLogger, silentLogger } from '../../common/log.js';
import { isEdgegwError } from '../../common/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { collectAlerts, fill, makeFleet, openStore, waitFor, type Teardown } from './fixtures/fleet.js';

interface Tls {
  server: { key: string; cert: string; ca: string };
  client: { caPem: string; certPem: string; keyPem: string };
}

async function pki(t: Teardown & Parameters<typeof tempDir>[0]): Promise<Tls> {
  const p = createPki({ log: silentLogger(), clock: systemClock }, { dir: join(tempDir(t), 'pki'), caName: 'egress test' });
  await p.ensure();
  const client = await p.issueClientCert({ cn: 'gw-egress' });
  return { server: p.serverTls(), client: { caPem: `${p.rootCaPem}\n${p.issuingCaPem}`, certPem: client.chainPem, keyPem: client.keyPem } };
}

async function mtlsServer(t: Teardown, tls: Tls, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string; requests: () => number }> {
  let n = 0;
  const sockets = new Set<Socket>();
  const server = createHttpsServer({ ...tls.server, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    n++;
    handler(req, res);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { server, url: `https://127.0.0.1:${(server.address() as { port: number }).port}`, requests: () => n };
}

async function relayAgainst(t: Teardown & Parameters<typeof tempDir>[0], tls: Tls, url: string, extra: Record<string, unknown> = {}, log = silentLogger()) {
  const fleet = makeFleet(1, 'egress');
  const store = openStore(t, tempDir(t));
  await fill(store, fleet, 5);
  const { alerts, events } = collectAlerts();
  const relay = createRelay({ store, log, clock: systemClock, alerts }, {
    url,
    ...tls.client,
    gatewayId: 'gw-egress',
    maxInFlight: 1,
    batchMaxAgeMs: 0,
    retry: { initialDelayMs: 20, maxDelayMs: 100 },
    breaker: { threshold: 1000 },
    ...extra,
  });
  await relay.start();
  t.teardown(() => relay.stop());
  return { relay, store, events };
}

t.test('a redirect is never followed: the other origin sees nothing, the batch stays, one alert', async (t) => {
  const tls = await pki(t);
  const elsewhere = await mtlsServer(t, tls, (_req, res) => res.writeHead(200).end());
  const cloud = await mtlsServer(t, tls, (req, res) => {
    req.resume();
    res.writeHead(307, { location: `${elsewhere.url}/v1/ingest` }).end();
  });
  const { relay, store, events } = await relayAgainst(t, tls, cloud.url);
  await waitFor('several redirects answered', () => cloud.requests() >= 3, 10_000);
  t.equal(elsewhere.requests(), 0, 'the redirect target was never contacted');
  t.equal(relay.stats().lastFailure?.code, 'EDGEGW_RELAY_ORIGIN_REFUSED');
  t.equal(store.counters.get('outbox_rows'), 5, 'nothing deleted');
  const alerts = events.filter((e) => e.code === 'EDGEGW_RELAY_ORIGIN_REFUSED');
  t.equal(alerts.length, 1, 'one alert per failure streak, not one per attempt');
  t.equal(store.outbox.deadLetterCount(), 0);
});

t.test('a response over maxResponseBytes is refused as a transient failure; the records stay', async (t) => {
  const tls = await pki(t);
  const cloud = await mtlsServer(t, tls, (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end(Buffer.alloc(512 * 1024, 0x20));
  });
  const { relay, store, events } = await relayAgainst(t, tls, cloud.url, { maxResponseBytes: 4096 });
  await waitFor('refused twice', () => cloud.requests() >= 2, 10_000);
  t.equal(relay.stats().lastFailure?.code, 'EDGEGW_RELAY_RESPONSE_TOO_LARGE');
  t.ok(events.some((e) => e.code === 'EDGEGW_RELAY_RESPONSE_TOO_LARGE'), 'alerted');
  t.equal(store.counters.get('outbox_rows'), 5, 'not acknowledged on an oversized answer');
});

t.test('headers that never come time out at headersMs', async (t) => {
  const tls = await pki(t);
  const cloud = await mtlsServer(t, tls, (req) => req.resume());
  const started = Date.now();
  const { relay, store } = await relayAgainst(t, tls, cloud.url, { timeouts: { headersMs: 300, requestMs: 10_000 } });
  await waitFor('a timeout', () => relay.stats().lastFailure !== undefined, 10_000);
  t.equal(relay.stats().lastFailure?.code, 'EDGEGW_RELAY_TIMEOUT');
  t.match(relay.stats().lastFailure?.detail ?? '', /HEADERS_TIMEOUT/);
  t.ok(Date.now() - started < 5000, 'bounded by the headers timeout, not the request deadline');
  t.equal(store.counters.get('outbox_rows'), 5);
});

t.test('a body that stalls times out at bodyMs', async (t) => {
  const tls = await pki(t);
  const cloud = await mtlsServer(t, tls, (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
    res.write('{"partial":');
  });
  const { relay, store } = await relayAgainst(t, tls, cloud.url, { timeouts: { bodyMs: 300, requestMs: 10_000 } });
  await waitFor('a timeout', () => relay.stats().lastFailure !== undefined, 10_000);
  t.equal(relay.stats().lastFailure?.code, 'EDGEGW_RELAY_TIMEOUT');
  t.match(relay.stats().lastFailure?.detail ?? '', /BODY_TIMEOUT/);
  t.equal(store.counters.get('outbox_rows'), 5, 'a 200 whose body never completes is not an acknowledgement');
});

t.test('a peer that never completes the TLS handshake times out at connectMs', async (t) => {
  const sockets = new Set<Socket>();
  const silent: NetServer = createNetServer((s) => sockets.add(s));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => silent.close(() => resolve()));
  });
  const tls = await pki(t);
  const { relay, store } = await relayAgainst(t, tls, `https://127.0.0.1:${(silent.address() as { port: number }).port}`, { timeouts: { connectMs: 300, requestMs: 10_000 } });
  await waitFor('a timeout', () => relay.stats().lastFailure !== undefined, 10_000);
  t.equal(relay.stats().lastFailure?.code, 'EDGEGW_RELAY_TIMEOUT');
  t.match(relay.stats().lastFailure?.detail ?? '', /CONNECT_TIMEOUT/);
  t.equal(store.counters.get('outbox_rows'), 5);
});

t.test('only https/mqtts upstreams, no credentials in the URL, and only allowed origins', async (t) => {
  const base = { caPem: 'x', certPem: 'x', keyPem: 'x', gatewayId: 'gw' };
  for (const url of ['http://cloud.example/v1', 'mqtt://cloud.example', 'https://user:pw@cloud.example', 'https://cloud.example/?q=1', 'file:///etc/passwd', 'not a url']) {
    t.throws(() => parseRelayOptions({ ...base, url }), { code: 'EDGEGW_RELAY_ORIGIN_REFUSED' }, url);
  }
  t.throws(
    () => parseRelayOptions({ ...base, url: 'https://evil.example', allowedOrigins: ['https://cloud.example'] }),
    { code: 'EDGEGW_RELAY_ORIGIN_REFUSED' },
  );
  t.equal(checkUpstream({ url: 'https://cloud.example:8443/base/', allowedOrigins: ['https://cloud.example:8443'] }).origin, 'https://cloud.example:8443');
  t.equal(checkUpstream({ url: 'mqtts://broker.example' }).scheme, 'mqtts');
});

t.test('there is no option that disables certificate verification; every problem is reported at once', async (t) => {
  const err = t.throws(() =>
    parseRelayOptions({ url: 'https://cloud.example', caPem: 'x', certPem: 'x', keyPem: 'x', gatewayId: 'gw', rejectUnauthorized: false } as never),
  ) as Error;
  t.ok(isEdgegwError(err, 'EDGEGW_CONFIG_INVALID'));
  t.match(err.message, /rejectUnauthorized/);
  const many = t.throws(() => parseRelayOptions({ url: 'https://cloud.example', gatewayId: 'bad id', maxInFlight: 0 } as never)) as Error;
  t.ok(isEdgegwError(many, 'EDGEGW_CONFIG_INVALID'));
  for (const problem of ['caFile', 'certFile', 'keyFile', 'gatewayId', 'maxInFlight']) t.match(many.message, problem, `reports ${problem}`);

  // And none in the code either: no relay source turns verification off.
  const dir = fileURLToPath(new URL('../../gateway/relay/', import.meta.url));
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
    const src = readFileSync(join(dir, f), 'utf8');
    t.notMatch(src, /rejectUnauthorized:\s*false|process\.env|checkServerIdentity/, `${f} never disables verification`);
  }
});

t.test('a key file readable by others is refused at start', async (t) => {
  const tls = await pki(t);
  const dir = tempDir(t);
  const keyFile = join(dir, 'client-key.pem');
  writeFileSync(keyFile, tls.client.keyPem, { mode: 0o644 });
  const store = openStore(t, tempDir(t));
  const relay = createRelay({ store, log: silentLogger(), clock: systemClock, alerts: collectAlerts().alerts }, {
    url: 'https://127.0.0.1:1', caPem: tls.client.caPem, certPem: tls.client.certPem, keyFile, gatewayId: 'gw',
  });
  await t.rejects(relay.start(), { code: 'EDGEGW_SECRET_FILE_MODE' });
});

t.test('credentials never reach the log, even at debug level through failures', async (t) => {
  const tls = await pki(t);
  let calls = 0;
  const cloud = await mtlsServer(t, tls, (req, res) => {
    req.resume();
    calls++;
    if (calls === 1) res.writeHead(307, { location: 'https://127.0.0.1:1/' }).end();
    else if (calls === 2) res.writeHead(503, { 'retry-after': '0' }).end();
    else res.writeHead(200).end('{}');
  });
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  const log = createLogger({ level: 'debug', destination: sink });
  const { store } = await relayAgainst(t, tls, cloud.url, {}, log);
  await waitFor('delivered after the failures', () => store.counters.get('outbox_rows') === 0, 10_000);
  const text = lines.join('');
  t.ok(lines.length > 3, `the relay logged (${lines.length} lines)`);
  const keyBody = tls.client.keyPem.split('\n')[1]!;
  const certBody = tls.client.certPem.split('\n')[1]!;
  t.notOk(text.includes('PRIVATE KEY'), 'no PEM key');
  t.notOk(text.includes(keyBody), 'no key material');
  t.notOk(text.includes(certBody), 'no certificate either');
});
