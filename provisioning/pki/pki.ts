/**
 * The gateway's local certificate authority (issue 6 §1): a root CA that can be taken offline,
 * an issuing CA that signs device certificates, TLS client and server certificates and CRLs,
 * and the broker's server certificate, renewed when it nears expiry or its names change.
 * The cloud simulator runs its own instance with its own directory, so nothing here is
 * specific to the gateway. This module owns files, not a database: the broker keeps revoked
 * serials in its registry and asks `createCrl` for a signed list.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { EdgegwError, readSecretFile, writeFileAtomic, type Clock, type Logger } from '../../common/index.js';
import {
  CLIENT_CN_RE,
  DEVICE_ID_RE,
  checkValidityDays,
  createCrlDer,
  createIssuingCert,
  createLeafCert,
  createRootCert,
  normalizeSerialHex,
  sanNames,
  type RevokedEntry,
  type Signer,
} from './certs.js';
import { generateP256Key, importDevicePublicKey, loadP256PrivateKey, privateKeyPem, type DeviceKeyAlg } from './keys.js';
import { CERT_FILE_MODE, KEY_FILE_MODE, createDirAtomically, fsyncDir, pkiPaths, type PkiPaths } from './layout.js';
import { ISSUING_VALIDITY_DAYS, ROOT_VALIDITY_DAYS, parseOptions, resolveServerNames, type PkiOptions } from './options.js';
import { loadCert } from './parse.js';
import { x509, type CryptoKey } from './_x509.js';

const DAY_MS = 86_400_000;

export interface PkiDeps {
  log: Logger;
  clock: Clock;
}

export interface DeviceCertRequest {
  deviceId: string;
  alg: DeviceKeyAlg;
  publicKeyRaw: Uint8Array;
  validityDays?: number;
}

export interface DeviceCert {
  der: Uint8Array;
  pem: string;
  serialHex: string;
  notAfterMs: number;
}

/** A certificate with the key generated for it (TLS clients and servers). */
export interface IssuedKeyPair {
  /** The leaf alone. */
  certPem: string;
  /** Leaf then issuing CA: what a TLS endpoint presents as `cert`. */
  chainPem: string;
  /** Unencrypted PKCS#8 PEM: store it with mode 0600. */
  keyPem: string;
  serialHex: string;
  notAfterMs: number;
}

/** Options for `tls.createServer` (add `requestCert: true` for client certificates). */
export interface ServerTlsOptions {
  /** The server key, unencrypted PKCS#8 PEM. */
  key: string;
  /** The server certificate followed by the issuing CA. */
  cert: string;
  /**
   * The CAs client certificates must chain to: the issuing CA and the root. The root is
   * needed because OpenSSL only ends a chain at a self-signed anchor unless
   * X509_V_FLAG_PARTIAL_CHAIN is set, and node:tls servers drop `allowPartialTrustChain`
   * (Node 20 forwards it for clients only; nodejs/node#54790 added it as a client option).
   * The root signs nothing but the issuing CA, so this admits exactly the issuing CA's leaves.
   */
  ca: string;
}

export interface Pki {
  readonly dir: string;
  /** The CA devices trust for the broker: the issuing CA certificate (PEM). */
  readonly caFile: string;
  readonly rootCaFile: string;
  readonly rootKeyFile: string;
  readonly issuingKeyFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** Creates the CA hierarchy and server certificate on first call, loads them afterwards. */
  ensure(): Promise<void>;
  readonly rootCaPem: string;
  readonly issuingCaPem: string;
  /** What devices trust for the broker (PROTOCOL.md §7 field 3): the issuing CA. */
  readonly caBundlePem: string;
  readonly caBundleDer: Uint8Array;
  /** Whether the root key is in the directory (false once it was taken offline). */
  readonly rootKeyOnline: boolean;
  serverTls(): ServerTlsOptions;
  issueDeviceCert(req: DeviceCertRequest): Promise<DeviceCert>;
  issueClientCert(req: { cn: string; validityDays?: number }): Promise<IssuedKeyPair>;
  issueServerCert(req?: { names?: readonly string[]; validityDays?: number }): Promise<IssuedKeyPair>;
  /** Issues a new broker certificate, writes it, and returns it; reload TLS with serverTls(). */
  renewServerCert(): Promise<IssuedKeyPair>;
  createCrl(revoked: readonly RevokedEntry[]): Promise<{ der: Uint8Array; pem: string }>;
}

interface ServerState {
  cert: x509.X509Certificate;
  certPem: string;
  keyPem: string;
}

interface State {
  rootPem: string;
  rootKeyOnline: boolean;
  issuing: Signer;
  issuingPem: string;
  server: ServerState;
}

function corrupt(message: string, cause?: unknown): EdgegwError {
  return new EdgegwError('EDGEGW_PKI_CORRUPT', message, cause === undefined ? undefined : { cause });
}

function sameBytes(a: ArrayBuffer | Uint8Array, b: ArrayBuffer | Uint8Array): boolean {
  return Buffer.from(a instanceof Uint8Array ? a : new Uint8Array(a)).equals(b instanceof Uint8Array ? b : new Uint8Array(b));
}

function readCertFile(path: string): { cert: x509.X509Certificate; pem: string } {
  try {
    const pem = readFileSync(path, 'utf8');
    return { cert: loadCert(pem), pem };
  } catch (err) {
    throw corrupt(`${path} is missing or not a certificate`, err);
  }
}

function isNonEmptyDir(path: string): boolean {
  try {
    return readdirSync(path).length > 0;
  } catch {
    return false;
  }
}

function readKeyFile(path: string): string {
  try {
    return readSecretFile(path).toString('utf8');
  } catch (err) {
    // A loose mode is the operator's to fix and keeps its own code.
    if (err instanceof EdgegwError) throw err;
    throw corrupt(`${path} is missing or unreadable`, err);
  }
}

export function createPki(deps: PkiDeps, options: PkiOptions): Pki {
  const opts = parseOptions(options);
  const log = deps.log.child({ part: 'pki' });
  const { clock } = deps;
  const paths: PkiPaths = pkiPaths(opts.dir);
  const configuredServerNames = resolveServerNames(opts.serverNames);
  let state: State | undefined;
  let ensuring: Promise<void> | undefined;
  let lastCrlNumber = 0;

  function ready(): State {
    if (state === undefined) throw new EdgegwError('EDGEGW_INTERNAL', 'pki: call ensure() before using the PKI');
    return state;
  }

  // ---- first start: the whole hierarchy in a temporary directory, renamed into place ----

  async function createHierarchy(tmp: string): Promise<void> {
    const nowMs = clock.now();
    // A random suffix keeps the names of two installations apart, so a peer that trusts
    // several edgegw CAs never confuses their issuers.
    const id = randomBytes(4).toString('hex');
    const rootKey = await generateP256Key();
    const root = await createRootCert(rootKey, { cn: `${opts.caName} root CA ${id}`, nowMs, validityDays: ROOT_VALIDITY_DAYS });
    const issuingKey = await generateP256Key();
    const issuing = await createIssuingCert({ cert: root, key: rootKey.privateKey }, issuingKey.publicKey, {
      cn: `${opts.caName} issuing CA ${id}`,
      nowMs,
      validityDays: ISSUING_VALIDITY_DAYS,
    });
    const server = await issueLeafWithKey(
      { cert: issuing, key: issuingKey.privateKey },
      { kind: 'server', cn: configuredServerNames[0]!, names: configuredServerNames },
      opts.serverValidityDays,
    );
    const files = pkiPaths(tmp);
    writeFileAtomic(files.rootCaCert, root.toString('pem'), CERT_FILE_MODE);
    writeFileAtomic(files.rootCaKey, privateKeyPem(rootKey.keyObject, opts.passphrase), KEY_FILE_MODE);
    writeFileAtomic(files.issuingCaCert, issuing.toString('pem'), CERT_FILE_MODE);
    writeFileAtomic(files.issuingCaKey, privateKeyPem(issuingKey.keyObject, opts.passphrase), KEY_FILE_MODE);
    writeFileAtomic(files.serverKey, server.keyPem, KEY_FILE_MODE);
    writeFileAtomic(files.serverCert, server.certPem, CERT_FILE_MODE);
  }

  // ---- every start: load, check that the pieces belong together ----

  async function loadSigner(certPath: string, keyPath: string, what: string): Promise<{ cert: x509.X509Certificate; pem: string; key: CryptoKey; encrypted: boolean }> {
    const { cert, pem } = readCertFile(certPath);
    const loaded = await loadP256PrivateKey(readKeyFile(keyPath), opts.passphrase, what);
    if (!sameBytes(loaded.spkiDer, cert.publicKey.rawData)) throw corrupt(`${keyPath} does not match ${certPath}`);
    return { cert, pem, key: loaded.privateKey, encrypted: loaded.encrypted };
  }

  async function loadHierarchy(): Promise<Omit<State, 'server'>> {
    if (!existsSync(paths.issuingCaCert)) throw corrupt(`${paths.dir} exists but holds no PKI (issuing-ca.crt missing)`);
    const { cert: root, pem: rootPem } = readCertFile(paths.rootCaCert);
    if (!(await root.verify({ publicKey: root.publicKey, signatureOnly: true }))) throw corrupt('root-ca.crt is not self-signed');
    const issuing = await loadSigner(paths.issuingCaCert, paths.issuingCaKey, 'issuing-ca.key');
    if (!(await issuing.cert.verify({ publicKey: root.publicKey, signatureOnly: true }))) {
      throw corrupt('issuing-ca.crt is not signed by root-ca.crt');
    }
    // The root key is optional: docs/pki.md describes taking it offline.
    const rootKeyOnline = existsSync(paths.rootCaKey);
    if (rootKeyOnline) {
      const rootLoaded = await loadSigner(paths.rootCaCert, paths.rootCaKey, 'root-ca.key');
      if (opts.passphrase !== undefined && !rootLoaded.encrypted) log.warn('root-ca.key is not encrypted although a passphrase is configured');
    }
    if (opts.passphrase !== undefined && !issuing.encrypted) log.warn('issuing-ca.key is not encrypted although a passphrase is configured');
    return { rootPem, rootKeyOnline, issuing: { cert: issuing.cert, key: issuing.key }, issuingPem: issuing.pem };
  }

  /** The stored server certificate, or why it must be renewed. */
  async function loadServer(issuing: Signer): Promise<ServerState | string> {
    if (!existsSync(paths.serverCert) || !existsSync(paths.serverKey)) return 'missing';
    const keyPem = readKeyFile(paths.serverKey);
    let cert: x509.X509Certificate;
    let certPem: string;
    let spki: Uint8Array;
    try {
      ({ cert, pem: certPem } = readCertFile(paths.serverCert));
      spki = (await loadP256PrivateKey(keyPem, undefined, 'server.key')).spkiDer;
    } catch (err) {
      if (err instanceof EdgegwError && err.code === 'EDGEGW_PKI_CORRUPT') return 'unreadable';
      throw err;
    }
    // Two processes renewing at once may leave one's key beside the other's certificate.
    if (!sameBytes(spki, cert.publicKey.rawData)) return 'key does not match certificate';
    if (!(await cert.verify({ publicKey: issuing.cert.publicKey, signatureOnly: true }))) return 'not signed by the issuing CA';
    const have = new Set(sanNames(cert));
    if (have.size !== configuredServerNames.length || configuredServerNames.some((n) => !have.has(n))) return 'server names changed';
    const nowMs = clock.now();
    if (cert.notAfter.getTime() - nowMs < opts.renewBeforeDays * DAY_MS) return 'expires soon';
    // The clock was set back (an RTC reset): peers would refuse a certificate from the future.
    if (cert.notBefore.getTime() > nowMs) return 'not yet valid';
    return { cert, certPem, keyPem };
  }

  async function ensureOnce(): Promise<void> {
    // A non-empty directory without a PKI is someone else's: loadHierarchy refuses it below.
    if (!existsSync(paths.issuingCaCert) && !isNonEmptyDir(paths.dir)) {
      const created = await createDirAtomically(paths.dir, createHierarchy);
      log.info({ dir: paths.dir, created }, created ? 'created root CA, issuing CA and server certificate' : 'another process created the PKI first');
    }
    const hierarchy = await loadHierarchy();
    const server = await loadServer(hierarchy.issuing);
    if (typeof server !== 'string') {
      state = { ...hierarchy, server };
    } else {
      const issued = await issueLeafWithKey(
        hierarchy.issuing,
        { kind: 'server', cn: configuredServerNames[0]!, names: configuredServerNames },
        opts.serverValidityDays,
      );
      state = { ...hierarchy, server: writeServer(issued) };
      log.info({ reason: server, serialHex: issued.serialHex, notAfterMs: issued.notAfterMs }, 'renewed the server certificate');
    }
    log.info(
      { dir: paths.dir, rootKeyOnline: state.rootKeyOnline, serverNotAfterMs: state.server.cert.notAfter.getTime() },
      'pki ready',
    );
  }

  // ---- issuing ----

  async function issueLeafWithKey(
    issuer: Signer,
    profile: { kind: 'client'; cn: string } | { kind: 'server'; cn: string; names: readonly string[] },
    validityDays: number,
  ): Promise<IssuedKeyPair & { cert: x509.X509Certificate }> {
    const key = await generateP256Key();
    const cert = await createLeafCert(issuer, key.publicKey, profile, { nowMs: clock.now(), validityDays });
    const certPem = cert.toString('pem');
    return {
      cert,
      certPem,
      chainPem: `${certPem}\n${issuer.cert.toString('pem')}\n`,
      keyPem: privateKeyPem(key.keyObject),
      serialHex: normalizeSerialHex(cert.serialNumber),
      notAfterMs: cert.notAfter.getTime(),
    };
  }

  function writeServer(issued: IssuedKeyPair & { cert: x509.X509Certificate }): ServerState {
    writeFileAtomic(paths.serverKey, issued.keyPem, KEY_FILE_MODE);
    writeFileAtomic(paths.serverCert, issued.certPem, CERT_FILE_MODE);
    fsyncDir(paths.dir);
    return { cert: issued.cert, certPem: issued.certPem, keyPem: issued.keyPem };
  }

  return {
    dir: paths.dir,
    caFile: paths.issuingCaCert,
    rootCaFile: paths.rootCaCert,
    rootKeyFile: paths.rootCaKey,
    issuingKeyFile: paths.issuingCaKey,
    serverCertFile: paths.serverCert,
    serverKeyFile: paths.serverKey,

    ensure(): Promise<void> {
      ensuring ??= ensureOnce().catch((err: unknown) => {
        // A failed start (wrong passphrase, bad mode) may be retried once the cause is fixed.
        ensuring = undefined;
        throw err;
      });
      return ensuring;
    },

    get rootCaPem() {
      return ready().rootPem;
    },
    get issuingCaPem() {
      return ready().issuingPem;
    },
    get caBundlePem() {
      return ready().issuingPem;
    },
    get caBundleDer() {
      return new Uint8Array(ready().issuing.cert.rawData);
    },
    get rootKeyOnline() {
      return ready().rootKeyOnline;
    },

    serverTls(): ServerTlsOptions {
      const s = ready();
      return {
        key: s.server.keyPem,
        cert: `${s.server.certPem}\n${s.issuingPem}`,
        ca: `${s.issuingPem}\n${s.rootPem}`,
      };
    },

    async issueDeviceCert(req: DeviceCertRequest): Promise<DeviceCert> {
      const s = ready();
      if (typeof req.deviceId !== 'string' || !DEVICE_ID_RE.test(req.deviceId)) {
        throw new EdgegwError('EDGEGW_DEVICE_ID_INVALID', 'deviceId must match ^[A-Za-z0-9_-]{1,64}$ (PROTOCOL.md §1)');
      }
      const validityDays = checkValidityDays(req.validityDays ?? opts.validityDays);
      const publicKey = await importDevicePublicKey(req.alg, req.publicKeyRaw);
      const cert = await createLeafCert(s.issuing, publicKey, { kind: 'client', cn: req.deviceId }, { nowMs: clock.now(), validityDays });
      const serialHex = normalizeSerialHex(cert.serialNumber);
      log.debug({ deviceId: req.deviceId, serialHex }, 'issued device certificate');
      return { der: new Uint8Array(cert.rawData), pem: cert.toString('pem'), serialHex, notAfterMs: cert.notAfter.getTime() };
    },

    async issueClientCert(req: { cn: string; validityDays?: number }): Promise<IssuedKeyPair> {
      const s = ready();
      if (typeof req.cn !== 'string' || !CLIENT_CN_RE.test(req.cn)) {
        throw new EdgegwError('EDGEGW_PKI_BAD_REQUEST', 'cn must match ^[A-Za-z0-9_.-]{1,64}$');
      }
      const validityDays = checkValidityDays(req.validityDays ?? opts.validityDays);
      const { cert: _cert, ...issued } = await issueLeafWithKey(s.issuing, { kind: 'client', cn: req.cn }, validityDays);
      log.info({ cn: req.cn, serialHex: issued.serialHex }, 'issued client certificate');
      return issued;
    },

    async issueServerCert(req: { names?: readonly string[]; validityDays?: number } = {}): Promise<IssuedKeyPair> {
      const s = ready();
      const names = req.names === undefined ? configuredServerNames : resolveServerNames(req.names);
      const validityDays = checkValidityDays(req.validityDays ?? opts.serverValidityDays);
      const { cert: _cert, ...issued } = await issueLeafWithKey(s.issuing, { kind: 'server', cn: names[0]!, names }, validityDays);
      log.info({ serialHex: issued.serialHex, names }, 'issued server certificate');
      return issued;
    },

    async renewServerCert(): Promise<IssuedKeyPair> {
      const s = ready();
      const issued = await issueLeafWithKey(
        s.issuing,
        { kind: 'server', cn: configuredServerNames[0]!, names: configuredServerNames },
        opts.serverValidityDays,
      );
      s.server = writeServer(issued);
      log.info({ reason: 'requested', serialHex: issued.serialHex, notAfterMs: issued.notAfterMs }, 'renewed the server certificate');
      const { cert: _cert, ...rest } = issued;
      return rest;
    },

    async createCrl(revoked: readonly RevokedEntry[]): Promise<{ der: Uint8Array; pem: string }> {
      const s = ready();
      const nowMs = clock.now();
      // RFC 5280 §5.2.3: CRL numbers only grow; the clock gives that across restarts.
      lastCrlNumber = Math.max(nowMs, lastCrlNumber + 1);
      const crl = await createCrlDer(s.issuing, revoked, {
        nowMs,
        nextUpdateMs: nowMs + opts.crlValidityDays * DAY_MS,
        crlNumber: lastCrlNumber,
      });
      log.info({ entries: revoked.length }, 'signed a revocation list');
      // RFC 7468 §5: the PEM label is "X509 CRL"; the library writes "CRL", which OpenSSL
      // (and so node:tls `crl`) does not read.
      return { der: new Uint8Array(crl.rawData), pem: x509.PemConverter.encode(crl.rawData, 'X509 CRL') };
    },
  };
}

