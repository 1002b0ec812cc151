/**
 * `edgegw provision` (the station, issue 6 §2) and `edgegw sim serial-device` (the simulated
 * device on the other end of the line, §3). The station prints one JSON line per device on
 * stdout, `{"deviceId", "kid", "status": "provisioned"|"failed", "error"?}`, and exits 1 when a
 * device failed; logs go to stderr. See docs/provisioning.md.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { EdgegwError } from '../common/errors.js';
import { createLogger, type Logger } from '../common/log.js';
import { systemClock } from '../common/clock.js';
import { dataPaths, openRegistrar } from '../gateway/index.js';
import { createDevice, fileFlash, parseBrokerUrl } from '../device-sim/index.js';
import {
  createSerialDevice,
  createStation,
  describeFaults,
  DEFAULT_BAUD,
  DEVICE_FAULTS,
  listPorts,
  openSerialLine,
  watchPort,
  type DeviceFault,
  type ProvisionOutcome,
} from '../provisioning/index.js';
import type { CoseAlg } from '../protocol/index.js';

function print(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) throw new EdgegwError('EDGEGW_USAGE', `${name} must be a positive integer, got ${v}`);
    return n;
  };
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** The JSON line of issue 6 §2. */
function outcomeLine(o: ProvisionOutcome): Record<string, unknown> {
  return { deviceId: o.deviceId ?? null, kid: o.kid ?? null, status: o.status, ...(o.error === undefined ? {} : { error: o.error }) };
}

interface ProvisionFlags {
  dataDir?: string;
  port?: string;
  baud: number;
  brokerUrl: string[];
  watch?: boolean;
  list?: boolean;
  logLevel: string;
}

async function runStation(o: ProvisionFlags, log: Logger): Promise<void> {
  if (o.dataDir === undefined || o.port === undefined) throw new EdgegwError('EDGEGW_USAGE', '--data-dir and --port are required (or --list)');
  if (!existsSync(dataPaths(o.dataDir).identity)) throw new EdgegwError('EDGEGW_USAGE', `${o.dataDir} is not a gateway data directory (run edgegw start first)`);
  const brokerUrls = o.brokerUrl.length > 0 ? o.brokerUrl : [`mqtts://${hostname()}:8883`];
  for (const url of brokerUrls) parseBrokerUrl(url);
  // The registry is SQLite in WAL mode: the station writes while the gateway runs, and the gateway sees the device within a second.
  const registrar = await openRegistrar({ log, clock: systemClock }, o.dataDir);
  try {
    const station = createStation({ log, clock: systemClock, registrar }, { brokerUrls });
    if (o.watch) {
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const counts = await watchPort({ log, station }, { path: o.port, baud: o.baud, signal: stop.signal, onOutcome: (out) => print(outcomeLine(out)) });
        if (counts.failed > 0) process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      return;
    }
    const line = await openSerialLine(o.port, o.baud);
    try {
      const outcome = await station.provision(line);
      print(outcomeLine(outcome));
      if (outcome.status === 'failed') process.exitCode = 1;
    } finally {
      await line.close();
    }
  } finally {
    registrar.close();
  }
}

interface SerialDeviceFlags {
  port: string;
  flash: string;
  serialNumber?: string;
  keyAlg: string;
  baud: number;
  firmwareVersion: string;
  hardwareModel: string;
  fault: string[];
  idleTimeoutMs: number;
  connect?: boolean;
}

async function runSerialDevice(o: SerialDeviceFlags): Promise<void> {
  if (o.keyAlg !== 'EdDSA' && o.keyAlg !== 'ES256') throw new EdgegwError('EDGEGW_USAGE', `--key-alg must be EdDSA or ES256, got ${o.keyAlg}`);
  for (const f of o.fault) {
    if (!(DEVICE_FAULTS as readonly string[]).includes(f)) throw new EdgegwError('EDGEGW_USAGE', `unknown --fault ${f}; one of ${DEVICE_FAULTS.join(', ')}`);
  }
  // `sim` already has --log-level (parsed by the parent command), so the device logs warnings only.
  const log = createLogger({ level: 'warn' });
  const flash = fileFlash(o.flash);
  const device = createSerialDevice(
    { log, flash },
    {
      serialNumber: o.serialNumber ?? `SIM-${randomBytes(4).toString('hex')}`,
      alg: o.keyAlg as CoseAlg,
      firmwareVersion: o.firmwareVersion,
      hardwareModel: o.hardwareModel,
      faults: o.fault as DeviceFault[],
      idleTimeoutMs: o.idleTimeoutMs,
    },
  );
  const line = await openSerialLine(o.port, o.baud);
  let outcome;
  try {
    outcome = await device.run(line);
  } finally {
    await line.close();
  }
  print({ deviceId: outcome.deviceId, kid: outcome.kid, status: outcome.status, ...(outcome.error === undefined ? {} : { error: outcome.error }) });
  if (outcome.status === 'failed') {
    process.exitCode = 1;
    return;
  }
  if (!o.connect) return;
  // Boot the firmware model from the flash just written and prove the credentials work.
  const firmware = createDevice({ log, clock: systemClock, flash }, { backoff: { initialMs: 250, maxMs: 2000 } });
  firmware.start();
  try {
    const online = await firmware.waitOnline(15_000);
    let acked = false;
    if (online) {
      firmware.telemetry('status', { provisioned: true });
      acked = await firmware.drain(15_000);
    }
    print({ deviceId: outcome.deviceId, connected: online, acked });
    if (!online || !acked) process.exitCode = 1;
  } finally {
    await firmware.stop();
  }
}

export function registerProvision(program: Command): void {
  program
    .command('provision')
    .description('provision devices over a serial line (PROTOCOL.md §7) into the gateway\'s registry; one JSON line per device')
    .option('--data-dir <dir>', "the gateway's data directory (registry and PKI); the gateway may be running")
    .option('--port <path>', 'the serial port of the USB adapter, e.g. /dev/ttyUSB0 or /dev/edgegw-provision')
    .option('--baud <n>', 'line speed (8N1)', positiveInt('--baud'), DEFAULT_BAUD)
    .option('--broker-url <url>', 'broker URL given to devices, repeatable (default mqtts://<this host>:8883)', collect, [])
    .option('--watch', 'a production line: provision each device as it is plugged in, until SIGINT')
    .option('--list', 'list the serial ports with their USB vendor and product ids, one JSON line each')
    .option('--log-level <level>', 'fatal|error|warn|info|debug', 'warn')
    .action(async (o: ProvisionFlags) => {
      if (o.list) {
        for (const p of await listPorts()) print(p);
        return;
      }
      await runStation(o, createLogger({ level: o.logLevel }));
    });

  // `sim serial-device` joins the `sim` command group when it exists (cli/sim.ts registers it first).
  const sim = program.commands.find((c) => c.name() === 'sim') ?? program.command('sim').description('simulated devices');
  // Commander checks the mandatory options of every ancestor, and the fleet run's own
  // (--data-dir, --mqtts-port) mean nothing to a device on a serial line: they stop being
  // mandatory when, and only when, `sim` hands over to this subcommand.
  sim.hook('preSubcommand', (parent, sub) => {
    if (sub.name() === 'serial-device') for (const opt of parent.options) opt.makeOptionMandatory(false);
  });
  sim
    .command('serial-device')
    .description('a simulated device on the far end of a serial line: answers the station (PROTOCOL.md §7) and stores its credentials in its flash file')
    .requiredOption('--port <path>', 'the serial port (one end of a pty pair, or a USB adapter)')
    .requiredOption('--flash <file>', 'the flash file (created with mode 0600; an existing one gives the id and key)')
    .option('--serial-number <sn>', 'serial number the proposed device id comes from (default SIM-<random>)')
    .option('--key-alg <alg>', 'EdDSA or ES256, for a device without a key yet', 'EdDSA')
    .option('--baud <n>', 'line speed (8N1)', positiveInt('--baud'), DEFAULT_BAUD)
    .option('--firmware-version <v>', 'IDENTITY field 5', '1.0.0')
    .option('--hardware-model <m>', 'IDENTITY field 6', 'edgegw-sim')
    .option('--fault <f>', 'misbehave on purpose, repeatable', collect, [])
    .option('--idle-timeout-ms <n>', 'give up after this long without a frame', positiveInt('--idle-timeout-ms'), 60_000)
    .option('--connect', 'after provisioning, connect to the broker with the new credentials and publish one signed message')
    .addHelpText('after', `\nFaults:\n${describeFaults()}\n`)
    .action(async (o: SerialDeviceFlags) => {
      await runSerialDevice(o);
    });
}
