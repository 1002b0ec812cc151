import t from 'tap';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { fileFlash, memoryFlash } from '../../device-sim/index.js';
import { encode } from '../../protocol/cbor.js';
import { tempDir } from '../helpers/tmp.js';
import { testFlash } from './_flash.js';

t.test('every field survives a save and a load, for both key types', (t) => {
  const dir = tempDir(t);
  for (const alg of ['EdDSA', 'ES256'] as const) {
    const state = testFlash({ deviceId: `dev-${alg}`, certPem: '-----BEGIN CERTIFICATE-----\n', caPem: 'ca', brokerUrls: ['mqtts://127.0.0.1:8883', 'mqtt://127.0.0.1:1883'], reservedUpTo: 3000, commandSeq: 7 }, alg);
    const flash = fileFlash(join(dir, `${alg}.flash`));
    t.equal(flash.load(), undefined, 'an unwritten flash is empty');
    flash.save(state);
    t.same(flash.load(), state);
  }
  t.end();
});

t.test('a corrupt or foreign flash image is refused with EDGEGW_SIM_FLASH_CORRUPT', (t) => {
  const dir = tempDir(t);
  const good = encode(new Map<string, unknown>([['v', 1]]));
  const images: [string, Uint8Array][] = [
    ['not CBOR', new Uint8Array([0xff, 0xff])],
    ['a map without the fields', good],
    ['another version', encode(new Map<string, unknown>([['v', 2]]))],
    ['an array', encode([1, 2, 3])],
  ];
  for (const [name, bytes] of images) {
    const path = join(dir, `${name.replace(/ /g, '-')}.flash`);
    writeFileSync(path, bytes);
    t.throws(() => fileFlash(path).load(), { code: 'EDGEGW_SIM_FLASH_CORRUPT' }, name);
  }
  // A field of the wrong type: a private key of 31 bytes.
  const mem = memoryFlash();
  mem.save({ ...testFlash(), privateKey: new Uint8Array(31) });
  t.throws(() => mem.load(), { code: 'EDGEGW_SIM_FLASH_CORRUPT' }, 'a 31-byte private key');
  t.end();
});
