import t from 'tap';
import fc from 'fast-check';
import { createRing, type Pending } from '../../device-sim/index.js';

const item = (seq: number): Pending => ({ topic: 'd/dev-1/t/x', bytes: new Uint8Array([seq & 0xff]), seq, ts: seq * 1000, inFlight: false, sentOnce: false });

t.test('the ring behaves like a bounded FIFO with removal, against a plain array model', (t) => {
  type Op = { kind: 'push' } | { kind: 'ack'; pick: number };
  const op = fc.oneof(fc.constant<Op>({ kind: 'push' }), fc.integer({ min: 0, max: 50 }).map<Op>((pick) => ({ kind: 'ack', pick })));
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 12 }), fc.array(op, { maxLength: 200 }), (capacity, ops) => {
      const ring = createRing(capacity);
      const model: Pending[] = [];
      let dropped = 0;
      let seq = 0;
      for (const o of ops) {
        if (o.kind === 'push') {
          const it = item(++seq);
          const evicted = ring.push(it);
          model.push(it);
          if (model.length > capacity) {
            const oldest = model.shift();
            dropped += 1;
            if (evicted !== oldest) return false;
          } else if (evicted !== undefined) return false;
        } else if (model.length > 0) {
          // Acks mostly come for the oldest, but any entry may be acknowledged.
          const victim = model[o.pick % model.length]!;
          model.splice(model.indexOf(victim), 1);
          if (!ring.remove(victim)) return false;
          if (ring.remove(victim)) return false;
        }
        if (ring.size !== model.length || ring.dropped !== dropped) return false;
        const order = [...ring.values()].map((p) => p.seq);
        if (order.join() !== model.map((p) => p.seq).join()) return false;
      }
      return true;
    }),
    { numRuns: 1000 },
  );
  t.pass('model agreed');
  t.end();
});

t.test('messages made offline keep their seq and timestamp; a full buffer drops the oldest and counts it', (t) => {
  const ring = createRing(3);
  for (let s = 1; s <= 5; s++) ring.push(item(s));
  t.same([...ring.values()].map((p) => [p.seq, p.ts]), [[3, 3000], [4, 4000], [5, 5000]]);
  t.equal(ring.dropped, 2);
  ring.values().next().value!.inFlight = true;
  ring.resetInFlight();
  t.ok([...ring.values()].every((p) => !p.inFlight), 'a lost connection puts in-flight messages back in line');
  t.throws(() => createRing(0), RangeError);
  t.end();
});
