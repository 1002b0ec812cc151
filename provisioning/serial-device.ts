/**
 * A simulated device on the far end of a provisioning line (issue 6 §3): the firmware side of
 * PROTOCOL.md §7. It answers HELLO with an IDENTITY (its id proposed from its serial number,
 * its key, a proof of possession), stores the CREDENTIALS in its flash file (device-sim's
 * flash format, so the firmware model can then connect with them) and only then sends COMMIT,
 * and waits for DONE. It never retries on its own: the station drives the session (§7); the
 * device answers every retry and resends its last frame when told ERROR 1.
 *
 * The key is generated in RAM and reaches flash together with the credentials: until then
 * the device has nothing worth keeping, and a session cut short simply starts again. A device
 * whose flash already holds credentials proposes the same id and key again.
 *
 * `faults` make it misbehave on purpose, for the tests and the demo of the station's errors.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { Logger } from '../common/log.js';
import { EdgegwError, type ErrorCode } from '../common/errors.js';
import {
  credentialsDigest,
  encodeFrameCbor,
  FRAME_ERROR,
  FRAME_TYPE,
  frameContent,
  frameErrorFor,
  generateKeyPair,
  isDeviceId,
  kidOf,
  nobleSigner,
  popMessage,
  slipEncode,
  type CoseAlg,
  type CredentialsFrame,
  type Frame,
  type HelloFrame,
  type Signer,
} from '../protocol/index.js';
import { tlsKeyPem, type FlashState, type FlashStore } from '../device-sim/index.js';
import type { FrameLine } from './line.js';

/** Ways the simulated device can misbehave. */
export const DEVICE_FAULTS = ['bad-crc', 'bad-pop', 'silent', 'stall-after-credentials', 'bad-commit', 'refuse'] as const;
export type DeviceFault = (typeof DEVICE_FAULTS)[number];
const FAULT_HELP: Record<DeviceFault, string> = {
  'bad-crc': 'its first IDENTITY has a wrong CRC (then it resends on ERROR 1)',
  'bad-pop': 'its proof of possession is signed over the wrong nonce',
  silent: 'it never answers',
  'stall-after-credentials': 'it stores nothing and never answers CREDENTIALS',
  'bad-commit': 'its COMMIT carries a wrong digest',
  refuse: 'it answers HELLO with ERROR 4 (denied)',
};
export const describeFaults = (): string => DEVICE_FAULTS.map((f) => `  ${f.padEnd(24)} ${FAULT_HELP[f]}`).join('\n');

export interface SerialDeviceDeps {
  log: Logger;
  /** Where the credentials go; its current content (if any) is the device's identity. */
  flash: FlashStore;
}

export interface SerialDeviceOptions {
  /** The serial number the proposed deviceId comes from. */
  serialNumber: string;
  /** Key algorithm for a device that has no key yet. Default EdDSA. */
  alg?: CoseAlg;
  firmwareVersion?: string;
  hardwareModel?: string;
  faults?: readonly DeviceFault[];
  /** The device gives up after this long without a frame. Default 30 000. */
  idleTimeoutMs?: number;
  /** Called with the type of every well-formed frame received (observation for tests). */
  onFrame?: (type: Frame['type']) => void;
}

export interface DeviceOutcome {
  status: 'provisioned' | 'failed';
  deviceId: string;
  kid: string;
  error?: ErrorCode;
  detail?: string;
  /** ERROR codes the station sent, in order. */
  errorsReceived: number[];
}

export interface SerialDevice {
  readonly deviceId: string;
  readonly alg: CoseAlg;
  readonly publicKey: Uint8Array;
  /** Answers one station session on `line` until DONE, a fatal ERROR, the idle timeout or the line closing. */
  run(line: FrameLine): Promise<DeviceOutcome>;
}

/** A deviceId proposed from a serial number: characters outside ^[A-Za-z0-9_-] become '-', at most 64 (PROTOCOL.md §1). */
export function deviceIdFromSerial(serialNumber: string): string {
  const id = serialNumber.trim().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 64);
  if (!isDeviceId(id)) throw new EdgegwError('EDGEGW_USAGE', 'the serial number gives no usable device id');
  return id;
}

const STATION_ERRORS: Record<number, ErrorCode> = {
  [FRAME_ERROR.BAD_MESSAGE]: 'EDGEGW_PROVISION_BAD_MESSAGE',
  [FRAME_ERROR.POP_FAILED]: 'EDGEGW_PROVISION_POP_FAILED',
  [FRAME_ERROR.REFUSED]: 'EDGEGW_PROVISION_REFUSED',
  [FRAME_ERROR.TIMEOUT]: 'EDGEGW_PROVISION_TIMEOUT',
};

function derToPem(der: Uint8Array): string {
  // Parsing checks the DER; toString() is the PEM.
  return new X509Certificate(Buffer.from(der)).toString();
}

export function createSerialDevice(deps: SerialDeviceDeps, options: SerialDeviceOptions): SerialDevice {
  const log = deps.log.child({ part: 'serial-device' });
  const faults = new Set(options.faults ?? []);
  const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;

  // Power-on: read the flash once, on first use (the factory itself does no I/O).
  let booted: { alg: CoseAlg; privateKey: Uint8Array; signer: Signer; deviceId: string; kid: string } | undefined;
  function boot(): NonNullable<typeof booted> {
    if (booted !== undefined) return booted;
    const prior = deps.flash.load();
    const alg = prior?.alg ?? options.alg ?? 'EdDSA';
    const privateKey = prior?.privateKey ?? generateKeyPair(alg).privateKey;
    const signer = nobleSigner(alg, privateKey);
    const deviceId = prior?.deviceId ?? deviceIdFromSerial(options.serialNumber);
    booted = { alg, privateKey, signer, deviceId, kid: Buffer.from(kidOf(signer.publicKey)).toString('hex') };
    return booted;
  }

  /** Checks the credentials, then stores them durably: only after that may COMMIT go out (§7). */
  function store(hello: HelloFrame, c: CredentialsFrame): void {
    const { alg, privateKey } = boot();
    const cert = new X509Certificate(Buffer.from(c.deviceCert));
    if (!cert.checkPrivateKey(createPrivateKey(tlsKeyPem(alg, privateKey)))) {
      throw new EdgegwError('EDGEGW_PROVISION_BAD_MESSAGE', 'the certificate is not for this device key');
    }
    const previous = deps.flash.load();
    const sameGateway = previous !== undefined && Buffer.from(previous.gatewayPublicKey).equals(Buffer.from(c.gatewayPublicKey));
    const state: FlashState = {
      deviceId: c.deviceId,
      alg,
      privateKey,
      certPem: cert.toString(),
      caPem: derToPem(c.caCert),
      gatewayId: hello.gatewayId,
      gatewayPublicKey: c.gatewayPublicKey.slice(),
      brokerUrls: [...c.brokerUrls],
      // PROTOCOL.md §3: seq never goes back over the device's lifetime, whatever it is provisioned to.
      reservedUpTo: previous?.reservedUpTo ?? 0,
      // Command seqs are per gateway (§6): a new gateway starts them again.
      commandSeq: sameGateway ? previous.commandSeq : 0,
    };
    deps.flash.save(state);
  }

  return {
    get deviceId() {
      return boot().deviceId;
    },
    get alg() {
      return boot().alg;
    },
    get publicKey() {
      return boot().signer.publicKey;
    },
    async run(line) {
      const { alg, signer, deviceId, kid } = boot();
      const errorsReceived: number[] = [];
      let hello: HelloFrame | undefined;
      let lastSent: Frame | undefined;
      let committed = false;
      let crcFaultUsed = false;

      const finish = (status: DeviceOutcome['status'], error?: ErrorCode, detail?: string): DeviceOutcome => ({
        status,
        deviceId,
        kid,
        ...(error === undefined ? {} : { error }),
        ...(detail === undefined ? {} : { detail }),
        errorsReceived,
      });
      const send = async (frame: Frame): Promise<void> => {
        lastSent = frame;
        await line.send(frame);
      };

      try {
        for (;;) {
          const e = await line.next(idleTimeoutMs);
          if (e.kind === 'closed') return finish('failed', 'EDGEGW_PROVISION_LINE_CUT', 'the serial line closed');
          if (e.kind === 'timeout') return finish('failed', 'EDGEGW_PROVISION_TIMEOUT', `no frame for ${idleTimeoutMs} ms`);
          if (!e.result.ok) {
            const code = frameErrorFor(e.result.reason);
            await line.send({ type: FRAME_TYPE.ERROR, code, message: code === FRAME_ERROR.BAD_FRAME ? 'bad frame or CRC' : 'bad message' });
            continue;
          }
          const { frame, cbor } = e.result.value;
          options.onFrame?.(frame.type);
          if (faults.has('silent')) continue;

          if (frame.type === FRAME_TYPE.HELLO) {
            if (faults.has('refuse')) {
              await line.send({ type: FRAME_TYPE.ERROR, code: FRAME_ERROR.REFUSED, message: 'denied' });
              return finish('failed', 'EDGEGW_PROVISION_REFUSED', 'refused by the device');
            }
            hello = frame;
            // bad-pop: signed over another nonce, as a device replaying an old IDENTITY would be.
            const popNonce = faults.has('bad-pop') ? frame.nonce.map((b) => b ^ 0xff) : frame.nonce;
            const identity: Frame = {
              type: FRAME_TYPE.IDENTITY,
              deviceId,
              alg,
              publicKey: signer.publicKey,
              pop: signer.sign(popMessage(popNonce, signer.publicKey)),
              firmwareVersion: options.firmwareVersion ?? '1.0.0',
              hardwareModel: options.hardwareModel ?? 'edgegw-sim',
            };
            if (faults.has('bad-crc') && !crcFaultUsed) {
              crcFaultUsed = true;
              lastSent = identity;
              const content = frameContent(encodeFrameCbor(identity));
              const last = content.length - 1;
              content[last] = content[last]! ^ 0x01;
              await line.sendRaw(slipEncode(content));
            } else {
              await send(identity);
            }
            continue;
          }

          if (frame.type === FRAME_TYPE.CREDENTIALS) {
            if (hello === undefined) continue;
            if (faults.has('stall-after-credentials')) continue;
            if (frame.deviceId !== deviceId) {
              await line.send({ type: FRAME_TYPE.ERROR, code: FRAME_ERROR.BAD_MESSAGE, message: 'not my device id' });
              return finish('failed', 'EDGEGW_PROVISION_BAD_MESSAGE', 'CREDENTIALS for another device id');
            }
            try {
              store(hello, frame);
            } catch (err) {
              await line.send({ type: FRAME_TYPE.ERROR, code: FRAME_ERROR.BAD_MESSAGE, message: 'credentials refused' });
              return finish('failed', 'EDGEGW_PROVISION_BAD_MESSAGE', err instanceof Error ? err.message : String(err));
            }
            committed = true;
            const digest = credentialsDigest(faults.has('bad-commit') ? cbor.subarray(1) : cbor);
            await send({ type: FRAME_TYPE.COMMIT, credentialsDigest: digest });
            continue;
          }

          if (frame.type === FRAME_TYPE.DONE) {
            if (committed && frame.deviceId === deviceId) return finish('provisioned');
            continue;
          }

          if (frame.type === FRAME_TYPE.ERROR) {
            errorsReceived.push(frame.code);
            if (frame.code === FRAME_ERROR.BAD_FRAME) {
              if (lastSent !== undefined) await send(lastSent);
              continue;
            }
            return finish('failed', STATION_ERRORS[frame.code] ?? 'EDGEGW_PROVISION_DEVICE_ERROR', `station sent ERROR ${frame.code}`);
          }
          log.debug({ type: frame.type }, 'ignored a frame a device does not expect');
        }
      } catch (err) {
        if (err instanceof EdgegwError && err.code === 'EDGEGW_PROVISION_LINE_CUT') return finish('failed', err.code, err.message);
        throw err;
      }
    },
  };
}
