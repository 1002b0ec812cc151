/**
 * `edgegw`: the one entry point for every job. Each command lives in its own module
 * under cli/ and registers itself here. Exit codes: 0 success, 1 the job failed or the
 * input was invalid, 2 bad usage.
 */
import { Command, CommanderError } from 'commander';
import { EdgegwError } from '../common/errors.js';
import { registerCose } from './cose.js';
import { registerGateway } from './gateway.js';
import { registerCloudSim } from './cloud-sim.js';

export function buildProgram(): Command {
  const program = new Command('edgegw')
    .description('Security gateway for IoT fleets: signed CBOR over MQTT, durable buffering, mTLS relay to the cloud.')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError();
  registerCose(program);
  registerGateway(program);
  registerCloudSim(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
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

