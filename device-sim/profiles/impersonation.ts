/**
 * impersonation: a device tries to pass for another device of the fleet (its peer).
 *   0. It republishes a message the peer signed (captured on the way) on its own topic: the
 *      kid is the peer's, bound to another device: EDGEGW_VERIFY_KID_NOT_BOUND (§3).
 *   1. It connects with its own certificate under the peer's client id:
 *      EDGEGW_BROKER_CLIENT_ID_MISMATCH, CONNACK 2 (identifier rejected) (§2).
 *   2. It connects with a certificate for the peer's id from a CA the gateway does not
 *      trust: the TLS handshake fails, EDGEGW_BROKER_AUTH_FAILED.
 *   3. With the plain listener on, it connects as the peer with a connect token signed by
 *      its own key: EDGEGW_BROKER_AUTH_FAILED, CONNACK 5 (not authorized) (§4).
 *   4. It signs with a key the gateway never registered: EDGEGW_VERIFY_UNKNOWN_KID (§3).
 * The device's own session and traffic carry on; the peer's are not disturbed.
 */
import { join } from 'node:path';
import { silentLogger } from '../../common/log.js';
import type { Clock } from '../../common/clock.js';
import { encodeTelemetryPayload, generateKeyPair, nobleSigner, signSign1, telemetryTopic } from '../../protocol/index.js';
import type { ConnectionSpec } from '../transport.js';
import { attackInterval, every, expectFrom } from './_loop.js';
import type { Profile, ProfileContext, TargetFacts } from './types.js';

const PROBE_TIMEOUT_MS = 15_000;

// One rogue CA per scratch directory, shared by every impersonator of the run.
const rogueCas = new Map<string, ReturnType<typeof rogueCa>>();

// The PKI and the MQTT transport are loaded when an attack runs, not when the profile list
// is (`edgegw sim --help` stays fast).
const pkiModule = () => import('../../provisioning/pki/index.js');
const transportModule = () => import('../transport.js');

async function rogueCa(dir: string, clock: Clock) {
  const { createPki } = await pkiModule();
  const pki = createPki({ log: silentLogger(), clock }, { dir, caName: 'rogue' });
  await pki.ensure();
  return pki;
}

function brokerUrl(ctx: ProfileContext, kind: 'mqtts' | 'mqtt'): string | undefined {
  return ctx.device.flash.brokerUrls.find((u) => u.startsWith(`${kind}://`));
}

async function attempt(ctx: ProfileContext, facts: TargetFacts, variant: number): Promise<void> {
  const { device, peer } = ctx;
  const flash = device.flash;
  if (variant === 4) {
    const topic = telemetryTopic(device.id, 'stolen');
    const seq = device.seqs.next();
    const stranger = nobleSigner(flash.alg, generateKeyPair(flash.alg).privateKey);
    const bytes = signSign1(stranger, encodeTelemetryPayload({ seq, ts: ctx.clock.now(), body: { n: seq } }), new TextEncoder().encode(topic));
    ctx.forbid(seq);
    expectFrom(ctx, await device.publishRaw(topic, bytes, 1), 'rejected', 'EDGEGW_VERIFY_UNKNOWN_KID');
    return;
  }
  if (peer === undefined) return;
  const { connectToken, parseBrokerUrl, probeConnect, tlsKeyPem } = await transportModule();
  if (variant === 0) {
    const captured = peer.captured();
    if (captured === undefined) return;
    const ownTopic = captured.topic.replace(`d/${peer.id}/`, `d/${device.id}/`);
    expectFrom(ctx, await device.publishRaw(ownTopic, captured.bytes, 1), 'rejected', 'EDGEGW_VERIFY_KID_NOT_BOUND');
    return;
  }
  if (variant === 3 && !facts.plainListener) return;
  const url = brokerUrl(ctx, variant === 3 ? 'mqtt' : 'mqtts');
  if (url === undefined) return;
  const base: Omit<ConnectionSpec, 'tls'> = { address: parseBrokerUrl(url), clientId: peer.id, keepaliveS: 30, connectTimeoutMs: PROBE_TIMEOUT_MS };
  let spec: ConnectionSpec;
  if (variant === 1) {
    spec = { ...base, tls: { keyPem: tlsKeyPem(flash.alg, flash.privateKey), certPem: flash.certPem, caPem: flash.caPem } };
  } else if (variant === 2) {
    const key = join(facts.scratchDir, 'rogue-ca');
    let ca = rogueCas.get(key);
    if (ca === undefined) {
      ca = rogueCa(key, ctx.clock);
      rogueCas.set(key, ca);
    }
    const forged = await (await ca).issueDeviceCert({ deviceId: peer.id, alg: flash.alg, publicKeyRaw: device.signer.publicKey });
    spec = { ...base, tls: { keyPem: tlsKeyPem(flash.alg, flash.privateKey), certPem: forged.pem, caPem: flash.caPem } };
  } else {
    spec = { ...base, username: peer.id, password: connectToken(device.signer, peer.id, flash.gatewayId, ctx.clock.now()) };
  }
  const result = await probeConnect(spec, PROBE_TIMEOUT_MS);
  const name = ['', 'own certificate, peer client id', 'forged certificate for the peer', 'connect token for the peer signed by another key'][variant]!;
  ctx.check(`refused: ${name}`, result.outcome === 'refused' || result.outcome === 'closed', `outcome ${result.outcome}`);
  if (result.outcome === 'connected' || result.outcome === 'timeout') return;
  if (variant === 1) {
    ctx.expect('refused', 'EDGEGW_BROKER_CLIENT_ID_MISMATCH', 'certain');
    ctx.check('CONNACK 2 (identifier rejected) for a client id that is not the certificate CN', result.outcome === 'refused' && result.returnCode === 2, JSON.stringify(result));
  } else {
    ctx.expect('refused', 'EDGEGW_BROKER_AUTH_FAILED', 'certain');
    if (variant === 3) ctx.check('CONNACK 5 (not authorized) for a token signed by another key', result.outcome === 'refused' && result.returnCode === 5, JSON.stringify(result));
  }
}

export const impersonation: Profile = {
  name: 'impersonation',
  summary:
    'passes for another device: its signed messages (KID_NOT_BOUND), its client id (CLIENT_ID_MISMATCH), a forged certificate or token (AUTH_FAILED), an unregistered key (UNKNOWN_KID)',
  honestTraffic: true,
  async run(ctx, facts) {
    await every(ctx, attackInterval(ctx), (i) => attempt(ctx, facts, i % 5));
  },
};
