// A provisioned flash image for tests: real keys, no gateway needed.
import { generateKeyPair, type CoseAlg } from '../../protocol/index.js';
import type { FlashState } from '../../device-sim/index.js';

export function testFlash(overrides: Partial<FlashState> = {}, alg: CoseAlg = 'EdDSA'): FlashState {
  const { privateKey } = generateKeyPair(alg);
  return {
    deviceId: 'dev-1',
    alg,
    privateKey,
    certPem: '',
    caPem: '',
    gatewayId: 'gw-test',
    gatewayPublicKey: generateKeyPair('EdDSA').publicKey,
    brokerUrls: ['mqtt://127.0.0.1:1883'],
    reservedUpTo: 0,
    commandSeq: 0,
    ...overrides,
  };
}
