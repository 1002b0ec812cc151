/**
 * Registering devices from outside the running gateway (the CLI, the simulator, the
 * provisioning station): validate the raw public key, add the device and its key, issue its
 * client certificate from the local PKI and record the certificate. The running gateway sees
 * the change within a second (it watches the database).
 */
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import { EdgegwError } from '../common/errors.js';
import { importPublicKey, kidOf, isDeviceId, type CoseAlg } from '../protocol/index.js';
import { createPki, type Pki } from '../provisioning/pki/index.js';
import { createStore, DEFAULT_STORE_LIMITS, type Store } from './store/index.js';
import { dataPaths, loadOrCreateIdentity, type GatewayIdentity } from './identity.js';

export interface Registration {
  deviceId: string;
  kid: Uint8Array;
  certPem: string;
  certDer: Uint8Array;
  serialHex: string;
}

export interface Registrar {
  readonly store: Store;
  readonly pki: Pki;
  readonly identity: GatewayIdentity;
  register(req: { id: string; alg: CoseAlg; pub: Uint8Array; firmware?: string; model?: string }): Promise<Registration>;
  close(): void;
}

export async function openRegistrar(deps: { log: Logger; clock: Clock }, dataDir: string): Promise<Registrar> {
  const paths = dataPaths(dataDir);
  const identity = loadOrCreateIdentity(dataDir);
  const store = createStore(deps, { path: paths.db, maxOutboxRows: 1, maxOutboxBytes: 1, maxBatchRows: DEFAULT_STORE_LIMITS.maxBatchRows });
  const pki = createPki(deps, { dir: paths.pki });
  try {
    await pki.ensure();
  } catch (err) {
    store.close();
    throw err;
  }
  return {
    store,
    pki,
    identity,
    async register(req) {
      if (!isDeviceId(req.id)) throw new EdgegwError('EDGEGW_DEVICE_ID_INVALID', `invalid device id ${JSON.stringify(req.id)}`);
      const key = importPublicKey(req.alg, req.pub);
      if (!key.ok) throw new EdgegwError(key.reason, key.detail ?? 'invalid public key');
      const kid = kidOf(req.pub);
      if (store.registry.getDevice(req.id)) throw new EdgegwError('EDGEGW_REGISTRY_DEVICE_EXISTS', `device ${req.id} is already registered`);
      // Issue first: a failure here leaves nothing registered.
      const cert = await pki.issueDeviceCert({ deviceId: req.id, alg: req.alg, publicKeyRaw: req.pub });
      store.registry.addDeviceWithCert(
        { id: req.id, alg: req.alg, pub: req.pub, kid, ...(req.firmware ? { firmware: req.firmware } : {}), ...(req.model ? { model: req.model } : {}) },
        { serial: cert.serialHex, notAfterMs: cert.notAfterMs },
      );
      return { deviceId: req.id, kid, certPem: cert.pem, certDer: cert.der, serialHex: cert.serialHex };
    },
    close() {
      store.close();
    },
  };
}
