import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { checkCommand } from '../../device-sim/index.js';
import { commandTopic, encodeCommandPayload, nodeSigner, rawPublicKeyOf, signSign1 } from '../../protocol/index.js';
import { tamper } from '../../device-sim/index.js';

// The gateway signs commands with node:crypto (gateway/identity.ts); the device checks
// them with @noble/curves: the two libraries must agree (PROTOCOL.md §6).
const gatewayKey = generateKeyPairSync('ed25519').privateKey;
const gateway = nodeSigner('EdDSA', gatewayKey);
const gatewayPublicKey = rawPublicKeyOf('EdDSA', gatewayKey);
const utf8 = new TextEncoder();
const NOW = 1_700_000_000_000;

function command(deviceId: string, name: string, seq: number, expiry: number, signer = gateway) {
  const topic = commandTopic(deviceId, name);
  return { topic, bytes: signSign1(signer, encodeCommandPayload({ seq, ts: NOW, body: { reboot: true }, expiry }), utf8.encode(topic)) };
}

const ctx = { deviceId: 'dev-1', gatewayPublicKey, lastSeq: 4, nowMs: NOW };

t.test('a valid command is accepted with its name, seq and body', (t) => {
  const c = command('dev-1', 'reboot', 5, NOW + 60_000);
  const res = checkCommand(c.topic, c.bytes, ctx);
  t.ok(res.ok);
  if (res.ok) {
    t.match(res.value, { name: 'reboot', seq: 5, expiry: NOW + 60_000 });
    // The strict decoder returns CBOR maps as Maps.
    t.same(res.value.body, new Map([['reboot', true]]));
  }
  t.end();
});

t.test('bad, expired and repeated commands are dropped with their code', (t) => {
  const good = command('dev-1', 'reboot', 5, NOW + 60_000);
  const cases: [string, string, Uint8Array, string][] = [
    ['signed by another key', good.topic, command('dev-1', 'reboot', 5, NOW + 60_000, nodeSigner('EdDSA', generateKeyPairSync('ed25519').privateKey)).bytes, 'EDGEGW_COSE_BAD_SIGNATURE'],
    ['a flipped signature bit', good.topic, tamper(good.bytes, { flipSignatureBit: 7 }), 'EDGEGW_COSE_BAD_SIGNATURE'],
    ['moved to another command topic (external_aad)', commandTopic('dev-1', 'wipe'), good.bytes, 'EDGEGW_COSE_BAD_SIGNATURE'],
    ["another device's command", commandTopic('dev-2', 'reboot'), command('dev-2', 'reboot', 5, NOW + 60_000).bytes, 'EDGEGW_TOPIC_INVALID'],
    ['expired', good.topic, command('dev-1', 'reboot', 5, NOW - 1).bytes, 'EDGEGW_SIM_COMMAND_EXPIRED'],
    ['expiring right now', good.topic, command('dev-1', 'reboot', 5, NOW).bytes, 'EDGEGW_SIM_COMMAND_EXPIRED'],
    ['repeating the last seq', good.topic, command('dev-1', 'reboot', 4, NOW + 60_000).bytes, 'EDGEGW_SIM_COMMAND_REPEATED'],
    ['going back on the seq', good.topic, command('dev-1', 'reboot', 1, NOW + 60_000).bytes, 'EDGEGW_SIM_COMMAND_REPEATED'],
    ['not CBOR', good.topic, new Uint8Array([0xff]), 'EDGEGW_CBOR_MALFORMED'],
    ['untagged', good.topic, signSign1(gateway, encodeCommandPayload({ seq: 9, ts: NOW, body: 1, expiry: NOW + 1000 }), utf8.encode(good.topic), { tagged: false }), 'EDGEGW_COSE_NOT_TAGGED'],
    ['a telemetry topic', 'd/dev-1/t/x', good.bytes, 'EDGEGW_TOPIC_INVALID'],
  ];
  for (const [name, topic, bytes, code] of cases) {
    const res = checkCommand(topic, bytes, ctx);
    t.equal(res.ok ? 'accepted' : res.reason, code, name);
  }
  const wrongShape = signSign1(gateway, utf8.encode('not a map'), utf8.encode(good.topic));
  const res = checkCommand(good.topic, wrongShape, ctx);
  t.equal(res.ok ? 'accepted' : res.reason, 'EDGEGW_PAYLOAD_INVALID', 'a payload that is not the section 6 map');
  t.end();
});
