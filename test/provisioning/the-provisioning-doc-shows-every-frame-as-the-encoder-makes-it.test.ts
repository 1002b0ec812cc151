// docs/provisioning.md shows every PROTOCOL.md §7 frame byte by byte for firmware authors. The
// block is rendered here from exampleFrames() (protocol/frames.ts), so it cannot go stale:
// this test fails when the page differs from what the encoder makes. EDGEGW_UPDATE_DOCS=1
// rewrites the block instead. Each field row is cut from the frame's own CBOR and the rows are
// checked to add up to exactly those bytes.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { decode, encode } from '../../protocol/cbor.js';
import { exampleFrames, SlipReader } from '../../protocol/index.js';

const DOC = join(fileURLToPath(new URL('../../', import.meta.url)), 'docs/provisioning.md');
const BEGIN = '<!-- frames:begin -->';
const END = '<!-- frames:end -->';

// Field names of the PROTOCOL.md §7 table, by frame type and key.
const FIELDS: Record<number, { name: string; dir: string; fields: string[] }> = {
  1: { name: 'HELLO', dir: 'station → device', fields: ['type', 'nonce (16 random bytes)', 'gatewayId'] },
  2: { name: 'IDENTITY', dir: 'device → station', fields: ['type', 'proposed deviceId', 'alg (-8 EdDSA)', 'raw public key', 'pop (Ed25519 signature)', 'firmware version', 'hardware model'] },
  3: { name: 'CREDENTIALS', dir: 'station → device', fields: ['type', 'deviceId', 'device certificate (DER)', 'CA certificate (DER)', 'gateway signing public key', 'broker URLs', 'config map'] },
  4: { name: 'COMMIT', dir: 'device → station', fields: ['type', 'SHA-256 of the CREDENTIALS CBOR bytes'] },
  5: { name: 'DONE', dir: 'station → device', fields: ['type', 'deviceId'] },
  15: { name: 'ERROR', dir: 'either way', fields: ['type', 'code (3: proof of possession failed)', 'message'] },
};

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const spaced = (h: string): string => (h.match(/../g) ?? []).join(' ');
const wrap = (h: string): string => (spaced(h).match(/.{1,48}/g) ?? []).map((l) => l.trim()).join('\n');

function render(): string {
  const out: string[] = [];
  for (const ex of exampleFrames()) {
    const line = new Uint8Array(Buffer.from(ex.hex, 'hex'));
    const packets = new SlipReader(4096).push(line);
    if (packets.length !== 1 || !(packets[0] instanceof Uint8Array)) throw new Error(`${ex.name}: not one SLIP packet`);
    const content = packets[0];
    const cbor = content.subarray(0, content.length - 4);
    const crc = content.subarray(content.length - 4);
    if (crc32(cbor) !== Buffer.from(crc).readUInt32BE(0)) throw new Error(`${ex.name}: CRC`);
    const map = decode(cbor) as Map<number, unknown>;
    const spec = FIELDS[map.get(0) as number]!;
    if (spec.name !== ex.name) throw new Error(`${ex.name}: type`);
    const header = hex(cbor.subarray(0, 1));
    const rows = [`| \`${header}\` | map of ${map.size} pairs |`];
    let joined = header;
    for (const [k, v] of map) {
      const pair = hex(encode(k)) + hex(encode(v));
      joined += pair;
      const meaning = k === 0 ? `key 0, type: ${v} ${spec.name}` : `key ${k}, ${spec.fields[k]}`;
      rows.push(`| \`${spaced(pair)}\` | ${meaning} |`);
    }
    if (joined !== hex(cbor)) throw new Error(`${ex.name}: rows do not add up to the CBOR`);
    rows.push(`| \`${spaced(hex(crc))}\` | CRC-32 of the ${cbor.length} CBOR bytes above, big-endian |`);
    out.push(
      `#### ${spec.name} (${spec.dir})`,
      '',
      '```',
      ex.diag,
      '```',
      '',
      '| bytes | meaning |',
      '| --- | --- |',
      ...rows,
      '',
      `On the line, SLIP-encoded, ${line.length} bytes:`,
      '',
      '```',
      wrap(ex.hex),
      '```',
      '',
    );
  }
  return out.join('\n');
}

t.test('docs/provisioning.md shows every frame exactly as the encoder makes it', async (t) => {
  const block = `${BEGIN}\n${render()}${END}`;
  let doc = readFileSync(DOC, 'utf8');
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  t.ok(start >= 0 && end > start, 'the page has the generated block markers');
  if (process.env.EDGEGW_UPDATE_DOCS === '1') {
    doc = doc.slice(0, start) + block + doc.slice(end + END.length);
    writeFileSync(DOC, doc);
  }
  t.equal(doc.slice(start, end + END.length), block, 'the page matches the encoder (EDGEGW_UPDATE_DOCS=1 to rewrite)');
  for (const name of Object.values(FIELDS).map((f) => f.name)) t.match(doc, `#### ${name} (`, `${name} is shown`);
  const credentials = exampleFrames().find((f) => f.name === 'CREDENTIALS')!;
  t.match(credentials.hex, /dbdc/, 'the CREDENTIALS example really shows an escaped END, as the page says');
});
