// An idle gateway on a Raspberry Pi must not wear its SD card: with no device publishing it
// writes nothing. Before, a heartbeat row rewritten every second cost 17 KB a second and three
// fsyncs. `edgegw status` tells whether it runs from its process instead.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tempDir } from '../helpers/tmp.js';
import { runCli, spawnReady, waitExit } from '../helpers/cli.js';
import { createRuntimeRows, MEMORY_EVERY_MS } from '../../gateway/runtime-rows.js';
import { isRunning, ownMark, parseMark, startTimeOf } from '../../gateway/liveness.js';
import type { LatencyWindow } from '../../gateway/latency.js';
import { startGateway } from '../helpers/gateway.js';
import { makeDevice, connectDevice } from '../helpers/devices.js';

t.setTimeout(120_000);

/** Bytes the process has caused to be written to storage (page cache included), from /proc. */
function writeBytes(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return Number(/^write_bytes: (\d+)$/m.exec(io)![1]);
}

async function status(dir: string): Promise<{ running: boolean; connected: number; memoryMiB: unknown }> {
  const res = await runCli(['status', '--data-dir', dir]);
  if (res.code !== 0) throw new Error(res.stderr);
  return JSON.parse(res.stdout) as { running: boolean; connected: number; memoryMiB: unknown };
}

t.test('an idle gateway writes nothing; status sees it running, and stopped at once after SIGKILL', async (t) => {
  const dir = tempDir(t);
  const gw = await spawnReady(['start', '--data-dir', dir, '--host', '127.0.0.1', '--mqtts-port', '0', '--log-level', 'error']);
  t.teardown(() => void gw.child.kill('SIGKILL'));
  const pid = gw.child.pid!;
  const first = await status(dir);
  t.equal(first.running, true, 'status: running');
  t.not(first.memoryMiB, null, 'with its memory');

  // Start-up's own writes and their checkpoint settle first; then 5 s windows with no device.
  await new Promise((r) => setTimeout(r, 3000));
  const windows: number[] = [];
  for (let i = 0; i < 3 && !windows.includes(0); i++) {
    const before = writeBytes(pid);
    await new Promise((r) => setTimeout(r, 5000));
    windows.push(writeBytes(pid) - before);
  }
  t.ok(windows.includes(0), `bytes written per 5 s while idle: ${windows.join(', ')} (17 KB a second before)`);
  t.equal((await status(dir)).running, true, 'and status still says running');

  gw.child.kill('SIGKILL');
  await waitExit(gw.child);
  const killed = await status(dir);
  t.same({ running: killed.running, connected: killed.connected, memoryMiB: killed.memoryMiB }, { running: false, connected: 0, memoryMiB: null }, 'stopped at once after SIGKILL, with no heartbeat to go stale');
});

t.test('a process mark: this process runs, a process that ended does not, nor one with another start time', async (t) => {
  const own = ownMark();
  t.equal(own.pid, process.pid);
  t.match(own.start, /^\d+$/, 'the kernel gives the start time');
  t.equal(isRunning(own), true);
  t.equal(isRunning({ ...own, start: String(Number(own.start) + 1) }), false, 'the same pid started at another time is another process');
  const child = spawn(process.execPath, ['-e', '']);
  const childPid = child.pid!;
  const childStart = startTimeOf(childPid);
  await waitExit(child);
  t.equal(isRunning({ pid: childPid, start: childStart ?? '' }), false, 'an ended process');
  t.same(parseMark(JSON.stringify(own)), own, 'a mark reads back');
  for (const bad of [undefined, 'null', '{', '{"pid": -1, "start": ""}', '{"pid": 1.5, "start": ""}', '{"pid": 12}', '[1]']) {
    t.equal(parseMark(bad), undefined, `no mark from ${String(bad)}`);
  }
});

t.test('runtime rows: only what changed is written', async (t) => {
  const rows = createRuntimeRows();
  const mem = { rss: 100, heapUsed: 30, external: 4 };
  const stages = (n: number): LatencyWindow['stages'] => {
    const s = { n, p50: n ? 1 : null, p90: n ? 1 : null, p99: n ? 1 : null, max: n ? 1 : null };
    return { ack: s, check: s, store: s, fsync: s };
  };
  const window = (n: number, toMs: number): LatencyWindow => ({ fromMs: toMs - 10_000, toMs, stages: stages(n) });

  t.same(Object.keys(rows.changes(0, { connected: 0, memory: mem })), ['connected', 'memory'], 'the first call writes both');
  t.same(rows.changes(1000, { connected: 0, memory: { ...mem, rss: 150 } }), {}, 'nothing changed but memory, within its minute');
  t.same(Object.keys(rows.changes(2000, { connected: 3, memory: mem })), ['connected'], 'a device connected');
  t.same(rows.changes(MEMORY_EVERY_MS + 1, { connected: 3, memory: { ...mem, rss: 100.9 } }), {}, 'memory moved by less than 1 MiB');
  t.same(Object.keys(rows.changes(MEMORY_EVERY_MS + 2, { connected: 3, memory: { ...mem, rss: 101 } })), ['memory'], 'a minute on, memory moved by 1 MiB');

  t.same(rows.changes(70_000, { connected: 3, memory: mem, window: window(0, 70_000) }), {}, 'a quiet window after quiet ones is not written');
  t.same(Object.keys(rows.changes(80_000, { connected: 3, memory: mem, window: window(5, 80_000) })), ['latency'], 'a window with traffic is');
  const quiet = rows.changes(90_000, { connected: 3, memory: mem, window: window(0, 90_000) });
  t.same(JSON.parse(quiet.latency!).stages.ack.n, 0, 'and the first quiet window after it, so status shows a quiet window');
  t.same(rows.changes(100_000, { connected: 3, memory: mem, window: window(0, 100_000) }), {}, 'but not the next');

  rows.forget();
  t.same(Object.keys(rows.changes(101_000, { connected: 3, memory: mem, window: window(0, 101_000) })).sort(), ['connected', 'latency', 'memory'], 'after a failed write, all of it again');
});

t.test('a runtime row that cannot be written (a full disk) does not stop the gateway, and is written once it can', async (t) => {
  const gw = await startGateway(t);
  const db = gw.gateway.store.db;
  // SQLite itself refuses every write of a runtime row, as a full disk would.
  db.exec("CREATE TRIGGER runtime_refused BEFORE UPDATE ON runtime BEGIN SELECT RAISE(FAIL, 'database or disk is full (test)'); END");
  t.teardown(() => {
    if (db.open) db.exec('DROP TRIGGER IF EXISTS runtime_refused');
  });
  const dev = await makeDevice(gw.registrar, 'sensor-rt', 'EdDSA');
  const client = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
  t.teardown(() => void client.end(true));
  // Two ticks of the gateway's status timer, each failing to write `connected`.
  await new Promise((r) => setTimeout(r, 2200));
  t.equal((await status(gw.dataDir)).connected, 0, 'the row could not be written');
  t.ok(client.connected, 'the gateway goes on');
  db.exec('DROP TRIGGER runtime_refused');
  const deadline = Date.now() + 10_000;
  let connected = 0;
  while (connected !== 1 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    connected = (await status(gw.dataDir)).connected;
  }
  t.equal(connected, 1, 'written at the next tick once it can be');
});
