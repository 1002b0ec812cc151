// The transport limits' bookkeeping: which key an address is counted under (an IPv6 prefix,
// an IPv4 address also when a dual-stack listener maps it), and the guard using those keys.
import t from 'tap';
import fc from 'fast-check';
import { addressKey, createConnectionGuard } from '../../broker/limits.js';
import { manualClock } from '../../common/clock.js';

/** An address's 16 bytes in the uncompressed 8-group form. */
function fullForm(bytes: Uint8Array): string {
  return Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16)).join(':');
}

/** The same address as Node writes it (compressed, lower case): the WHATWG URL parser's form. */
function nodeForm(bytes: Uint8Array): string {
  return new URL(`http://[${fullForm(bytes)}]/`).hostname.slice(1, -1);
}

function maskBits(bytes: Uint8Array, bits: number): Uint8Array {
  return bytes.map((b, i) => (i * 8 >= bits ? 0 : i * 8 + 8 <= bits ? b : b & (0xff << (8 - (bits - i * 8)))));
}

// Not IPv4-mapped: those are keyed as IPv4 (below).
const ipv6Bytes = fc.uint8Array({ minLength: 16, maxLength: 16 }).filter((b) => !(b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff));

t.test('an IPv6 address has one key however it is written', async (t) => {
  fc.assert(
    fc.property(ipv6Bytes, (bytes) => addressKey(fullForm(bytes)) === addressKey(nodeForm(bytes)) && addressKey(nodeForm(bytes)) === fullForm(bytes)),
    { numRuns: 2000 },
  );
  t.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0:0:0:0:1', 'a zone is dropped');
  t.equal(addressKey('64:ff9b::192.0.2.33'), '64:ff9b:0:0:0:0:c000:221', 'a trailing dotted quad is the last 32 bits');
});

t.test('with a prefix length, addresses that share the prefix share a key, and no others do', async (t) => {
  fc.assert(
    fc.property(ipv6Bytes, ipv6Bytes, fc.integer({ min: 16, max: 127 }), (a, b, bits) => {
      const sameKey = addressKey(nodeForm(a), bits) === addressKey(nodeForm(b), bits);
      const samePrefix = fullForm(maskBits(a, bits)) === fullForm(maskBits(b, bits));
      return sameKey === samePrefix && addressKey(nodeForm(a), bits) === `${fullForm(maskBits(a, bits))}/${bits}`;
    }),
    { numRuns: 2000 },
  );
  // The pairs above rarely share a prefix by chance: the same address with its low bits changed.
  fc.assert(
    fc.property(ipv6Bytes, fc.uint8Array({ minLength: 8, maxLength: 8 }), (a, low) => {
      const b = Uint8Array.from([...a.slice(0, 8), ...low]);
      return addressKey(nodeForm(a), 64) === addressKey(nodeForm(b), 64);
    }),
  );
  t.equal(addressKey('2001:db8:1:2:aaaa::1', 64), '2001:db8:1:2:0:0:0:0/64');
  t.equal(addressKey('2001:db8:1:2ff::1', 56), '2001:db8:1:200:0:0:0:0/56');
});

t.test('IPv4, also as a dual-stack listener reports it, is counted per address', async (t) => {
  t.equal(addressKey('192.0.2.7', 64), '192.0.2.7');
  t.equal(addressKey('::ffff:192.0.2.7', 64), '192.0.2.7', 'IPv4-mapped, dotted');
  t.equal(addressKey('::ffff:c000:207', 64), '192.0.2.7', 'IPv4-mapped, in hex groups');
  t.equal(addressKey('unknown'), 'unknown', 'not an address: its own key');
});

t.test('the guard counts a /64 as one client when told to, and each address otherwise', async (t) => {
  const limits = { maxConnections: 100, maxConnectionsPerAddress: 2, maxConnectsPerWindow: 3, connectWindowMs: 10_000, banMs: 60_000 };
  const clock = manualClock(0);
  const perPrefix = createConnectionGuard(clock, { ...limits, ipv6PrefixLength: 64 });
  t.equal(perPrefix.admit('2001:db8:1:2::a'), 'ok');
  t.equal(perPrefix.admit('2001:db8:1:2::b'), 'ok');
  t.equal(perPrefix.admit('2001:db8:1:2::c'), 'EDGEGW_BROKER_CONN_LIMIT', 'a third open connection from the same /64 is over the per-address cap');
  t.equal(perPrefix.admit('2001:db8:1:3::a'), 'ok', 'another /64 is another client');
  perPrefix.release('2001:db8:1:2::a');
  t.equal(perPrefix.admit('2001:db8:1:2::d'), 'EDGEGW_BROKER_CONN_RATE_LIMITED', 'a fourth attempt within the window from the /64: banned');
  t.equal(perPrefix.admit('2001:db8:1:2::e'), 'EDGEGW_BROKER_CONN_RATE_LIMITED', 'and a fresh address in it is banned too');
  t.equal(perPrefix.open(), 2);

  const perAddress = createConnectionGuard(clock, limits);
  for (const host of ['a', 'b', 'c', 'd', 'e']) t.equal(perAddress.admit(`2001:db8:1:2::${host}`), 'ok', `per address (the default): ::${host} admitted`);
});
