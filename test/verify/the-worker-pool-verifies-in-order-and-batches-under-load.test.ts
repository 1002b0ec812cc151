import t from 'tap';
import { generateKeyPairSync, sign } from 'node:crypto';
import fc from 'fast-check';
import { createVerifierPool, INITIAL_CHECK_MS, INLINE_SHARE, WORKERS_SHARE, type VerifyJob } from '../../gateway/verify/pool.js';
import { packBatch, unpackBatch, type UnpackedJob } from '../../gateway/verify/worker.js';
import { rawPublicKeyOf, sigStructure } from '../../protocol/index.js';
import { createLogger, silentLogger } from '../../common/log.js';
import { isEdgegwError } from '../../common/errors.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, type Teardown } from '../helpers/tmp.js';

function jobs(n: number, tamperEvery = 0): { jobs: VerifyJob[]; expected: boolean[] } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const raw = rawPublicKeyOf('EdDSA', privateKey);
  const out: VerifyJob[] = [];
  const expected: boolean[] = [];
  for (let i = 0; i < n; i++) {
    const toBeSigned = new TextEncoder().encode(`message ${i}`);
    const signature = new Uint8Array(sign(null, toBeSigned, privateKey));
    const bad = tamperEvery > 0 && i % tamperEvery === 0;
    if (bad) signature[5]! ^= 1;
    out.push({ alg: 'EdDSA', kidHex: 'k1', raw, toBeSigned, signature });
    expected.push(!bad);
  }
  return { jobs: out, expected };
}

t.test('each job gets its own verdict, in order, across workers', async (t) => {
  const pool = createVerifierPool({ log: silentLogger() }, { size: 2 });
  await pool.start();
  t.teardown(() => pool.stop());
  const { jobs: js, expected } = jobs(300, 7);
  const verdicts = await Promise.all(js.map((j) => pool.verify(j)));
  t.same(verdicts, expected, 'valid and tampered signatures told apart, job by job');
  t.equal(pool.stats().jobs, 300);
  t.not(pool.inlineThresholds().inlineBelowPerS, (INLINE_SHARE * 1000) / INITIAL_CHECK_MS, "the workers' timings moved the estimate of a check's cost");
});

t.test('jobs that arrive while every worker is busy go out together', async (t) => {
  const pool = createVerifierPool({ log: silentLogger() }, { size: 1 });
  await pool.start();
  t.teardown(() => pool.stop());
  const { jobs: js } = jobs(201);
  const first = pool.verify(js[0]!);
  // Next turn: the first batch is with the worker; these 200 queue behind it, one per turn.
  await new Promise((r) => setImmediate(r));
  const rest: Promise<boolean>[] = [];
  for (let i = 1; i < js.length; i++) {
    rest.push(pool.verify(js[i]!));
    if (i % 10 === 0) await new Promise((r) => setImmediate(r));
  }
  t.same(await Promise.all([first, ...rest]), new Array(201).fill(true));
  const { batches, jobs: sent } = pool.stats();
  t.equal(sent, 201);
  t.ok(batches <= 6, `201 jobs over 21 turns went out in ${batches} batches, not one per turn`);
});

t.test('a few jobs wake one worker; many are spread evenly over the idle ones', async (t) => {
  const pool = createVerifierPool({ log: silentLogger() }, { size: 2 });
  await pool.start();
  t.teardown(() => pool.stop());
  const { jobs: js } = jobs(41);
  // 9 jobs in one turn with both workers idle: one batch (a second worker would get 1 job).
  t.same(await Promise.all(js.slice(0, 9).map((j) => pool.verify(j))), new Array(9).fill(true));
  t.same(pool.stats(), { batches: 1, jobs: 9 }, '9 jobs, one batch to one worker');
  // 32 jobs in one turn: two batches of 16, one per worker.
  t.same(await Promise.all(js.slice(9).map((j) => pool.verify(j))), new Array(32).fill(true));
  t.same(pool.stats(), { batches: 3, jobs: 41 }, '32 jobs, one batch per worker');
});

t.test('a signature of the wrong length and a Sig_structure over 64 KiB are refused, not a crash', async (t) => {
  const pool = createVerifierPool({ log: silentLogger() }, { size: 1 });
  await pool.start();
  t.teardown(() => pool.stop());
  const [good] = jobs(1).jobs;
  const long = new Uint8Array(300).fill(7);
  const bigTbs = new Uint8Array(100_000).fill(1);
  const verdicts = await Promise.all([
    pool.verify({ ...good!, signature: long }),
    pool.verify({ ...good!, toBeSigned: bigTbs }),
    pool.verify(good!),
  ]);
  t.same(verdicts, [false, false, true], 'each judged on its own; the pool keeps working');
});

t.test('a stopped pool refuses work with a typed error', async (t) => {
  const pool = createVerifierPool({ log: silentLogger() }, { size: 1 });
  await pool.start();
  await pool.stop();
  const err = await pool.verify(jobs(1).jobs[0]!).then(() => undefined, (e: unknown) => e);
  t.ok(isEdgegwError(err) && err.code === 'EDGEGW_INTERNAL', 'EDGEGW_INTERNAL');
});

t.test('a batch packs into one buffer and unpacks to the same jobs', async (t) => {
  const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
  const key = {
    alg: fc.constantFrom('EdDSA' as const, 'ES256' as const),
    kidHex: fc.string({ maxLength: 32 }),
    raw: bytes(0, 300),
    signature: bytes(0, 300),
  };
  // A job carries its Sig_structure, or a COSE_Sign1's parts to build it from in the batch.
  const job = fc.oneof(
    fc.record({ ...key, toBeSigned: bytes(0, 70_000) }),
    fc.record({ ...key, protectedBytes: bytes(0, 40), externalAad: bytes(0, 300), payload: bytes(0, 70_000) }),
  );
  fc.assert(
    fc.property(fc.array(job, { maxLength: 8 }), fc.nat(), (jobs: VerifyJob[], id) => {
      const batch = packBatch(id, jobs);
      const expectedBytes = jobs.reduce((n, j) => n + 13 + j.raw.length + tbsOf(j).length + j.signature.length, 0);
      if (batch.packed.byteLength !== expectedBytes) return false;
      const back = unpackBatch(batch);
      return batch.id === id && JSON.stringify(back.map(plain)) === JSON.stringify(jobs.map(plain));
    }),
  );
  // A view into a large buffer packs only its own bytes.
  const big = new Uint8Array(65536);
  const sig = big.subarray(100, 164);
  const packed = packBatch(1, [{ alg: 'EdDSA', kidHex: '00', raw: big.subarray(0, 32), toBeSigned: big.subarray(200, 350), signature: sig }]).packed;
  t.equal(packed.byteLength, 13 + 32 + 150 + 64, 'the 64 KiB buffer behind the views is not carried');
});

/** A job's Sig_structure, built independently of the packing (sigStructure allocates its own). */
function tbsOf(j: VerifyJob | UnpackedJob): Uint8Array {
  return 'toBeSigned' in j ? j.toBeSigned : sigStructure(j.protectedBytes, j.externalAad, j.payload);
}

function plain(j: VerifyJob | UnpackedJob) {
  return { alg: j.alg, kidHex: j.kidHex, raw: [...j.raw], toBeSigned: [...tbsOf(j)], signature: [...j.signature] };
}

/**
 * A pool whose rate samples read a clock the test moves, and `checksAt(perS)`: that many
 * checks a second for 100 ms (one rate sample), returning what the last one was told.
 */
async function clockedPool(t: Teardown) {
  const clock = { ms: 0 };
  const pool = createVerifierPool({ log: silentLogger() }, { size: 1, now: () => clock.ms });
  await pool.start();
  t.teardown(() => pool.stop());
  const checksAt = (perS: number): boolean => {
    const n = perS / 10;
    const base = clock.ms;
    let answer = false;
    for (let i = 1; i <= n; i++) {
      clock.ms = base + (i * 100) / n;
      answer = pool.preferInline();
    }
    return answer;
  };
  return { pool, clock, checksAt };
}

t.test('checks stay on the calling thread while they arrive slowly and the pool is empty; faster, they go to the workers', async (t) => {
  const { pool, clock, checksAt } = await clockedPool(t);
  const { inlineBelowPerS, workersAbovePerS } = pool.inlineThresholds();
  t.same([inlineBelowPerS, workersAbovePerS], [(INLINE_SHARE * 1000) / INITIAL_CHECK_MS, (WORKERS_SHARE * 1000) / INITIAL_CHECK_MS], 'before any check is measured: the initial cost');
  const low = inlineBelowPerS / 2;
  const between = (inlineBelowPerS + workersAbovePerS) / 2;
  const high = workersAbovePerS * 2;
  t.equal(pool.preferInline(), false, 'before the first rate sample: the workers');
  t.equal(checksAt(low), true, `${low}/s, empty pool: inline`);
  t.equal(checksAt(between), true, `${between}/s: between the thresholds the choice holds (hysteresis)`);
  t.equal(checksAt(high), false, `${high}/s: the workers`);
  t.equal(checksAt(between), false, 'and it holds on the way down');
  t.equal(checksAt(low), true, 'until checks arrive slowly again');
  // A burst after a quiet spell: at most a sample period's worth of upper-rate checks inline.
  clock.ms += 10_000;
  const answers: boolean[] = [];
  for (let i = 0; i < 1000; i++) {
    clock.ms += 0.01;
    answers.push(pool.preferInline());
  }
  const inlined = answers.filter(Boolean).length;
  t.ok(inlined <= (workersAbovePerS * 100) / 1000 + 1 && answers.at(-1) === false, `a burst of 1,000 checks in 10 ms: ${inlined} inline, the rest to the workers`);
  clock.ms += 10_000;
  t.equal(pool.preferInline(), true, 'quiet again: inline');
  // A job with the workers: the next check queues behind it rather than overtaking inline.
  const { jobs: js } = jobs(2);
  const pending = pool.verify(js[0]!);
  t.equal(pool.preferInline(), false, 'not while the pool has work');
  t.equal(await pending, true);
  t.equal(pool.preferInline(), true, 'inline again once the pool is empty');
});

t.test('the rates at which checks stay inline follow what an inline check costs', async (t) => {
  const { pool, checksAt } = await clockedPool(t);
  t.equal(checksAt(1_500), true, '1,500/s at the initial 0.1 ms a check: inline (under a quarter of the thread)');
  // A slower machine (a Raspberry Pi 4: about 0.25 ms an Ed25519 check).
  for (let i = 0; i < 200; i++) pool.noteInlineCheck(0.25);
  const slow = pool.inlineThresholds();
  t.ok(Math.abs(slow.inlineBelowPerS - 1_000) < 5 && Math.abs(slow.workersAbovePerS - 1_400) < 5, `at 0.25 ms a check: inline below ${slow.inlineBelowPerS.toFixed(0)}/s, workers above ${slow.workersAbovePerS.toFixed(0)}/s`);
  t.equal(checksAt(1_500), false, '1,500/s is then too much for the main thread: the workers');
  t.equal(checksAt(700), true, 'and 700/s is inline again');
  // Nonsense measurements (a clock step) are ignored; a slow check moves the cost 5 % at most.
  pool.noteInlineCheck(Number.NaN);
  pool.noteInlineCheck(-5);
  t.same(pool.inlineThresholds(), slow, 'NaN and negative durations change nothing');
  for (let i = 0; i < 3; i++) pool.noteInlineCheck(25);
  const stalled = pool.inlineThresholds().inlineBelowPerS;
  t.ok(stalled > 0.85 * slow.inlineBelowPerS, `three 25 ms stalls move the inline rate by ${(100 - (100 * stalled) / slow.inlineBelowPerS).toFixed(0)} % only`);
});

t.test('with inlineWhenIdle false every check goes to the workers', async (t) => {
  const pool = createVerifierPool({ log: silentLogger() }, { size: 1, inlineWhenIdle: false });
  await pool.start();
  t.teardown(() => pool.stop());
  t.equal(pool.preferInline(), false);
});

t.test('a worker that dies fails its batch with a clear error, and its replacement checks what comes next', async (t) => {
  const marker = join(tempDir(t, 'edgegw-worker-'), 'died');
  process.env.EDGEGW_TEST_WORKER_MARKER = marker;
  t.teardown(() => void delete process.env.EDGEGW_TEST_WORKER_MARKER);
  const pool = createVerifierPool(
    { log: silentLogger() },
    { size: 1, inlineWhenIdle: false, workerUrl: new URL('./fixtures/worker-that-dies-once.mjs', import.meta.url) },
  );
  await pool.start();
  t.teardown(() => pool.stop());
  const { jobs: js, expected } = jobs(6, 2);
  const first = await Promise.allSettled(js.slice(0, 3).map((j) => pool.verify(j)));
  t.ok(existsSync(marker), 'the worker died on its first batch');
  for (const r of first) {
    t.equal(r.status, 'rejected', 'a job of the lost batch is not given a verdict');
    if (r.status === 'rejected') t.ok(isEdgegwError(r.reason) && r.reason.code === 'EDGEGW_INTERNAL', 'it fails with EDGEGW_INTERNAL');
  }
  t.same(await Promise.all(js.slice(3).map((j) => pool.verify(j))), expected.slice(3), 'the replacement worker checks the next jobs');
});

t.test('a callback that throws does not cut short its batch, and the pool goes on', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ level: 'error', destination: { write: (line: string) => void lines.push(line) } });
  const pool = createVerifierPool({ log }, { size: 1, inlineWhenIdle: false });
  await pool.start();
  t.teardown(() => pool.stop());
  const { jobs: all, expected: allExpected } = jobs(11, 3);
  const js = all.slice(0, 8);
  const expected = allExpected.slice(0, 8);
  // All eight are checked in one turn, so they go out as one batch and come back together.
  const verdicts: (boolean | undefined)[] = new Array(8).fill(undefined);
  const answered = new Promise<void>((resolve) => {
    let left = 8;
    js.forEach((job, i) => {
      pool.check(job, (err, valid) => {
        verdicts[i] = err === null ? valid : undefined;
        if (--left === 0) resolve();
        if (i === 2) throw new Error('a bug in a caller');
      });
    });
  });
  await answered;
  t.equal(pool.stats().batches, 1, 'the eight jobs were one batch');
  t.same(verdicts, expected, 'the jobs after the throwing callback got their verdicts too');
  t.equal(lines.length, 1, 'the throw was logged once');
  t.match(JSON.parse(lines[0]!), { level: 'error', err: { message: 'a bug in a caller' } });
  t.same(await Promise.all(all.slice(8).map((j) => pool.verify(j))), allExpected.slice(8), 'the worker takes the next batch');
});
