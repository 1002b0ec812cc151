// PROTOCOL.md §1 (deviceId) and §2 (topics): the grammar, parsing and building of topics.
import t from 'tap';
import fc from 'fast-check';
import {
  assertDeviceId,
  commandTopic,
  eventTopic,
  isCommandName,
  isDeviceId,
  isEventName,
  isStreamName,
  isTopicName,
  keyTopic,
  parseTopic,
  telemetryTopic,
} from '../../protocol/index.js';
import { holds } from './_property.js';

const deviceIdArb = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const nameArb = fc.stringMatching(/^[a-z0-9_-]{1,32}$/);

t.test('deviceIds are 1 to 64 of A-Z a-z 0-9 _ -', async (t) => {
  for (const ok of ['a', 'Z', '0', '_', '-', 'SN-0001_x', 'x'.repeat(64)]) t.ok(isDeviceId(ok), JSON.stringify(ok));
  const bad = ['', 'x'.repeat(65), 'a/b', 'a+', '#', '$SYS', 'a b', 'a\n', 'a\u0000', 'é', 'a.b', 'a:b', '+', ' a', 'a\r'];
  for (const b of bad) t.notOk(isDeviceId(b), JSON.stringify(b));
  t.notOk(isDeviceId(42), 'a number');
  t.notOk(isDeviceId(undefined), 'undefined');
  t.doesNotThrow(() => assertDeviceId('gw-1'));
  t.throws(() => assertDeviceId('a/b'), { code: 'EDGEGW_DEVICE_ID_INVALID' });
  t.throws(() => assertDeviceId(null), { code: 'EDGEGW_DEVICE_ID_INVALID' });
});

t.test('stream, event and command names are 1 to 32 of a-z 0-9 _ -', async (t) => {
  for (const fn of [isTopicName, isStreamName, isEventName, isCommandName]) {
    t.ok(fn('temp_1-a'), 'lower case, digits, _ and -');
    t.ok(fn('x'.repeat(32)), '32 characters');
    t.notOk(fn('x'.repeat(33)), '33 characters');
    t.notOk(fn('Temp'), 'upper case');
    t.notOk(fn(''), 'empty');
    t.notOk(fn('a/b'), 'slash');
    t.notOk(fn('+'), 'wildcard');
    t.notOk(fn('a\n'), 'trailing newline');
  }
});

t.test('each builder produces a topic that parses back to what was built', async (t) => {
  t.equal(telemetryTopic('D1', 'temp'), 'd/D1/t/temp');
  t.equal(eventTopic('D1', 'door'), 'd/D1/e/door');
  t.equal(keyTopic('D1'), 'd/D1/k');
  t.equal(commandTopic('D1', 'rotated'), 'd/D1/c/rotated');
  holds(
    t,
    'parseTopic inverts the builders',
    fc.property(deviceIdArb, nameArb, (d, n) => {
      const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
      return (
        same(parseTopic(telemetryTopic(d, n)), { ok: true, value: { kind: 'telemetry', deviceId: d, stream: n } }) &&
        same(parseTopic(eventTopic(d, n)), { ok: true, value: { kind: 'event', deviceId: d, event: n } }) &&
        same(parseTopic(keyTopic(d)), { ok: true, value: { kind: 'keyRotation', deviceId: d } }) &&
        same(parseTopic(commandTopic(d, n)), { ok: true, value: { kind: 'command', deviceId: d, name: n } })
      );
    }),
    { numRuns: 500 },
  );
  t.throws(() => telemetryTopic('a/b', 'x'), { code: 'EDGEGW_DEVICE_ID_INVALID' }, 'builder refuses a bad deviceId');
  t.throws(() => commandTopic('D1', '#'), { code: 'EDGEGW_TOPIC_INVALID' }, 'builder refuses a bad name');
});

t.test('anything outside the grammar is EDGEGW_TOPIC_INVALID', async (t) => {
  const bad = [
    '',
    'd',
    'd/',
    'd/D1',
    'd/D1/',
    'd/D1/t',
    'd/D1/t/',
    'd/D1/t/temp/',
    'd/D1/t/temp/x',
    'd//t/temp',
    '/d/D1/t/temp',
    'd/D1/k/',
    'd/D1/k/x',
    'd/D1/x/temp',
    'd/D1/T/temp',
    'D/D1/t/temp',
    'd/D1/t/Temp',
    'd/+/t/temp',
    'd/D1/t/+',
    'd/D1/t/#',
    'd/#',
    '#',
    '$SYS/broker/uptime',
    'd/D1/t/temp\u0000',
    'd/D1\u0000/t/temp',
    `d/${'x'.repeat(65)}/t/temp`,
    `d/D1/t/${'x'.repeat(33)}`,
    `d/${'x'.repeat(64)}/t/${'x'.repeat(32)}x`,
  ];
  for (const topic of bad) {
    const r = parseTopic(topic);
    t.same(r.ok ? r : { ok: r.ok, reason: r.reason }, { ok: false, reason: 'EDGEGW_TOPIC_INVALID' }, JSON.stringify(topic));
  }
  t.same(parseTopic(42 as unknown as string), { ok: false, reason: 'EDGEGW_TOPIC_INVALID', detail: 'not a string of at most 101 characters' });
  t.ok(parseTopic(`d/${'x'.repeat(64)}/t/${'x'.repeat(32)}`).ok, 'the longest valid topic parses');
});

t.test('no string parses unless rebuilding it gives the same string', async (t) => {
  const alphabet = fc.constantFrom('d', 'D1', 't', 'e', 'k', 'c', 'temp', '', '+', '#', '$SYS', 'A\u0000', 'x y', 'X');
  const topicish = fc.oneof(fc.string({ maxLength: 120 }), fc.array(alphabet, { maxLength: 6 }).map((l) => l.join('/')));
  holds(
    t,
    'parse is exact',
    fc.property(topicish, (s) => {
      const r = parseTopic(s);
      if (!r.ok) return r.reason === 'EDGEGW_TOPIC_INVALID';
      const v = r.value;
      const rebuilt =
        v.kind === 'telemetry'
          ? telemetryTopic(v.deviceId, v.stream)
          : v.kind === 'event'
            ? eventTopic(v.deviceId, v.event)
            : v.kind === 'keyRotation'
              ? keyTopic(v.deviceId)
              : commandTopic(v.deviceId, v.name);
      return rebuilt === s;
    }),
    { numRuns: 20_000 },
  );
});
