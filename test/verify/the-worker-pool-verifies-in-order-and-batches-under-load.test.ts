import t from 'tap';
import { generateKeyPairSync, sign } from 'node:crypto';
import { createVerifierPool, type VerifyJob } from '../../gateway/verify/pool.js';
import { rawPublicKeyOf } from '../../protocol/index.js';
import { silentLogger } from '../../common/log.js';
import { isEdgegwError } from '../../common/errors.js';

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

t.test('a stopped pool refuses work with a typed error', async (t) => {
  const pool = createVerifierPool({ log: silentLogger() }, { size: 1 });
  await pool.start();
  await pool.stop();
  const err = await pool.verify(jobs(1).jobs[0]!).then(() => undefined, (e: unknown) => e);
  t.ok(isEdgegwError(err) && err.code === 'EDGEGW_INTERNAL', 'EDGEGW_INTERNAL');
});
