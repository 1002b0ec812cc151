// Shared set-up for the PKI tests: real keys from node:crypto, real TLS on 127.0.0.1 port 0.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { silentLogger, systemClock, type Clock } from '../../common/index.js';
import { createPki, type Pki, type PkiOptions } from '../../provisioning/pki/index.js';

export function newPki(dir: string, options: Omit<PkiOptions, 'dir'> = {}, clock: Clock = systemClock): Pki {
  return createPki({ log: silentLogger(), clock }, { dir, ...options });
}

export interface DeviceKey {
  alg: 'EdDSA' | 'ES256';
  publicKeyRaw: Uint8Array;
  privateKey: KeyObject;
  /** PKCS#8 PEM, what node:tls takes as `key`. */
  keyPem: string;
}

/** A device key pair generated the way firmware would, exported as PROTOCOL.md §1 raw bytes. */
export function deviceKey(alg: 'EdDSA' | 'ES256'): DeviceKey {
  const { privateKey, publicKey } =
    alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x!, 'base64url');
  const publicKeyRaw =
    alg === 'EdDSA' ? new Uint8Array(x) : new Uint8Array(Buffer.concat([Buffer.of(4), x, Buffer.from(jwk.y!, 'base64url')]));
  return { alg, publicKeyRaw, privateKey, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

export interface TlsServer {
  port: number;
  /** CNs of the clients the server accepted, in order. */
  acceptedCns: string[];
  /** Serial numbers (as node reports them) of the accepted client certificates. */
  acceptedSerials: string[];
  /** Handshake errors the server saw (refused clients). */
  refusals: string[];
  server: tls.Server;
}

/** A mutual-TLS server that answers "ok" to every client it accepts. */
export async function startTlsServer(options: tls.TlsOptions): Promise<TlsServer> {
  const acceptedCns: string[] = [];
  const acceptedSerials: string[] = [];
  const refusals: string[] = [];
  const server = tls.createServer({ requestCert: true, rejectUnauthorized: true, ...options }, (socket) => {
    // Only reached for unauthorised clients when the test turned rejectUnauthorized off to
    // learn why a certificate is refused.
    if (!socket.authorized && socket.authorizationError) {
      socket.end(`refused:${String(socket.authorizationError)}`);
      return;
    }
    const peer = socket.getPeerX509Certificate();
    acceptedCns.push(peer?.subject ?? '');
    acceptedSerials.push(peer?.serialNumber ?? '');
    socket.end('ok');
  });
  server.on('tlsClientError', (err) => refusals.push(err.message));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, acceptedCns, acceptedSerials, refusals, server };
}

/**
 * Connects, and resolves with what the server said ("ok" when it accepted the client) or the
 * error that ended the connection. With TLS 1.3 a refused client certificate shows up on the
 * client only after its handshake completed, so success is the server's answer, not the handshake.
 */
export function tryConnect(options: tls.ConnectionOptions): Promise<{ reply: string; error?: string }> {
  return new Promise((resolve) => {
    let reply = '';
    let error: string | undefined;
    const socket = tls.connect({ host: '127.0.0.1', ...options });
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      reply += d;
    });
    socket.on('error', (err) => {
      error = err.message;
    });
    socket.on('close', () => resolve(error === undefined ? { reply } : { reply, error }));
  });
}

export async function closeServer(s: TlsServer): Promise<void> {
  await new Promise<void>((resolve) => s.server.close(() => resolve()));
}
