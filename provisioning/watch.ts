/**
 * `edgegw provision --watch`: a production line. Each time the port appears (a device with
 * its USB serial adapter is plugged in) the station runs one session on it, reports the
 * outcome, and waits for the port to go away (unplugged) before the next device. One session
 * per plug-in: a failed device is unplugged, looked at and plugged in again.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/log.js';
import { isEdgegwError } from '../common/errors.js';
import { openSerialLine } from './line.js';
import type { ProvisionOutcome, Station } from './station.js';

export interface WatchOptions {
  path: string;
  baud?: number;
  /** Stops the watch; a session under way finishes first (it is bounded by the §7 retries). */
  signal: AbortSignal;
  /** How often the port's presence is checked. Default 250 ms. */
  pollMs?: number;
  onOutcome(outcome: ProvisionOutcome): void;
}

export async function watchPort(deps: { log: Logger; station: Station }, options: WatchOptions): Promise<{ provisioned: number; failed: number }> {
  const log = deps.log.child({ part: 'provision-watch' });
  const pollMs = options.pollMs ?? 250;
  const { signal, path } = options;
  const counts = { provisioned: 0, failed: 0 };
  const until = async (cond: () => boolean): Promise<void> => {
    while (!cond() && !signal.aborted) await sleep(pollMs).catch(() => undefined);
  };

  while (!signal.aborted) {
    await until(() => existsSync(path));
    if (signal.aborted) break;
    let line;
    try {
      line = await openSerialLine(path, options.baud);
    } catch (err) {
      // Plugged in but not ready yet (udev still setting permissions): try again shortly.
      log.warn({ code: isEdgegwError(err) ? err.code : undefined, path }, 'port present but not openable yet');
      await sleep(pollMs);
      continue;
    }
    const outcome = await deps.station.provision(line);
    counts[outcome.status] += 1;
    options.onOutcome(outcome);
    log.info({ path }, 'waiting for the device to be unplugged');
    const opened = line;
    await until(() => !existsSync(path) || opened.closed);
    await opened.close();
  }
  return counts;
}
