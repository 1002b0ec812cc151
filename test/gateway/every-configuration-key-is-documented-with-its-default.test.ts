// docs/configuration.md and the configuration schema (gateway/config.ts) must name the same
// keys, with the same defaults: a user reads the one, the gateway obeys the other.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { ConfigSchema, parseConfig } from '../../gateway/config.js';

const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

/** Table rows: key -> the default column as written. */
const rows = new Map([...doc.matchAll(/^\| `([A-Za-z0-9.]+)` \| ([^|]+) \|/gm)].map((m) => [m[1]!, m[2]!.trim()]));

interface SchemaNode {
  _zod: { def: { type: string; innerType?: SchemaNode; shape?: Record<string, SchemaNode> } };
}

/** Every leaf key path of the schema; objects wrapped in default/optional/prefault are walked. */
function leafKeys(shape: Record<string, SchemaNode>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, node] of Object.entries(shape)) {
    let inner = node;
    while (inner._zod.def.type !== 'object' && inner._zod.def.innerType !== undefined) inner = inner._zod.def.innerType;
    if (inner._zod.def.type === 'object' && inner._zod.def.shape) out.push(...leafKeys(inner._zod.def.shape, `${prefix}${key}.`));
    else out.push(`${prefix}${key}`);
  }
  return out;
}

t.test('the doc and the schema name the same keys', async (t) => {
  const keys = leafKeys((ConfigSchema as unknown as SchemaNode)._zod.def.shape!);
  t.ok(keys.length > 30, `${keys.length} keys in the schema`);
  t.same(keys.filter((k) => !rows.has(k)), [], 'in the schema, not in docs/configuration.md');
  t.same([...rows.keys()].filter((k) => !keys.includes(k)), [], 'in docs/configuration.md, not in the schema');
});

t.test('each documented default is the one the gateway uses', async (t) => {
  const config = parseConfig({ dataDir: '/var/lib/edgegw' }) as unknown as Record<string, unknown>;
  for (const [key, written] of rows) {
    if (key === 'dataDir') {
      t.equal(written, 'required', 'dataDir has no default');
      continue;
    }
    const value = key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], config);
    const expected = value === undefined ? 'none' : `\`${JSON.stringify(value)}\``;
    t.equal(written, expected, `${key}: documented ${written}, the schema's default ${expected}`);
  }
});
