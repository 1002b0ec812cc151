// `edgegw provision` and `edgegw sim serial-device` as a technician runs them: the built
// executable (dist/cli/main.js; `npm test` builds it in pretest, or run `npx tsc -p
// tsconfig.json`) in child processes on the two ends of a socat pty pair, against a running
// gateway's data directory. Exit 0 provisioned, 1 failed (with the code in the JSON line), 2 bad usage.
import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startGateway } from '../helpers/gateway.js';
import { tempDir } from '../helpers/tmp.js';
import { ptyPair } from './_pty.js';

const MAIN = join(fileURLToPath(new URL('../../', import.meta.url)), 'dist/cli/main.js');
// Children run without the loaders tap puts in NODE_OPTIONS for its own processes.
const { NODE_OPTIONS: _tapLoaders, ...CHILD_ENV } = process.env;

interface Run {
  code: number | null;
  lines: any[];
  stderr: string;
}

/**
 * Starts the device end first and waits until its process has the pty open, as a device is
 * powered before the technician starts the station: a loaded machine can take longer to
 * start a process than the station's §7 retry window (3 retries, 1 s apart).
 */
async function deviceThenStation(deviceArgs: string[], stationArgs: string[], devicePort: string): Promise<[Run, Run]> {
  let pid = 0;
  const device = edgegw(...deviceArgs, { onSpawn: (p) => (pid = p) });
  const target = realpathSync(devicePort);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (pid !== 0 && hasOpen(pid, target)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const station = await edgegw(...stationArgs);
  return [station, await device];
}

function hasOpen(pid: number, path: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === path;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

function edgegw(...input: (string | { onSpawn: (pid: number) => void })[]): Promise<Run> {
  const args = input.filter((a): a is string => typeof a === 'string');
  const hook = input.find((a): a is { onSpawn: (pid: number) => void } => typeof a !== 'string');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: CHILD_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    hook?.onSpawn(child.pid ?? 0);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, lines: stdout.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l)), stderr });
    });
  });
}

t.test('provision and sim serial-device provision a device that then publishes, and refuse it the second time', async (t) => {
  const gw = await startGateway(t);
  const dir = tempDir(t, 'edgegw-prov-cli-');
  const flash = join(dir, 'device.flash');
  const broker = `mqtts://127.0.0.1:${gw.ready.mqttsPort}`;

  const pair = await ptyPair(t, dir, 'first');
  const [station, device] = await deviceThenStation(
    ['sim', 'serial-device', '--port', pair.b, '--flash', flash, '--serial-number', 'SN-CLI-1', '--key-alg', 'ES256', '--connect'],
    ['provision', '--data-dir', gw.dataDir, '--port', pair.a, '--broker-url', broker],
    pair.b,
  );
  t.equal(station.code, 0, station.stderr);
  t.equal(station.lines.length, 1, 'one JSON line per device');
  t.match(station.lines[0], { deviceId: 'SN-CLI-1', kid: /^[0-9a-f]{16}$/, status: 'provisioned' });
  t.notOk('error' in station.lines[0], 'no error field on success');
  t.equal(device.code, 0, device.stderr);
  t.same(device.lines[0], { deviceId: 'SN-CLI-1', kid: station.lines[0].kid, status: 'provisioned' }, 'both ends agree on the kid');
  t.same(device.lines[1], { deviceId: 'SN-CLI-1', connected: true, acked: true }, 'the device connected over mTLS and its message was acknowledged');
  t.equal(gw.gateway.store.counters.get('accepted'), 1, 'the gateway accepted the signed message');

  const again = await ptyPair(t, dir, 'again');
  const [refused, deviceAgain] = await deviceThenStation(
    ['sim', 'serial-device', '--port', again.b, '--flash', flash],
    ['provision', '--data-dir', gw.dataDir, '--port', again.a, '--broker-url', broker],
    again.b,
  );
  t.equal(refused.code, 1, 'a failed device makes the station exit 1');
  t.same(refused.lines, [{ deviceId: 'SN-CLI-1', kid: station.lines[0].kid, status: 'failed', error: 'EDGEGW_PROVISION_REFUSED' }]);
  t.equal(deviceAgain.code, 1);
  t.equal(deviceAgain.lines[0].error, 'EDGEGW_PROVISION_REFUSED');
});

t.test('provision --list prints one JSON line per port, and bad usage exits 2', async (t) => {
  const [list, noPort] = await Promise.all([edgegw('provision', '--list'), edgegw('provision', '--data-dir', tempDir(t))]);
  t.equal(list.code, 0, list.stderr);
  for (const p of list.lines) t.type(p.path, 'string', 'every port has a path');
  t.equal(noPort.code, 2, 'no --port');
  t.match(noPort.stderr, /--port/);
});
