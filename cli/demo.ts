/**
 * `edgegw demo`: the README's main-job command. One command, after `npm ci`, on a bare
 * machine: cloud-sim, the gateway and a fleet (honest devices and one attacker per hostile
 * profile) on free loopback ports in a temporary directory, live counts while it runs, then
 * the verified report. Exit 0 only if every expectation held (device-sim/demo.ts).
 */
import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../common/log.js';
import { systemClock } from '../common/clock.js';
import { finishWithReport, parseDuration, positiveInt, positiveNumber } from './sim.js';

// Loaded when the command runs, so that `edgegw --help` stays fast.
const simModule = () => import('../device-sim/index.js');

interface DemoFlags {
  duration: number;
  devices: number;
  attackers: number;
  rate: number;
  keep?: boolean;
  json?: boolean;
  logLevel: string;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run cloud-sim, the gateway and a fleet with attackers on this machine, and verify every outcome')
    .option('--duration <d>', 'how long the fleet runs: 60s, 20s, 2m', parseDuration, 60_000)
    .option('--devices <n>', 'honest devices', positiveInt('--devices'), 200)
    .option('--attackers <n>', 'devices per hostile profile', positiveInt('--attackers'), 1)
    .option('--rate <r>', 'telemetry messages per second per device', positiveNumber('--rate'), 1)
    .option('--keep', 'keep the temporary directory (data, logs) afterwards')
    .option('--json', 'print the report as JSON')
    .option('--log-level <level>', 'fatal|error|warn|info|debug', 'warn')
    .action(async (o: DemoFlags) => {
      const { createProgressView, runDemo } = await simModule();
      const log = createLogger({ level: o.logLevel });
      const view = createProgressView(process.stderr);
      const cliPath = fileURLToPath(new URL('./main.js', import.meta.url));
      try {
        const result = await runDemo(
          { log, clock: systemClock, onProgress: (p) => view.update(p) },
          { cliPath, devices: o.devices, attackersPerProfile: o.attackers, durationMs: o.duration, ratePerDevice: o.rate, keep: o.keep === true },
        );
        view.stop();
        if (result.kept) process.stderr.write(`data and logs kept in ${result.workDir}\n`);
        finishWithReport(result.report, o.json === true);
      } finally {
        view.stop();
      }
    });
}
