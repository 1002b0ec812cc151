// Test devices: real keys, real certificates from the gateway's PKI, real mqtt.js clients
// over real TLS. Nothing here stands in for our own modules.
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import {
  generateKeyPair,
  nobleSigner,
  signSign1,
  encodeTelemetryPayload,
  telemetryTopic,
  type CoseAlg,
  type Signer,
} from '../../protocol/index.js';
import type { Registrar } from '../../gateway/index.js';

export interface TestDevice {
  id: string;
  alg: CoseAlg;
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  signer: Signer;
  certPem: string;
  keyPem: string;
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

export function tlsKeyPem(alg: CoseAlg, priv: Uint8Array, pub: Uint8Array): string {
  const jwk =
    alg === 'EdDSA'
      ? { kty: 'OKP', crv: 'Ed25519', d: b64(priv), x: b64(pub) }
      : { kty: 'EC', crv: 'P-256', d: b64(priv), x: b64(pub.subarray(1, 33)), y: b64(pub.subarray(33, 65)) };
  return createPrivateKey({ key: jwk, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' }) as string;
}

export async function makeDevice(registrar: Registrar, id: string, alg: CoseAlg = 'EdDSA'): Promise<TestDevice> {
  const { privateKey, publicKey } = generateKeyPair(alg);
  const reg = await registrar.register({ id, alg, pub: publicKey });
  return { id, alg, privateKey, publicKey, signer: nobleSigner(alg, privateKey), certPem: reg.certPem, keyPem: tlsKeyPem(alg, privateKey, publicKey) };
}

export function connectDevice(
  device: Pick<TestDevice, 'certPem' | 'keyPem'> & { id: string },
  port: number,
  caFile: string,
  extra: Partial<IClientOptions> = {},
): Promise<MqttClient> {
  const options: IClientOptions & { allowPartialTrustChain: boolean } = {
    protocol: 'mqtts',
    host: '127.0.0.1',
    port,
    clientId: device.id,
    cert: device.certPem,
    key: device.keyPem,
    ca: readFileSync(caFile, 'utf8'),
    servername: 'localhost',
    // Devices trust the issuing CA itself (PROTOCOL.md §7 field 3), not a root above it.
    allowPartialTrustChain: true,
    reconnectPeriod: 0,
    keepalive: 30,
    connectTimeout: 5000,
    protocolVersion: 4,
    ...extra,
  };
  const client = mqtt.connect(options);
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

export function signedTelemetry(device: Pick<TestDevice, 'id' | 'signer'>, seq: number, opts: { ts?: number; stream?: string; body?: unknown; topic?: string } = {}): { topic: string; payload: Buffer } {
  const topic = opts.topic ?? telemetryTopic(device.id, opts.stream ?? 'temp');
  const payload = encodeTelemetryPayload({ seq, ts: opts.ts ?? Date.now(), body: opts.body ?? { t: 21.5 } });
  return { topic, payload: Buffer.from(signSign1(device.signer, payload, new TextEncoder().encode(topic))) };
}

export function publishQos1(client: MqttClient, topic: string, payload: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    client.publish(topic, Buffer.from(payload), { qos: 1 }, (err) => (err ? reject(err) : resolve()));
  });
}
