/**
 * One end of a provisioning line (PROTOCOL.md §7): frames out, frame results in, and the
 * moment the line goes away. Both the station and the simulated device talk through it, so
 * each sees the other only as bytes on a serial port.
 *
 * A serial port is untrusted input: FrameReader bounds every frame, and the queue of frames
 * not yet taken is bounded too (a peer that floods the line loses its oldest frames, which a
 * well-behaved peer never has more than one of).
 */
import type { Duplex } from 'node:stream';
import { SerialPort } from 'serialport';
import { EdgegwError, type Result } from '../common/errors.js';
import { encodeFrame, FrameReader, type Frame, type ReceivedFrame } from '../protocol/index.js';

/** PROTOCOL.md §7 default line speed. */
export const DEFAULT_BAUD = 115_200;

// Frames kept while nobody waits; more than a handful means the peer is flooding.
const MAX_QUEUED = 16;

/** What `next()` yields: a frame result, or why none came. */
export type LineEvent = { kind: 'frame'; result: Result<ReceivedFrame> } | { kind: 'timeout' } | { kind: 'closed' };

export interface FrameLine {
  /** Sends a frame; resolves once written, rejects with EDGEGW_PROVISION_LINE_CUT when the line is gone. */
  send(frame: Frame): Promise<void>;
  /** Sends bytes as they are (fault injection: a corrupted frame). */
  sendRaw(bytes: Uint8Array): Promise<void>;
  /** The next frame result, or `timeout` after `timeoutMs`, or `closed` when the line went away. */
  next(timeoutMs: number): Promise<LineEvent>;
  readonly closed: boolean;
  /** Closes the underlying port. */
  close(): Promise<void>;
}

/**
 * A FrameLine over any byte stream (a SerialPort, or a socket in a test of the framing alone).
 * `closePort` closes the stream; `close()` calls it once.
 */
export function frameLine(port: Duplex, closePort: () => Promise<void>): FrameLine {
  const reader = new FrameReader();
  const queue: Result<ReceivedFrame>[] = [];
  let waiter: ((e: LineEvent) => void) | undefined;
  let closed = false;

  const deliver = (e: LineEvent): boolean => {
    if (waiter === undefined) return false;
    const w = waiter;
    waiter = undefined;
    w(e);
    return true;
  };
  const markClosed = (): void => {
    if (closed) return;
    closed = true;
    deliver({ kind: 'closed' });
  };

  port.on('data', (chunk: Buffer) => {
    for (const result of reader.push(chunk)) {
      if (deliver({ kind: 'frame', result })) continue;
      queue.push(result);
      if (queue.length > MAX_QUEUED) queue.shift();
    }
  });
  // Linux ptys and USB adapters report a hang-up as an error on the next read or write
  // (EIO), followed by close: both mean the line is gone.
  port.on('error', markClosed);
  port.on('close', markClosed);
  port.on('end', markClosed);

  const write = (bytes: Uint8Array): Promise<void> =>
    new Promise((resolve, reject) => {
      if (closed) return reject(new EdgegwError('EDGEGW_PROVISION_LINE_CUT', 'the serial line is closed'));
      port.write(Buffer.from(bytes), (err) => {
        if (err) {
          markClosed();
          reject(new EdgegwError('EDGEGW_PROVISION_LINE_CUT', 'writing to the serial line failed', { cause: err }));
        } else resolve();
      });
    });

  let closing: Promise<void> | undefined;
  return {
    send: (frame) => write(encodeFrame(frame)),
    sendRaw: write,
    next(timeoutMs) {
      const queued = queue.shift();
      if (queued !== undefined) return Promise.resolve({ kind: 'frame', result: queued });
      if (closed) return Promise.resolve({ kind: 'closed' });
      if (waiter !== undefined) throw new EdgegwError('EDGEGW_INTERNAL', 'one reader at a time');
      return new Promise((resolve) => {
        const timer = setTimeout(() => deliver({ kind: 'timeout' }), timeoutMs);
        waiter = (e) => {
          clearTimeout(timer);
          resolve(e);
        };
      });
    },
    get closed() {
      return closed;
    },
    close() {
      closing ??= closePort().finally(markClosed);
      return closing;
    },
  };
}

/** Opens a serial port at `baud`, 8N1 (PROTOCOL.md §7). Throws EDGEGW_PROVISION_PORT when it cannot. */
export async function openSerialLine(path: string, baud: number = DEFAULT_BAUD): Promise<FrameLine> {
  const port = new SerialPort({ path, baudRate: baud, dataBits: 8, parity: 'none', stopBits: 1, autoOpen: false });
  await new Promise<void>((resolve, reject) => {
    port.open((err) => (err ? reject(new EdgegwError('EDGEGW_PROVISION_PORT', `cannot open ${path}: ${err.message}`, { cause: err })) : resolve()));
  });
  return frameLine(port, () =>
    new Promise<void>((resolve) => {
      if (!port.isOpen) return resolve();
      // A port whose other end is gone may fail to close cleanly; it is closed either way.
      port.close(() => resolve());
    }),
  );
}
