/**
 * Live progress of a fleet run for a person: on a terminal a progress bar (cli-progress)
 * with the live counts; elsewhere (CI logs, pipes) one plain line every few seconds, so
 * that a log is readable and not full of carriage returns.
 */
import cliProgress from 'cli-progress';
import type { FleetProgress } from './fleet.js';

export interface ProgressView {
  update(p: FleetProgress): void;
  stop(): void;
}

const PLAIN_EVERY_MS = 5_000;

export function createProgressView(out: NodeJS.WriteStream): ProgressView {
  if (out.isTTY !== true) return plainView(out);
  const bar = new cliProgress.SingleBar(
    {
      stream: out,
      format: '{phase} |{bar}| {shown} | online {online}/{devices} | made {made} | acked {acked} | attacks {attacks}',
      barsize: 24,
      hideCursor: true,
      clearOnComplete: false,
      // Redrawn on our one-second ticks only, so a slow terminal never slows the fleet.
      noTTYOutput: false,
      fps: 2,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let phase = '';
  return {
    update(p) {
      const provisioning = p.phase === 'provision';
      const total = provisioning ? p.devices : Math.max(1, Math.round(p.durationMs / 1000));
      const value = provisioning ? p.provisioned : Math.min(total, Math.round(p.elapsedMs / 1000));
      const payload = {
        phase: p.phase.padEnd(9),
        shown: provisioning ? `${p.provisioned}/${p.devices} devices` : `${Math.round(p.elapsedMs / 1000)}/${total} s`,
        online: p.online,
        devices: p.devices,
        made: p.made,
        acked: p.acked,
        attacks: p.attacks,
      };
      if (!started || phase !== p.phase) {
        if (started) bar.stop();
        bar.start(total, value, payload);
        started = true;
        phase = p.phase;
      } else {
        bar.update(value, payload);
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

function plainView(out: NodeJS.WriteStream): ProgressView {
  let last = 0;
  let phase = '';
  return {
    update(p) {
      const now = performance.now();
      if (p.phase === phase && now - last < PLAIN_EVERY_MS) return;
      last = now;
      phase = p.phase;
      const where = p.phase === 'provision' ? `${p.provisioned}/${p.devices} devices` : `${Math.round(p.elapsedMs / 1000)} s`;
      out.write(`${p.phase} ${where}: online ${p.online}/${p.devices}, made ${p.made}, acked ${p.acked}, attacks ${p.attacks}\n`);
    },
    stop() {},
  };
}
