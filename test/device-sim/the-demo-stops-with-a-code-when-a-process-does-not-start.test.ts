import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runDemo } from '../../device-sim/index.js';
import { silentLogger } from '../../common/log.js';
import { systemClock } from '../../common/clock.js';
import { tempDir } from '../helpers/tmp.js';

t.test('a child that exits before its ready line fails the demo with EDGEGW_SIM_CHILD_FAILED', async (t) => {
  const fake = join(tempDir(t), 'broken-edgegw.mjs');
  writeFileSync(fake, "process.stderr.write('cannot start\\n'); process.exit(3);\n");
  await t.rejects(runDemo({ log: silentLogger(), clock: systemClock }, { cliPath: fake, devices: 1, durationMs: 1000 }), {
    code: 'EDGEGW_SIM_CHILD_FAILED',
    message: /cloud-sim: exited before it was ready \(code 3/,
  });
});
