/**
 * slow-connect: a device on a slow link, and a stalled one.
 *   - Its own CONNECT trickles out a few bytes at a time over about a third of the broker's
 *     CONNECT timeout: the gateway must still let it in and take all its telemetry.
 *   - Once per run it opens a second connection whose CONNECT would take several times
 *     the timeout (a slowloris): the broker must drop it when the timeout expires, not hold
 *     the socket open.
 */
import type { Profile } from './types.js';

// Loaded when the attack runs, not with the profile list (`edgegw sim --help` stays fast).
const transportModule = () => import('../transport.js');

// An mqtts CONNECT is a fixed 12-byte header and variable part plus 2 + length of the id.
const connectBytes = (deviceId: string): number => 14 + deviceId.length;
const CHUNK = 2;

export const slowConnect: Profile = {
  name: 'slow-connect',
  summary: 'CONNECT trickles in within the timeout (must get through), and a stalled CONNECT (must be dropped at the timeout)',
  honestTraffic: true,
  device: (base, facts) => {
    const trickleMs = Math.min(3_000, facts.connectTimeoutMs / 3);
    const bytes = 64;
    return { ...base, throttle: { bytes, chunkBytes: CHUNK, intervalMs: Math.floor(trickleMs / (bytes / CHUNK)) } };
  },
  async run(ctx, facts) {
    const { device } = ctx;
    const url = device.flash.brokerUrls.find((u) => u.startsWith('mqtts://'));
    if (url === undefined || !(await device.waitOnline(facts.connectTimeoutMs * 2))) return;
    const { parseBrokerUrl, probeConnect, tlsKeyPem } = await transportModule();
    const bytes = connectBytes(device.id);
    const result = await probeConnect(
      {
        address: parseBrokerUrl(url),
        clientId: device.id,
        tls: { keyPem: tlsKeyPem(device.flash.alg, device.flash.privateKey), certPem: device.flash.certPem, caPem: device.flash.caPem },
        keepaliveS: 30,
        connectTimeoutMs: facts.connectTimeoutMs * 4,
        // Spread over four timeouts: the broker has to cut it off.
        throttle: { bytes, chunkBytes: 1, intervalMs: Math.ceil((facts.connectTimeoutMs * 4) / bytes) },
      },
      facts.connectTimeoutMs + 10_000,
    );
    const dropped = result.outcome === 'closed' && result.afterMs <= facts.connectTimeoutMs + 5_000;
    ctx.check('a stalled CONNECT is dropped when the broker timeout expires', dropped, JSON.stringify(result));
  },
  settle(ctx) {
    ctx.check('a device whose CONNECT trickles in within the timeout gets connected', ctx.device.stats.connects > 0, `connects ${ctx.device.stats.connects}`);
  },
};
