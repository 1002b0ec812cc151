import t from 'tap';
import fc from 'fast-check';
import { join } from 'node:path';
import { statSync } from 'node:fs';
import { createSeqAllocator, fileFlash, memoryFlash, SEQ_BLOCK, type FlashState } from '../../device-sim/index.js';
import { tempDir } from '../helpers/tmp.js';
import { testFlash } from './_flash.js';

/** Boots from whatever the flash holds now, as firmware does after power returns. */
function boot(flash: { load(): FlashState | undefined; save(s: FlashState): void }) {
  const state = { current: flash.load()! };
  return createSeqAllocator(flash, state);
}

t.test('seqs stay strictly increasing over any pattern of power cuts, with one flash write per block', (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 2500 }), { minLength: 1, maxLength: 12 }), (usesBetweenCuts) => {
      const flash = memoryFlash(testFlash());
      let last = 0;
      let used = 0;
      for (const uses of usesBetweenCuts) {
        // A power cut between boots: RAM (the allocator) is gone, only the flash remains.
        const seqs = boot(flash);
        for (let i = 0; i < uses; i++) {
          const seq = seqs.next();
          if (seq <= last) return false;
          last = seq;
          used += 1;
        }
      }
      // One write per block started; a boot wastes at most the rest of its block.
      return flash.writes <= Math.ceil(used / SEQ_BLOCK) + usesBetweenCuts.length;
    }),
  );
  t.pass('property held');
  t.end();
});

t.test('the reservation is on disk before a seq of its block is used', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'dev-1.flash');
  const flash = fileFlash(path);
  flash.save(testFlash());
  const seqs = boot(flash);
  t.equal(seqs.next(), 1);
  t.equal(fileFlash(path).load()!.reservedUpTo, SEQ_BLOCK, 'block 1..1000 reserved on disk when seq 1 was handed out');
  for (let i = 2; i <= SEQ_BLOCK; i++) seqs.next();
  t.equal(fileFlash(path).load()!.reservedUpTo, SEQ_BLOCK, 'no write inside the block');
  t.equal(seqs.next(), SEQ_BLOCK + 1);
  t.equal(fileFlash(path).load()!.reservedUpTo, 2 * SEQ_BLOCK, 'next block reserved before its first seq');
  // Power cut after seq 1001: the next boot starts past everything that could have been used.
  const after = boot(fileFlash(path));
  t.equal(after.next(), 2 * SEQ_BLOCK + 1);
  t.equal(statSync(path).mode & 0o777, 0o600, 'the flash file holds the private key: mode 0600');
  t.end();
});

t.test('skip moves past seqs without using them, and a reboot never goes back', (t) => {
  const flash = memoryFlash(testFlash());
  const seqs = boot(flash);
  t.equal(seqs.next(), 1);
  seqs.skip(1500);
  t.equal(seqs.peek(), 1502);
  t.equal(seqs.next(), 1502);
  t.ok(boot(flash).next() > 1502, 'after a power cut the next seq is above the skipped ones');
  t.throws(() => seqs.skip(-1), { code: 'EDGEGW_USAGE' });
  t.end();
});
