/**
 * The provisioning station (issue 6 §2): one PROTOCOL.md §7 session per device over a serial
 * line, against the gateway's registry and PKI. Steps, in order:
 *
 *   hello        send HELLO with a fresh nonce, wait for IDENTITY
 *   checkPop     the device proves it holds the key it proposes
 *   checkFree    neither the id nor the key is registered already
 *   issue        a certificate from the local PKI (nothing registered yet)
 *   credentials  send CREDENTIALS, wait for COMMIT with the digest of exactly those bytes
 *   register     device, key and certificate in one SQLite transaction
 *   done         send DONE
 *
 * Atomic: the registry changes only in `register`, after a valid COMMIT, in one transaction;
 * a session that stops anywhere before leaves nothing behind (an issued certificate that was
 * never recorded is unknown to the broker, which refuses it at CONNECT), so running it again
 * is always safe. Each frame is retried 3 times, 1 s apart, then the session times out (§7).
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import { EdgegwError, isEdgegwError, type ErrorCode } from '../common/errors.js';
import type { Registrar } from '../gateway/index.js';
import {
  credentialsDigest,
  encodeFrameCbor,
  FRAME_ERROR,
  FRAME_TYPE,
  frameErrorFor,
  importPublicKey,
  kidOf,
  popMessage,
  verifySignatureBytes,
  type CredentialsFrame,
  type Frame,
  type IdentityFrame,
} from '../protocol/index.js';
import type { FrameLine } from './line.js';

export interface StationDeps {
  log: Logger;
  clock: Clock;
  registrar: Registrar;
  /** Nonce source; crypto.randomBytes unless a test pins it. */
  randomBytes?: (n: number) => Uint8Array;
}

export interface StationOptions {
  /** §7 field 5: where the device finds the broker, e.g. `mqtts://gateway.local:8883`. */
  brokerUrls: readonly string[];
  /** §7 field 6: the device configuration map. Default empty. */
  config?: ReadonlyMap<unknown, unknown>;
  /** Wait for an answer before a retry. Default 1000 (§7). */
  retryDelayMs?: number;
  /** Retries of a frame before the session times out. Default 3 (§7). */
  retries?: number;
  /** Frames that fail their CRC within one session before it is given up. Default 16. */
  maxBadFrames?: number;
}

/** One device's outcome: what `edgegw provision` prints as a JSON line. */
export interface ProvisionOutcome {
  status: 'provisioned' | 'failed';
  deviceId?: string;
  /** Hex kid of the device key (PROTOCOL.md §1). */
  kid?: string;
  error?: ErrorCode;
  detail?: string;
  /** Frames resent because no answer came or the peer reported a bad frame. */
  retries: number;
  /** Frames from the device that failed their CRC (each answered with ERROR 1). */
  badFrames: number;
}

export interface Station {
  /** Runs one §7 session on `line`. Never throws for anything the device or the line does. */
  provision(line: FrameLine): Promise<ProvisionOutcome>;
}

const DEFAULTS = { retryDelayMs: 1000, retries: 3, maxBadFrames: 16 };

/** Why a session stopped: the code, and the §7 ERROR code to tell the device (none once the line is gone). */
class SessionStop extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly frameError?: number,
  ) {
    super(detail);
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export function createStation(deps: StationDeps, options: StationOptions): Station {
  const { registrar } = deps;
  const log = deps.log.child({ part: 'provision' });
  const rand = deps.randomBytes ?? ((n: number) => new Uint8Array(randomBytes(n)));
  const retryDelayMs = options.retryDelayMs ?? DEFAULTS.retryDelayMs;
  const retries = options.retries ?? DEFAULTS.retries;
  const maxBadFrames = options.maxBadFrames ?? DEFAULTS.maxBadFrames;
  if (options.brokerUrls.length === 0) throw new EdgegwError('EDGEGW_USAGE', 'at least one broker URL is needed');
  const brokerUrls = [...options.brokerUrls];
  const config = new Map<unknown, unknown>(options.config ?? []);

  return {
    async provision(line) {
      const stats = { retries: 0, badFrames: 0 };
      let identity: IdentityFrame | undefined;

      /**
       * Sends `frame` and waits for a frame of type `want`, resending on silence or on the
       * peer's ERROR 1, `retries` times. A bad frame from the peer is answered with ERROR 1
       * and the wait goes on (the peer resends); frames of other types are stale answers to
       * an earlier retry and are skipped.
       */
      async function exchange<T extends Frame['type']>(frame: Frame, want: T): Promise<{ frame: Extract<Frame, { type: T }>; cbor: Uint8Array }> {
        let attempt = 0;
        await line.send(frame);
        let deadline = performance.now() + retryDelayMs;
        for (;;) {
          const e = await line.next(Math.max(0, deadline - performance.now()));
          if (e.kind === 'closed') throw new SessionStop('EDGEGW_PROVISION_LINE_CUT', 'the serial line closed');
          const resend = async (): Promise<void> => {
            if (attempt === retries) throw new SessionStop('EDGEGW_PROVISION_TIMEOUT', `no answer after ${retries} retries`, FRAME_ERROR.TIMEOUT);
            attempt += 1;
            stats.retries += 1;
            await line.send(frame);
            deadline = performance.now() + retryDelayMs;
          };
          if (e.kind === 'timeout') {
            await resend();
            continue;
          }
          const r = e.result;
          if (!r.ok) {
            const code = frameErrorFor(r.reason);
            if (code !== FRAME_ERROR.BAD_FRAME) throw new SessionStop('EDGEGW_PROVISION_BAD_MESSAGE', r.detail ?? r.reason, FRAME_ERROR.BAD_MESSAGE);
            // §7: a frame with a bad CRC is dropped and answered with ERROR 1.
            stats.badFrames += 1;
            if (stats.badFrames > maxBadFrames) throw new SessionStop('EDGEGW_PROVISION_BAD_MESSAGE', `${stats.badFrames} bad frames`, FRAME_ERROR.BAD_MESSAGE);
            await line.send({ type: FRAME_TYPE.ERROR, code: FRAME_ERROR.BAD_FRAME, message: 'bad frame or CRC' });
            continue;
          }
          const got = r.value.frame;
          if (got.type === want) return { frame: got as Extract<Frame, { type: T }>, cbor: r.value.cbor };
          if (got.type === FRAME_TYPE.ERROR) {
            if (got.code === FRAME_ERROR.BAD_FRAME) {
              await resend();
              continue;
            }
            throw new SessionStop('EDGEGW_PROVISION_DEVICE_ERROR', `device sent ERROR ${got.code}: ${got.message.slice(0, 200)}`);
          }
          log.debug({ type: got.type, want }, 'skipped a stale frame');
        }
      }

      const steps = {
        async hello(): Promise<{ nonce: Uint8Array; identity: IdentityFrame }> {
          const nonce = rand(16);
          const { frame } = await exchange({ type: FRAME_TYPE.HELLO, nonce, gatewayId: registrar.identity.gatewayId }, FRAME_TYPE.IDENTITY);
          identity = frame;
          return { nonce, identity: frame };
        },
        checkPop(nonce: Uint8Array, id: IdentityFrame): void {
          // The decoder already checked that the key is a valid point of its algorithm.
          const key = importPublicKey(id.alg, id.publicKey);
          if (!key.ok || !verifySignatureBytes(key.value, popMessage(nonce, id.publicKey), id.pop)) {
            throw new SessionStop('EDGEGW_PROVISION_POP_FAILED', 'the proof of possession does not verify', FRAME_ERROR.POP_FAILED);
          }
        },
        checkFree(id: IdentityFrame): void {
          if (registrar.store.registry.getDevice(id.deviceId)) {
            throw new SessionStop('EDGEGW_PROVISION_REFUSED', `device ${id.deviceId} is already provisioned`, FRAME_ERROR.REFUSED);
          }
          if (registrar.store.registry.findKey(kidOf(id.publicKey))) {
            throw new SessionStop('EDGEGW_PROVISION_REFUSED', 'that key is already provisioned', FRAME_ERROR.REFUSED);
          }
        },
        async issue(id: IdentityFrame) {
          return registrar.pki.issueDeviceCert({ deviceId: id.deviceId, alg: id.alg, publicKeyRaw: id.publicKey });
        },
        async credentials(id: IdentityFrame, certDer: Uint8Array): Promise<void> {
          const frame: CredentialsFrame = {
            type: FRAME_TYPE.CREDENTIALS,
            deviceId: id.deviceId,
            deviceCert: certDer,
            caCert: registrar.pki.caBundleDer,
            gatewayPublicKey: registrar.identity.publicKey,
            brokerUrls,
            config,
          };
          // The digest covers the CBOR we send; encoding is deterministic, so every resend is the same bytes.
          const expected = credentialsDigest(encodeFrameCbor(frame));
          const { frame: commit } = await exchange(frame, FRAME_TYPE.COMMIT);
          if (!Buffer.from(commit.credentialsDigest).equals(Buffer.from(expected))) {
            throw new SessionStop('EDGEGW_PROVISION_BAD_MESSAGE', 'the COMMIT digest does not match the CREDENTIALS sent', FRAME_ERROR.BAD_MESSAGE);
          }
        },
        register(id: IdentityFrame, cert: { serialHex: string; notAfterMs: number }): void {
          const registry = registrar.store.registry;
          const kid = kidOf(id.publicKey);
          try {
            registry.addDeviceWithCert(
              { id: id.deviceId, alg: id.alg, pub: id.publicKey, kid, firmware: id.firmwareVersion, model: id.hardwareModel },
              { serial: cert.serialHex, notAfterMs: cert.notAfterMs },
            );
          } catch (err) {
            // Another station (or `edgegw device add`) took the id or key since checkFree.
            if (isEdgegwError(err, 'EDGEGW_REGISTRY_DEVICE_EXISTS') || isEdgegwError(err, 'EDGEGW_REGISTRY_KEY_EXISTS')) {
              throw new SessionStop('EDGEGW_PROVISION_REFUSED', err.message, FRAME_ERROR.REFUSED);
            }
            throw err;
          }
        },
        async done(id: IdentityFrame): Promise<void> {
          // DONE is not answered (§7); the device is registered whether or not it arrives.
          await line.send({ type: FRAME_TYPE.DONE, deviceId: id.deviceId }).catch((err: unknown) => {
            log.warn({ deviceId: id.deviceId, code: isEdgegwError(err) ? err.code : undefined }, 'DONE not delivered; the device is registered');
          });
        },
      };

      const outcome = (status: ProvisionOutcome['status'], extra: Partial<ProvisionOutcome> = {}): ProvisionOutcome => ({
        status,
        ...(identity ? { deviceId: identity.deviceId, kid: hex(kidOf(identity.publicKey)) } : {}),
        ...extra,
        ...stats,
      });

      try {
        const { nonce, identity: id } = await steps.hello();
        steps.checkPop(nonce, id);
        steps.checkFree(id);
        const cert = await steps.issue(id);
        await steps.credentials(id, cert.der);
        steps.register(id, cert);
        await steps.done(id);
        log.info({ deviceId: id.deviceId, kid: hex(kidOf(id.publicKey)), serialHex: cert.serialHex }, 'device provisioned');
        return outcome('provisioned');
      } catch (err) {
        const stop =
          err instanceof SessionStop
            ? err
            : isEdgegwError(err, 'EDGEGW_PROVISION_LINE_CUT')
              ? new SessionStop(err.code, err.message)
              : new SessionStop(isEdgegwError(err) ? err.code : 'EDGEGW_INTERNAL', err instanceof Error ? err.message : String(err), FRAME_ERROR.INTERNAL);
        if (stop.frameError !== undefined && !line.closed) {
          await line.send({ type: FRAME_TYPE.ERROR, code: stop.frameError, message: ERROR_TEXT[stop.frameError] ?? 'error' }).catch(() => undefined);
        }
        const level = stop.code === 'EDGEGW_INTERNAL' ? 'error' : 'warn';
        log[level]({ code: stop.code, deviceId: identity?.deviceId, err: stop.code === 'EDGEGW_INTERNAL' ? err : undefined }, `provisioning failed: ${stop.detail}`);
        return outcome('failed', { error: stop.code, detail: stop.detail });
      }
    },
  };
}

/** The message of each ERROR frame the station sends: short, fixed, nothing from the device echoed back. */
const ERROR_TEXT: Record<number, string> = {
  [FRAME_ERROR.BAD_FRAME]: 'bad frame or CRC',
  [FRAME_ERROR.BAD_MESSAGE]: 'bad message',
  [FRAME_ERROR.POP_FAILED]: 'proof of possession failed',
  [FRAME_ERROR.REFUSED]: 'device refused',
  [FRAME_ERROR.TIMEOUT]: 'timeout',
  [FRAME_ERROR.INTERNAL]: 'internal error',
};
