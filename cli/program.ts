/**
 * `edgegw`: the one entry point for every job. Each command lives in its own module
 * under cli/ and registers itself here. Exit codes: 0 success, 1 the job failed or the
 * input was invalid, 2 bad usage.
 */
import { Command, CommanderError } from 'commander';
import { EdgegwError } from '../common/errors.js';

type Register = (program: Command) => void;

/**
 * Each command group is imported only when its command runs (or for the full help), so
 * `edgegw cose verify` does not pay for loading the gateway, the simulator and serialport.
 */
const cose = async (): Promise<Register> => (await import('./cose.js')).registerCose;
const gateway = async (): Promise<Register> => (await import('./gateway.js')).registerGateway;
const cloudSim = async (): Promise<Register> => (await import('./cloud-sim.js')).registerCloudSim;
const sim = async (): Promise<Register> => (await import('./sim.js')).registerSim;
const demo = async (): Promise<Register> => (await import('./demo.js')).registerDemo;
// cli/provision.ts also adds `sim serial-device`, so `sim` needs it too (after sim).
const provision = async (): Promise<Register> => (await import('./provision.js')).registerProvision;

const COMMANDS: Record<string, (() => Promise<Register>)[]> = {
  cose: [cose],
  start: [gateway],
  status: [gateway],
  device: [gateway],
  'cloud-sim': [cloudSim],
  sim: [sim, provision],
  demo: [demo],
  provision: [sim, provision],
};
const ALL = [cose, gateway, cloudSim, sim, demo, provision];

export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('edgegw')
    .description('Security gateway for IoT fleets: signed CBOR over MQTT, durable buffering, mTLS relay to the cloud.')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError();
  const first = argv.find((a) => !a.startsWith('-'));
  const wanted = first !== undefined && first in COMMANDS ? COMMANDS[first]! : ALL;
  const registered = new Set<Register>();
  for (const load of wanted) {
    const register = await load();
    if (registered.has(register)) continue;
    registered.add(register);
    register(program);
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    if (err instanceof EdgegwError && err.code === 'EDGEGW_USAGE') {
      process.stderr.write(`edgegw: ${err.message}\n`);
      return 2;
    }
    if (err instanceof EdgegwError) {
      process.stderr.write(`edgegw: ${err.code}: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`edgegw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

