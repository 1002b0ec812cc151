import t from 'tap';
import { createGateway, openRegistrar, parseConfig, type Gateway, type ReadyInfo } from '../../gateway/index.js';
import { createDevice } from '../../device-sim/index.js';
import { silentLogger } from '../../common/log.js';
import { systemClock } from '../../common/clock.js';
import { tempDir } from '../helpers/tmp.js';
import { startGateway } from '../helpers/gateway.js';
import { provisionDevice, until } from './_provision.js';

const log = silentLogger();

async function startOn(dataDir: string, mqttsPort: number, mqttPort: number): Promise<{ gateway: Gateway; ready: ReadyInfo }> {
  const gateway = createGateway({ log, clock: systemClock }, parseConfig({ dataDir, host: '127.0.0.1', mqttsPort, mqttPort, verifyWorkers: 0, logLevel: 'silent' }));
  return { gateway, ready: await gateway.start() };
}

for (const transport of ['mqtts', 'mqtt'] as const) {
  t.test(`over ${transport}: offline messages keep their seq and timestamp and are all delivered after reconnect`, async (t) => {
    const dataDir = tempDir(t, 'edgegw-gw-');
    const registrar = await openRegistrar({ log, clock: systemClock }, dataDir);
    t.teardown(() => registrar.close());
    let gw = await startOn(dataDir, 0, 0);
    let stopped = false;
    t.teardown(async () => {
      if (!stopped) await gw.gateway.stop();
    });
    const { flash } = await provisionDevice(registrar, gw.ready, tempDir(t), 'dev-buffer', transport === 'mqtt' ? 'ES256' : 'EdDSA');
    const device = createDevice(
      { log, clock: systemClock, flash },
      { transport, telemetry: { intervalMs: 50, jitter: 0.2, stream: 'temp', event: { every: 3, name: 'status' } }, recordAcks: true, backoff: { initialMs: 100, maxMs: 400 } },
    );
    t.teardown(() => device.powerCut());
    device.start();
    t.ok(await device.waitOnline(5_000), 'connected');
    t.ok(await until(() => device.stats.acked >= 5, 5_000), 'telemetry acknowledged');

    await gw.gateway.stop();
    stopped = true;
    t.ok(await until(() => device.state !== 'online', 5_000), 'the device notices the gateway is gone');
    const madeAtOutage = device.stats.made;
    const outageStart = Date.now();
    await new Promise((r) => setTimeout(r, 600));
    t.ok(device.backlog >= 5, `messages buffered while offline (${device.backlog})`);
    t.ok(device.stats.connectFailures >= 1, 'reconnect attempts failed while the gateway was down');

    gw = await startOn(dataDir, gw.ready.mqttsPort, gw.ready.mqttPort!);
    stopped = false;
    t.ok(await device.waitOnline(5_000), 'reconnected with backoff');
    device.stopTelemetry();
    t.ok(await device.drain(5_000), 'the buffer drained');
    await device.stop();

    const rows = gw.gateway.store.outbox.read(0, 10_000, 1 << 24).filter((r) => r.deviceId === 'dev-buffer');
    const seqs = rows.map((r) => r.seq);
    t.same(seqs, [...seqs].sort((a, b) => a - b), 'stored in seq order');
    t.same(new Set(seqs), new Set(device.ackedSeqs), 'every acknowledged message is stored, nothing else');
    t.equal(new Set(seqs).size, seqs.length, 'none stored twice');
    t.equal(device.stats.acked, device.stats.made, 'every message made was acknowledged');
    t.equal(device.stats.dropped, 0);
    const buffered = rows.filter((r) => r.ts >= outageStart && r.ts < outageStart + 500);
    t.ok(buffered.length >= 3, `messages made during the outage carry their original timestamps (${buffered.length})`);
    t.ok(buffered.every((r) => r.rxMs > r.ts + 50), 'and were received later than they were made');
    t.ok(madeAtOutage < device.stats.made, 'the device kept making messages while offline');
    const events = rows.filter((r) => r.topic === 'd/dev-buffer/e/status').length;
    const telemetry = rows.filter((r) => r.topic === 'd/dev-buffer/t/temp').length;
    t.ok(events >= 1 && Math.abs(events - telemetry / 3) <= 1, `an event every third period (${events} events, ${telemetry} telemetry)`);
  });
}

t.test('a full buffer drops the oldest messages and counts them; the rest are delivered', async (t) => {
  const dataDir = tempDir(t, 'edgegw-gw-');
  const registrar = await openRegistrar({ log, clock: systemClock }, dataDir);
  t.teardown(() => registrar.close());
  let gw = await startOn(dataDir, 0, 0);
  let stopped = false;
  t.teardown(async () => {
    if (!stopped) await gw.gateway.stop();
  });
  const { flash } = await provisionDevice(registrar, gw.ready, tempDir(t), 'dev-small');
  const device = createDevice({ log, clock: systemClock, flash }, { ringCapacity: 4, recordAcks: true, backoff: { initialMs: 100, maxMs: 200 } });
  t.teardown(() => device.powerCut());
  device.start();
  t.ok(await device.waitOnline(5_000));
  await gw.gateway.stop();
  stopped = true;
  t.ok(await until(() => device.state !== 'online', 5_000));
  const made = Array.from({ length: 10 }, (_, i) => device.telemetry('temp', { i }).seq);
  t.equal(device.stats.dropped, 6, 'six oldest dropped from a buffer of four');
  t.equal(device.backlog, 4);
  gw = await startOn(dataDir, gw.ready.mqttsPort, gw.ready.mqttPort!);
  stopped = false;
  t.ok(await device.drain(5_000));
  t.same(device.ackedSeqs, made.slice(6), 'the newest four were delivered, in order');
});

t.test('after a power cut the device reboots from flash and its seqs go on increasing', async (t) => {
  const gw = await startGateway(t, { mqttPort: 0 });
  const { flash } = await provisionDevice(gw.registrar, gw.ready, tempDir(t), 'dev-power');
  const device = createDevice({ log, clock: systemClock, flash }, { recordAcks: true });
  t.teardown(() => device.powerCut());
  device.start();
  t.ok(await device.waitOnline(5_000));
  for (let i = 0; i < 5; i++) device.telemetry('temp', { i });
  t.ok(await device.drain(5_000));
  const before = Math.max(...device.ackedSeqs);
  device.powerCut();
  t.equal(device.state, 'off');
  device.start();
  t.ok(await device.waitOnline(5_000), 'reconnects after reboot');
  const next = device.telemetry('temp', { after: true }).seq;
  t.ok(next > before, `first seq after the power cut (${next}) is above the last before it (${before})`);
  t.ok(await device.drain(5_000), 'and the gateway accepts it (no replay)');
  t.equal(gw.gateway.store.counters.get('rejected.EDGEGW_VERIFY_REPLAY') ?? 0, 0);
});

t.test("the device accepts the gateway's signed commands and remembers their seq across a reboot", async (t) => {
  const gw = await startGateway(t, { mqttPort: 0 });
  const { flash } = await provisionDevice(gw.registrar, gw.ready, tempDir(t), 'dev-cmd');
  const received: string[] = [];
  const device = createDevice({ log, clock: systemClock, flash }, { onCommand: (c) => received.push(`${c.name}:${c.seq}`) });
  t.teardown(() => device.powerCut());
  device.start();
  t.ok(await device.waitOnline(5_000));
  // The SUBACK travels after the CONNACK; give it a moment before the gateway publishes.
  await new Promise((r) => setTimeout(r, 200));
  await gw.gateway.sendCommand('dev-cmd', 'reboot', { now: true });
  await gw.gateway.sendCommand('dev-cmd', 'config', { rate: 2 });
  t.ok(await until(() => received.length === 2, 5_000), 'both commands accepted');
  t.same(received, ['reboot:1', 'config:2']);
  t.equal(flash.load()!.commandSeq, 2, 'the accepted command seq is in flash');
  await gw.gateway.sendCommand('dev-cmd', 'expired', {}, -1);
  t.ok(await until(() => (device.stats.commandsDropped.EDGEGW_SIM_COMMAND_EXPIRED ?? 0) === 1, 5_000), 'an expired command is dropped');
  t.same(received, ['reboot:1', 'config:2']);
});

t.test('a device stopped while it connects lets the attempt finish: the gateway sees no cut handshake', async (t) => {
  const gw = await startGateway(t, { mqttPort: 0 });
  const { flash } = await provisionDevice(gw.registrar, gw.ready, tempDir(t), 'dev-stop');
  const counters = gw.gateway.store.counters;
  // A slow link: the CONNECT takes about 300 ms, so the stop lands in the middle of it.
  const device = createDevice({ log, clock: systemClock, flash }, { throttle: { bytes: 64, chunkBytes: 4, intervalMs: 20 } });
  t.teardown(() => device.powerCut());
  for (let round = 0; round < 5; round++) {
    device.start();
    t.equal(device.state, 'connecting');
    await new Promise((r) => setTimeout(r, round * 40));
    await device.stop();
    t.equal(device.state, 'stopped');
  }
  await new Promise((r) => setTimeout(r, 200));
  t.equal(counters.get('refused.EDGEGW_BROKER_HANDSHAKE_FAILED') ?? 0, 0, 'no handshake was cut');
  t.equal(counters.get('refused.EDGEGW_BROKER_AUTH_FAILED') ?? 0, 0, 'and no authentication failed');
  device.start();
  t.ok(await device.waitOnline(5_000), 'and the device connects when started again');
});
