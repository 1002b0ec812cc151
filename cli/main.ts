#!/usr/bin/env node
// The `edgegw` executable: see cli/program.ts.
import { main } from './program.js';

process.exitCode = await main(process.argv.slice(2));
