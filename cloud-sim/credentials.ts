/**
 * The cloud simulator's certificates: its own CA (provisioning/pki, in DIR/pki), its HTTPS
 * server certificate, and the files the gateway needs to talk to it — the CA bundle to trust,
 * and a client certificate and key for the gateway. Created on first start, reused after.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import { ensurePrivateDir, writeFileAtomic } from '../common/files.js';
import { createPki, type ServerTlsOptions } from '../provisioning/pki/index.js';

export interface GatewayFiles {
  /** What the gateway trusts for the cloud: the root and issuing CA of cloud-sim. */
  caFile: string;
  /** The gateway's client certificate (leaf then issuing CA). */
  clientCertFile: string;
  /** Its private key, mode 0600. */
  clientKeyFile: string;
}

export interface Credentials {
  server: ServerTlsOptions;
  files: GatewayFiles;
}

export async function ensureCredentials(
  deps: { log: Logger; clock: Clock },
  opts: { dataDir: string; serverNames: readonly string[]; gatewayCn: string },
): Promise<Credentials> {
  ensurePrivateDir(opts.dataDir);
  const pki = createPki(deps, { dir: join(opts.dataDir, 'pki'), caName: 'edgegw cloud-sim', serverNames: [...opts.serverNames] });
  await pki.ensure();
  const dir = join(opts.dataDir, 'gateway');
  const files: GatewayFiles = {
    caFile: join(dir, 'cloud-ca.pem'),
    clientCertFile: join(dir, 'client-cert.pem'),
    clientKeyFile: join(dir, 'client-key.pem'),
  };
  if (!existsSync(files.clientCertFile) || !existsSync(files.clientKeyFile)) {
    const issued = await pki.issueClientCert({ cn: opts.gatewayCn });
    writeFileAtomic(files.clientKeyFile, issued.keyPem, 0o600);
    writeFileAtomic(files.clientCertFile, issued.chainPem, 0o644);
    deps.log.info({ cn: opts.gatewayCn }, 'issued the gateway client certificate');
  }
  // Root then issuing: a client verifies the server's [leaf, issuing] chain up to the root.
  const bundle = `${pki.rootCaPem.trim()}\n${pki.issuingCaPem.trim()}\n`;
  if (!existsSync(files.caFile) || readFileSync(files.caFile, 'utf8') !== bundle) writeFileAtomic(files.caFile, bundle, 0o644);
  return { server: pki.serverTls(), files };
}
