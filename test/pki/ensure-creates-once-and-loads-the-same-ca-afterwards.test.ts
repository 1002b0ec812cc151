// ensure() creates the hierarchy once and loads it afterwards: twice on one instance, on a new
// instance, on several instances racing in one process, and from several processes starting
// at the same moment (the temporary-directory-and-rename of provisioning/pki/layout.ts).
import t from 'tap';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { createLogger, systemClock } from '../../common/index.js';
import { createPki, parseCert, type Pki } from '../../provisioning/pki/index.js';
import { x509 } from '../../provisioning/pki/_x509.js';
import { newPki } from './_helpers.js';

const execFileAsync = promisify(execFile);

function fingerprints(pki: Pki): { root: string; issuing: string; server: string } {
  return {
    root: parseCert(pki.rootCaPem).fingerprint256,
    issuing: parseCert(pki.issuingCaPem).fingerprint256,
    // serverTls().cert is the chain: the server certificate, then the issuing CA.
    server: parseCert(x509.PemConverter.encode(x509.PemConverter.decode(pki.serverTls().cert)[0]!, 'CERTIFICATE')).fingerprint256,
  };
}

t.test('twice on one instance and again on a new instance', async (t) => {
  const dir = join(t.testdir(), 'pki');
  const pki = newPki(dir);
  await pki.ensure();
  const first = fingerprints(pki);
  const files = readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8'));
  await pki.ensure();
  t.same(fingerprints(pki), first, 'the second call changes nothing');

  const again = newPki(dir);
  await again.ensure();
  t.same(fingerprints(again), first, 'a new instance loads the same CA and server certificate');
  t.same(readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8')), files, 'no file was rewritten');
});

t.test('an existing empty directory is filled; a foreign non-empty one is refused', async (t) => {
  const root = t.testdir();
  mkdirSync(join(root, 'empty'), { mode: 0o755 });
  const pki = newPki(join(root, 'empty'));
  await pki.ensure();
  t.equal(readdirSync(pki.dir).length, 6);

  mkdirSync(join(root, 'busy'));
  writeFileSync(join(root, 'busy', 'someone-elses.db'), 'x');
  await t.rejects(newPki(join(root, 'busy')).ensure(), { code: 'EDGEGW_PKI_CORRUPT' });
  t.same(readdirSync(join(root, 'busy')), ['someone-elses.db'], 'and left untouched');
  t.same(readdirSync(root).sort(), ['busy', 'empty'], 'no temporary directory left behind');
});

t.test('instances racing in one process agree on one CA', async (t) => {
  const root = t.testdir();
  const dir = join(root, 'pki');
  const lines: string[] = [];
  const log = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } });
  const racers = Array.from({ length: 4 }, () => createPki({ log, clock: systemClock }, { dir }));
  await Promise.all(racers.map((p) => p.ensure()));
  const [first, ...rest] = racers.map((p) => fingerprints(p));
  for (const fp of rest) t.same({ root: fp.root, issuing: fp.issuing }, { root: first!.root, issuing: first!.issuing });
  const outcomes = lines.map((l) => JSON.parse(l) as { created?: boolean }).filter((l) => l.created !== undefined);
  t.same(
    outcomes.map((o) => o.created).sort(),
    [false, false, false, true],
    'all four built a hierarchy, one rename won, three found the directory taken',
  );
  t.same(readdirSync(root), ['pki'], 'the losers removed their temporary directories');
});

t.test('processes starting at once agree on one CA', async (t) => {
  const root = t.testdir();
  const dir = join(root, 'pki');
  const script = new URL('./fixtures/ensure-pki.ts', import.meta.url).pathname;
  // The children need tap's TypeScript loader, and nothing else of the test runner.
  const loader = process.execArgv.filter((a) => a.includes('typescript'));
  const outputs = await Promise.all(
    Array.from({ length: 2 }, () => execFileAsync(process.execPath, [...loader, script, dir], { timeout: 60_000 })),
  );
  const seen = outputs.map((o) => JSON.parse(o.stdout.trim()) as { root: string; issuing: string });
  t.equal(seen.length, 2);
  t.same(seen[1], seen[0]);
  const pki = newPki(dir);
  await pki.ensure();
  t.same(parseCert(pki.issuingCaPem).fingerprint256, seen[0]!.issuing, 'what is on disk is what they all loaded');
  t.same(readdirSync(root), ['pki']);
});
