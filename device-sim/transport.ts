/**
 * How a simulated device reaches the broker (PROTOCOL.md §2): mqtts with its client
 * certificate, or the plain listener with username = deviceId and password = a fresh
 * connect token (§4). One mqtt.js client per connection attempt, with mqtt.js' own
 * reconnect switched off: the firmware model owns reconnects and their backoff.
 *
 * The socket is built here rather than by mqtt.js so that Nagle is off (small PUBLISH and
 * PUBACK packets would otherwise wait for each other) and so that a hostile profile can
 * slow the bytes of its CONNECT down (`throttle`).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import { MqttClient, type IClientOptions } from 'mqtt';
import { p256 } from '@noble/curves/nist.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { EdgegwError } from '../common/errors.js';
import { createConnectToken, type CoseAlg, type Signer } from '../protocol/index.js';

export type TransportKind = 'mqtts' | 'mqtt';

export interface BrokerAddress {
  readonly kind: TransportKind;
  readonly host: string;
  readonly port: number;
}

/** Slows the first `bytes` written on the socket to `chunkBytes` every `intervalMs`. */
export interface Throttle {
  readonly bytes: number;
  readonly chunkBytes: number;
  readonly intervalMs: number;
}

export interface ConnectionSpec {
  readonly address: BrokerAddress;
  readonly clientId: string;
  /** mqtts: the device's PEM private key and certificate, and the CA of the broker. */
  readonly tls?: TlsMaterial;
  /** mqtts: a context made once from `tls` by tlsContext(), reused across reconnects. */
  readonly secureContext?: SecureContext;
  /** mqtt: the username and password (a connect token). */
  readonly username?: string;
  readonly password?: Uint8Array;
  readonly keepaliveS: number;
  readonly connectTimeoutMs: number;
  readonly throttle?: Throttle;
  /** Source address of the socket (a fleet spreads itself over 127.0.0.0/8). */
  readonly localAddress?: string;
}

export interface TlsMaterial {
  readonly keyPem: string;
  readonly certPem: string;
  readonly caPem: string;
}

/**
 * The TLS context of a device: parsing its key, certificate and CA costs more than the
 * handshake's own arithmetic, so a device makes it once per boot, not once per connect.
 */
export function tlsContext(m: TlsMaterial): SecureContext {
  return createSecureContext({
    key: m.keyPem,
    cert: m.certPem,
    ca: m.caPem,
    minVersion: 'TLSv1.2',
    // Devices trust the issuing CA itself (PROTOCOL.md §7 field 3), not a root above it.
    allowPartialTrustChain: true,
  });
}

/** Parses `mqtts://host:port` or `mqtt://host:port`. */
export function parseBrokerUrl(url: string): BrokerAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch (err) {
    throw new EdgegwError('EDGEGW_USAGE', `not a broker URL: ${url}`, { cause: err });
  }
  const kind = u.protocol === 'mqtts:' ? 'mqtts' : u.protocol === 'mqtt:' ? 'mqtt' : undefined;
  const port = Number(u.port || (kind === 'mqtts' ? 8883 : 1883));
  if (kind === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new EdgegwError('EDGEGW_USAGE', `broker URL must be mqtts://host:port or mqtt://host:port: ${url}`);
  }
  // URL keeps IPv6 literals in brackets; sockets want them bare.
  return { kind, host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port };
}

/**
 * The device key as a PKCS#8 PEM for the TLS stack: the certificate the gateway issued is
 * for the device's signing key (PROTOCOL.md §1), so TLS proves possession of the same key.
 */
export function tlsKeyPem(alg: CoseAlg, privateKey: Uint8Array): string {
  const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
  let jwk: Record<string, string>;
  if (alg === 'EdDSA') {
    jwk = { kty: 'OKP', crv: 'Ed25519', d: b64(privateKey), x: b64(ed25519.getPublicKey(privateKey)) };
  } else {
    const pub = p256.getPublicKey(privateKey, false);
    jwk = { kty: 'EC', crv: 'P-256', d: b64(privateKey), x: b64(pub.subarray(1, 33)), y: b64(pub.subarray(33, 65)) };
  }
  return createPrivateKey({ key: jwk, format: 'jwk' }).export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** A fresh connect token (PROTOCOL.md §4) for one connection attempt. */
export function connectToken(signer: Signer, deviceId: string, gatewayId: string, nowMs: number, cti: Uint8Array = randomBytes(16)): Uint8Array {
  return createConnectToken(signer, { iss: deviceId, aud: gatewayId, iat: Math.floor(nowMs / 1000), cti });
}

/** Wraps a socket so that its first `throttle.bytes` written bytes trickle out. */
function throttled(socket: Socket, throttle: Throttle): Duplex {
  let budget = throttle.bytes;
  const timers = new Set<NodeJS.Timeout>();
  const duplex = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      if (budget <= 0) {
        socket.write(chunk, cb);
        return;
      }
      let offset = 0;
      const step = (): void => {
        if (socket.destroyed) return cb(new Error('socket closed'));
        const n = budget > 0 ? Math.min(throttle.chunkBytes, chunk.length - offset) : chunk.length - offset;
        socket.write(chunk.subarray(offset, offset + n));
        offset += n;
        budget -= n;
        if (offset >= chunk.length) return cb();
        const timer = setTimeout(() => {
          timers.delete(timer);
          step();
        }, throttle.intervalMs);
        timers.add(timer);
      };
      step();
    },
    read() {
      socket.resume();
    },
    final(cb) {
      socket.end(cb);
    },
    destroy(err, cb) {
      for (const t of timers) clearTimeout(t);
      socket.destroy();
      cb(err);
    },
  });
  socket.on('data', (d: Buffer) => {
    if (!duplex.push(d)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('error', (err) => duplex.destroy(err));
  socket.on('close', () => duplex.destroy());
  return duplex;
}

/** Opens one MQTT connection as the spec says; the caller listens for connect/close/error. */
export function openConnection(spec: ConnectionSpec): MqttClient {
  const { address } = spec;
  const streamBuilder = (): Duplex => {
    let socket: Socket | TLSSocket;
    if (address.kind === 'mqtts') {
      const secureContext = spec.secureContext ?? (spec.tls === undefined ? undefined : tlsContext(spec.tls));
      if (secureContext === undefined) throw new EdgegwError('EDGEGW_USAGE', 'mqtts needs a key, certificate and CA');
      socket = tlsConnect({
        host: address.host,
        port: address.port,
        secureContext,
        // The broker's certificate names the loopback address or host it was issued for.
        servername: isIpLiteral(address.host) ? undefined : address.host,
        ...(spec.localAddress === undefined ? {} : { localAddress: spec.localAddress }),
      });
    } else {
      socket = netConnect({ host: address.host, port: address.port, ...(spec.localAddress === undefined ? {} : { localAddress: spec.localAddress }) });
    }
    socket.setNoDelay(true);
    return spec.throttle === undefined ? socket : throttled(socket, spec.throttle);
  };
  const options: IClientOptions = {
    clientId: spec.clientId,
    protocolVersion: 4,
    clean: true,
    keepalive: spec.keepaliveS,
    connectTimeout: spec.connectTimeoutMs,
    reconnectPeriod: 0,
    resubscribe: false,
    queueQoSZero: false,
    ...(spec.username === undefined ? {} : { username: spec.username }),
    ...(spec.password === undefined ? {} : { password: Buffer.from(spec.password) }),
  };
  // mqtt.js types its stream as readable-stream's Duplex; node:stream's is the same at run time.
  return new MqttClient(streamBuilder as unknown as ConstructorParameters<typeof MqttClient>[0], options);
}

function isIpLiteral(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(':');
}

export type ProbeResult =
  | { readonly outcome: 'connected' }
  | { readonly outcome: 'refused'; readonly returnCode: number }
  | { readonly outcome: 'closed'; readonly afterMs: number }
  | { readonly outcome: 'timeout' };

/**
 * One connection attempt outside a device's own life cycle (hostile profiles): resolves
 * with the broker's answer and always closes what it opened.
 */
export function probeConnect(spec: ConnectionSpec, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    let client: MqttClient | undefined;
    const finish = (r: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client?.end(true);
      resolve(r);
    };
    const timer = setTimeout(() => finish({ outcome: 'timeout' }), timeoutMs);
    try {
      client = openConnection(spec);
    } catch {
      finish({ outcome: 'closed', afterMs: 0 });
      return;
    }
    client.on('connect', () => finish({ outcome: 'connected' }));
    client.on('error', (err: Error & { code?: unknown }) => {
      if (typeof err.code === 'number') finish({ outcome: 'refused', returnCode: err.code });
    });
    client.on('close', () => finish({ outcome: 'closed', afterMs: performance.now() - started }));
  });
}
