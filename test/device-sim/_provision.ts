// Provisions a firmware-model device against a real gateway: key, registration, flash.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileFlash, type FlashState, type FlashStore } from '../../device-sim/index.js';
import { generateKeyPair, type CoseAlg } from '../../protocol/index.js';
import type { ReadyInfo, Registrar } from '../../gateway/index.js';

export async function provisionDevice(
  registrar: Registrar,
  ready: ReadyInfo,
  dir: string,
  id: string,
  alg: CoseAlg = 'EdDSA',
): Promise<{ flash: FlashStore; state: FlashState }> {
  const { privateKey, publicKey } = generateKeyPair(alg);
  const reg = await registrar.register({ id, alg, pub: publicKey });
  const state: FlashState = {
    deviceId: id,
    alg,
    privateKey,
    certPem: reg.certPem,
    caPem: readFileSync(ready.caFile, 'utf8'),
    gatewayId: ready.gatewayId,
    gatewayPublicKey: new Uint8Array(Buffer.from(ready.gatewayPublicKey, 'hex')),
    brokerUrls: [`mqtts://127.0.0.1:${ready.mqttsPort}`, ...(ready.mqttPort === null ? [] : [`mqtt://127.0.0.1:${ready.mqttPort}`])],
    reservedUpTo: 0,
    commandSeq: 0,
  };
  const flash = fileFlash(join(dir, `${id}.flash`));
  flash.save(state);
  return { flash, state };
}

export async function until(cond: () => boolean, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return true;
}
