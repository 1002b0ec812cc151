#!/usr/bin/env -S node --max-semi-space-size=32 --no-allocation-site-pretenuring
// The `edgegw` executable: see cli/program.ts.
import { main } from './program.js';

process.exitCode = await main(process.argv.slice(2));
