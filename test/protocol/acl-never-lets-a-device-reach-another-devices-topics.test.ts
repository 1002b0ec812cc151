// PROTOCOL.md §2 ACL: a device publishes only to its own t/, e/ and k topics and subscribes
// only to d/D/c/# or a filter under it. The property tests match allowed filters against
// topics with MQTT's own matching rules (MQTT 3.1.1 §4.7), written out below from the spec.
import t from 'tap';
import fc from 'fast-check';
import { mayPublish, maySubscribe } from '../../protocol/index.js';
import { holds } from './_property.js';

/** MQTT 3.1.1 §4.7 topic matching: '+' one level, '#' the rest (and the parent), no wildcard match for '$' topics. */
function mqttMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const l = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false; // [MQTT-4.7.2-1]
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return i === f.length - 1; // [MQTT-4.7.1-2]: also matches the parent level
    if (i >= l.length) return false;
    if (f[i] !== '+' && f[i] !== l[i]) return false;
  }
  return f.length === l.length;
}

t.test('the reference matcher follows the MQTT 3.1.1 §4.7 examples', async (t) => {
  // MQTT 3.1.1 §4.7.1.2 and §4.7.1.3 non-normative examples.
  t.ok(mqttMatches('sport/tennis/player1/#', 'sport/tennis/player1'));
  t.ok(mqttMatches('sport/tennis/player1/#', 'sport/tennis/player1/ranking'));
  t.ok(mqttMatches('sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon'));
  t.ok(mqttMatches('sport/#', 'sport'));
  t.ok(mqttMatches('sport/tennis/+', 'sport/tennis/player1'));
  t.notOk(mqttMatches('sport/tennis/+', 'sport/tennis/player1/ranking'));
  t.notOk(mqttMatches('sport/+', 'sport'));
  t.ok(mqttMatches('sport/+', 'sport/'));
  t.ok(mqttMatches('+/+', '/finance'));
  t.ok(mqttMatches('/+', '/finance'));
  t.notOk(mqttMatches('+', '/finance'));
  t.notOk(mqttMatches('#', '$SYS/x'));
});

t.test('a device may publish to its own telemetry, event and key topics only', async (t) => {
  for (const topic of ['d/A/t/temp', 'd/A/e/door', 'd/A/k']) t.ok(mayPublish('A', topic), topic);
  const refused = [
    'd/A/c/reboot', // commands flow the other way
    'd/B/t/temp',
    'd/AB/t/temp',
    'd/A/t/+',
    'd/A/t/#',
    'd/+/t/temp',
    'd/A/t/',
    'd/A/t/temp/',
    'd/A/t/temp/x',
    'd/A//t/temp',
    'd/A/k/',
    'd/A/k/x',
    '/d/A/t/temp',
    'd/A/t/temp\u0000',
    'd/A\u0000/t/temp',
    '$SYS/broker',
    'd/A/t/Temp',
  ];
  for (const topic of refused) t.notOk(mayPublish('A', topic), JSON.stringify(topic));
  t.notOk(mayPublish('#', 'd/#/t/temp'), 'an invalid deviceId never publishes');
  t.notOk(mayPublish('', 'd//t/temp'), 'an empty deviceId never publishes');
});

t.test('a device may subscribe to its own command subtree only', async (t) => {
  for (const f of ['d/A/c/#', 'd/A/c/+', 'd/A/c/rotated', 'd/A/c/+/#', 'd/A/c/rotated/#']) t.ok(maySubscribe('A', f), f);
  const refused = [
    '#',
    '+',
    'd/#',
    'd/+/c/#',
    'd/B/c/#',
    'd/AB/c/#',
    '+/A/c/#',
    'd/A/#',
    'd/A/+',
    'd/A/+/#',
    'd/A/+/rotated',
    'd/A/t/#',
    'd/A/k',
    'd/A/c',
    'd/A/c/',
    'd/A/c//#',
    'd/A/c/#/x',
    'd/A/c/a#',
    'd/A/c/+x',
    'd/A/c/x/y',
    'd/A/c/+/+',
    'd/A/c/Rotated',
    '$share/g/d/A/c/#',
    '$SYS/#',
    'd/A/c/x\u0000',
    `d/A/c/${'x'.repeat(33)}`,
  ];
  for (const f of refused) t.notOk(maySubscribe('A', f), JSON.stringify(f));
  t.notOk(maySubscribe('+', 'd/+/c/#'), 'an invalid deviceId never subscribes');
});

const deviceId = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const twoDevices = fc.tuple(fc.constantFrom('A', 'B', 'AB', 'A-', 'a'), fc.constantFrom('A', 'B', 'AB', 'A-', 'a')).filter(([a, b]) => a !== b);
const devicePair = fc.oneof(twoDevices, fc.tuple(deviceId, deviceId).filter(([a, b]) => a !== b));

// Filters and topics built from the levels that matter (both ids, the kinds, wildcards, empty
// and '$' levels, NUL), mostly in the d/<id>/<kind>/... shape so that many are allowed, and
// from arbitrary strings.
function levelsFor(a: string, b: string): fc.Arbitrary<string> {
  const level = fc.constantFrom('d', a, b, 't', 'e', 'k', 'c', 'temp', 'rotated', '+', '#', '', '$SYS', '$share', `${a}\u0000`, `${a}#`, 'X');
  const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
  const shaped = fc
    .tuple(
      fc.oneof(w(8, fc.constant('d')), w(1, level)),
      fc.oneof(w(6, fc.constant(a)), w(2, fc.constant(b)), w(2, level)),
      fc.oneof(w(6, fc.constantFrom('c', 't', 'e', 'k')), w(2, level)),
      fc.array(fc.oneof(w(4, fc.constantFrom('temp', 'rotated', '+', '#')), w(1, level)), { maxLength: 3 }),
      fc.nat(6),
    )
    .map(([l0, l1, l2, rest, keep]) => [l0, l1, l2, ...rest].slice(0, keep + 1).join('/'));
  return fc.oneof(
    w(6, shaped),
    w(1, fc.array(level, { minLength: 1, maxLength: 6 }).map((l) => l.join('/'))),
    w(1, fc.string({ maxLength: 40 })),
  );
}

t.test('no filter a device may subscribe to matches a topic outside its command subtree', async (t) => {
  let allowed = 0;
  holds(
    t,
    'subscribe isolation',
    fc.property(
      devicePair.chain(([a, b]) => fc.tuple(fc.constant(a), fc.constant(b), levelsFor(a, b), fc.array(levelsFor(a, b), { minLength: 1, maxLength: 8 }))),
      ([a, b, filter, topics]) => {
        if (!maySubscribe(a, filter)) return true;
        allowed++;
        const others = [...topics, `d/${b}/c/rotated`, `d/${b}/c`, `d/${b}/t/temp`, `d/${b}/k`, `d/${a}/t/temp`, `d/${a}/k`, `d/${a}`];
        return others.every((topic) => !mqttMatches(filter, topic) || topic === `d/${a}/c` || topic.startsWith(`d/${a}/c/`));
      },
    ),
    { numRuns: 20_000 },
  );
  t.ok(allowed > 100, `${allowed} allowed filters were checked against other topics`);
});

t.test('no topic a device may publish to belongs to another device or carries a wildcard', async (t) => {
  let allowed = 0;
  holds(
    t,
    'publish isolation',
    fc.property(
      devicePair.chain(([a, b]) => fc.tuple(fc.constant(a), fc.constant(b), levelsFor(a, b))),
      ([a, b, topic]) => {
        if (!mayPublish(a, topic)) return true;
        allowed++;
        return (
          topic.startsWith(`d/${a}/`) &&
          !/[+#\u0000]/.test(topic) &&
          !topic.endsWith('/') &&
          !topic.includes('//') &&
          !mqttMatches(`d/${b}/#`, topic) &&
          !mqttMatches(`d/${a}/c/#`, topic)
        );
      },
    ),
    { numRuns: 20_000 },
  );
  t.ok(allowed > 100, `${allowed} allowed topics were checked`);
});
