/**
 * The gateway's own identity in its data directory: its id (CWT audience, cloud records)
 * and its Ed25519 signing key for commands (PROTOCOL.md §1, §6), created on first start
 * with mode 0600.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { writeFileAtomic, readSecretFile, ensurePrivateDir } from '../common/files.js';
import { EdgegwError } from '../common/errors.js';
import { nodeSigner, rawPublicKeyOf, type Signer } from '../protocol/index.js';

export interface GatewayIdentity {
  readonly gatewayId: string;
  readonly signer: Signer;
  /** Raw Ed25519 public key devices use to verify commands. */
  readonly publicKey: Uint8Array;
}

export function dataPaths(dataDir: string) {
  return {
    db: join(dataDir, 'edgegw.db'),
    pki: join(dataDir, 'pki'),
    identity: join(dataDir, 'gateway.json'),
    signingKey: join(dataDir, 'gateway-signing-key.pem'),
  };
}

export function loadOrCreateIdentity(dataDir: string, requestedId?: string): GatewayIdentity {
  ensurePrivateDir(dataDir);
  const paths = dataPaths(dataDir);
  let gatewayId: string;
  if (existsSync(paths.identity)) {
    const stored = JSON.parse(readFileSync(paths.identity, 'utf8')) as { gatewayId?: unknown };
    if (typeof stored.gatewayId !== 'string') throw new EdgegwError('EDGEGW_CONFIG_INVALID', `${paths.identity} has no gatewayId`);
    if (requestedId !== undefined && requestedId !== stored.gatewayId) {
      throw new EdgegwError('EDGEGW_CONFIG_INVALID', `gatewayId ${requestedId} differs from ${stored.gatewayId} stored in ${paths.identity}`);
    }
    gatewayId = stored.gatewayId;
  } else {
    gatewayId = requestedId ?? `gw-${randomBytes(6).toString('hex')}`;
    writeFileAtomic(paths.identity, JSON.stringify({ gatewayId }, null, 2) + '\n', 0o644);
  }
  let key: KeyObject;
  if (existsSync(paths.signingKey)) {
    key = createPrivateKey(readSecretFile(paths.signingKey));
  } else {
    key = generateKeyPairSync('ed25519').privateKey;
    writeFileAtomic(paths.signingKey, key.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  }
  const signer = nodeSigner('EdDSA', key);
  return { gatewayId, signer, publicKey: rawPublicKeyOf('EdDSA', key) };
}
