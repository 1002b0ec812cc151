// docs/errors.md and common/errors.ts must list the same codes (fastify checks its
// errors doc the same way), and every code must be asserted by code in some test.
import t from 'tap';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES, EdgegwError, isEdgegwError } from '../../common/errors.js';

const root = new URL('../../', import.meta.url).pathname;

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else if (p.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

t.test('every code in common/errors.ts is documented in docs/errors.md and vice versa', async (t) => {
  const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8');
  const documented = new Set([...doc.matchAll(/^\|\s*(EDGEGW_[A-Z0-9_]+)\s*\|/gm)].map((m) => m[1]));
  const defined = new Set(Object.keys(ERROR_CODES));
  t.same([...defined].filter((c) => !documented.has(c)), [], 'defined but not documented');
  t.same([...documented].filter((c) => !defined.has(c as string)), [], 'documented but not defined');
});

// A counter name such as 'rejected.EDGEGW_X' names the code too.
t.test('every code is asserted by name in at least one test file', async (t) => {
  const tests = listFiles(join(root, 'test'))
    .filter((f) => !f.endsWith('errors-doc.test.ts'))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
  const missing = Object.keys(ERROR_CODES).filter((c) => !new RegExp(`['"\`.]${c}['"\`]`).test(tests));
  t.same(missing, [], 'codes never asserted in a test');
});

t.test('EdgegwError carries its code, a default message and the cause', async (t) => {
  const cause = new Error('disk');
  const err = new EdgegwError('EDGEGW_INTERNAL', undefined, { cause });
  t.equal(err.code, 'EDGEGW_INTERNAL');
  t.equal(err.message, ERROR_CODES.EDGEGW_INTERNAL);
  t.equal(err.cause, cause);
  t.ok(isEdgegwError(err, 'EDGEGW_INTERNAL'));
  t.notOk(isEdgegwError(err, 'EDGEGW_USAGE'));
  t.notOk(isEdgegwError(cause));
  t.same(JSON.parse(JSON.stringify(err)), { code: 'EDGEGW_INTERNAL', message: ERROR_CODES.EDGEGW_INTERNAL });
});
