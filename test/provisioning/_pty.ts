// Real pseudo-terminal pairs joined by socat (installed by .ci/run): each end behaves like a
// serial port, and killing socat cuts the line as unplugging a cable would.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Teardown } from '../helpers/tmp.js';
import { openSerialLine, type FrameLine } from '../../provisioning/index.js';

export interface PtyPair {
  /** The station's end. */
  a: string;
  /** The device's end. */
  b: string;
  /** Kills socat (the line is cut) and waits until it has exited. */
  cut(): Promise<void>;
}

export async function ptyPair(t: Teardown, dir: string, name = 'line'): Promise<PtyPair> {
  const a = join(dir, `${name}-a`);
  const b = join(dir, `${name}-b`);
  const proc: ChildProcess = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const cut = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
  };
  t.teardown(cut);
  const deadline = Date.now() + 5000;
  while (!(existsSync(a) && existsSync(b))) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error('socat did not create the pty pair');
    await sleep(10);
  }
  return { a, b, cut };
}

/** Opens both ends, closing them in teardown. */
export async function openBoth(t: Teardown, pair: PtyPair): Promise<{ station: FrameLine; device: FrameLine }> {
  const station = await openSerialLine(pair.a);
  const device = await openSerialLine(pair.b);
  t.teardown(async () => {
    await station.close();
    await device.close();
  });
  return { station, device };
}
