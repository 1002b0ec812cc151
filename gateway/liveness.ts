/**
 * Whether the gateway that wrote a data directory's runtime rows still runs, for `edgegw
 * status`, without the gateway writing anything while it idles. The gateway records its
 * process once at start (`ownMark`), and clears it when it stops; status asks the kernel
 * whether that process exists and is the same one (`isRunning`): a gateway killed with
 * SIGKILL reads as stopped at once, and a pid reused by another process since does not read
 * as the gateway. Before this, a heartbeat row rewritten every second did the same, and an
 * idle gateway wrote about 17 KB a second to its disk (docs/performance.md).
 */
import { readFileSync } from 'node:fs';

export interface ProcessMark {
  pid: number;
  /** The process's start time in clock ticks since boot (/proc/PID/stat field 22); '' where unknown. */
  start: string;
}

/** The start time the kernel gives the process, or undefined (no such process, or no /proc). */
export function startTimeOf(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so count from its end.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Field 3 (state) is fields[0]; field 22 (starttime) is fields[19].
  return fields[19];
}

export function ownMark(): ProcessMark {
  return { pid: process.pid, start: startTimeOf(process.pid) ?? '' };
}

/** The mark from its runtime row, or undefined when there is none or it is damaged. */
export function parseMark(text: string | undefined): ProcessMark | undefined {
  try {
    const v = JSON.parse(text ?? 'null') as Partial<ProcessMark> | null;
    if (v === null || typeof v !== 'object') return undefined;
    if (!Number.isSafeInteger(v.pid) || (v.pid as number) <= 0 || typeof v.start !== 'string') return undefined;
    return { pid: v.pid as number, start: v.start };
  } catch {
    return undefined;
  }
}

/** True when the marked process exists and, where the kernel tells, is the same process. */
export function isRunning(mark: ProcessMark): boolean {
  try {
    process.kill(mark.pid, 0);
  } catch (err) {
    // EPERM: it exists, and belongs to another user (status run by someone other than the gateway's user).
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (mark.start === '') return true;
  const now = startTimeOf(mark.pid);
  return now === undefined || now === mark.start;
}
