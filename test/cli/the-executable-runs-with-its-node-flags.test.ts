import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { NODE_FLAGS, edgegwArgv } from '../../cli/node-flags.js';

const MAIN_TS = fileURLToPath(new URL('../../cli/main.ts', import.meta.url));
const MAIN_JS = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

t.test('the shebang of the executable carries exactly NODE_FLAGS', async (t) => {
  for (const file of [MAIN_TS, MAIN_JS]) {
    const first = readFileSync(file, 'utf8').split('\n')[0]!;
    const m = /^#!\/usr\/bin\/env -S node((?: \S+)*)$/.exec(first);
    t.ok(m, `${file}: an env -S node shebang`);
    t.same(m![1]!.trim().split(' ').filter(Boolean), NODE_FLAGS, `${file}: the flags match cli/node-flags.ts`);
  }
});

t.test('a child started with edgegwArgv gets the larger young generation', async (t) => {
  const argv = edgegwArgv('-e', []);
  t.same(argv.slice(0, NODE_FLAGS.length), NODE_FLAGS, 'flags first, before the script');
  // Churn short-lived objects, then read how far V8 let the young generation grow.
  const churn = `
    let keep = [];
    for (let i = 0; i < 3e6; i++) { keep.push({ a: i, b: 'x' + i }); if (keep.length > 20000) keep = []; }
    const s = require('node:v8').getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
    process.stdout.write(String(s.space_size));`;
  const newSpace = (flags: readonly string[]): number => {
    const r = spawnSync(process.execPath, [...flags, '-e', churn], { encoding: 'utf8' });
    t.equal(r.status, 0, r.stderr);
    return Number(r.stdout);
  };
  const plain = newSpace([]);
  const flagged = newSpace(NODE_FLAGS);
  t.ok(flagged > plain, `young generation ${flagged >> 20} MiB with the flags, ${plain >> 20} MiB without`);
});

t.test('with the executable\'s flags, V8 pretenures no allocation site', async (t) => {
  // Objects from one site that all live long (a ring of 1,000,000): V8 decides to allocate that
  // site's later objects straight in the old generation ("=> tenure" in its trace). Without
  // pretenuring it makes no such decision (cli/node-flags.ts says why the gateway wants that).
  // Two test-only flags take timing out of V8's decision: without them a CI machine made 0
  // decisions where this one made 4 (with them, 44-46 here). V8 decides only at scavenges of a young
  // generation at its maximum size, and its growth depends on the allocation rate, so
  // --min-semi-space-size pins it there; and code optimized by TurboFan or Maglev allocates
  // without the mementos V8 counts, so when a background compile finishes early the feedback
  // stops, hence --max-opt=1 (interpreter and baseline code only).
  const ring = `
    const make = (i) => ({ i, c: [i, i] });
    let ring = new Array(1000000);
    for (let i = 0; i < 3e6; i++) ring[i % ring.length] = make(i);
    process.stdout.write(String(ring.length));`;
  // The young generation pinned at the size the executable allows it to grow to.
  const maxSemiSpace = NODE_FLAGS.find((f) => f.startsWith('--max-semi-space-size='));
  if (!maxSemiSpace) {
    t.fail('NODE_FLAGS sets no --max-semi-space-size to pin the young generation at');
    return;
  }
  const pinned = [maxSemiSpace.replace('--max-', '--min-'), '--max-opt=1'];
  const tenured = (flags: readonly string[]): number => {
    const r = spawnSync(process.execPath, [...flags, ...pinned, '--trace-pretenuring', '--trace-pretenuring-statistics', '-e', ring], { encoding: 'utf8', maxBuffer: 64 << 20 });
    t.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter((line) => /=> tenure$/.test(line)).length;
  };
  const withDefault = tenured(NODE_FLAGS.filter((f) => f !== '--no-allocation-site-pretenuring'));
  t.ok(withDefault > 0, `V8's default pretenures the ring's sites (${withDefault} decisions): the workload shows the difference`);
  t.equal(tenured(NODE_FLAGS), 0, 'no site is pretenured with the flags');
});
