/**
 * The Node.js flags the `edgegw` executable runs with: its shebang line
 * (`#!/usr/bin/env -S node ...`, cli/main.ts) carries them, and code that starts edgegw with
 * `process.execPath` (the demo, benchmarks, tests) passes them too, so a child behaves as the
 * installed command does. test/cli/the-executable-runs-with-its-node-flags.test.ts keeps the two
 * in step.
 *
 * --max-semi-space-size=32: a young generation of up to 2 x 32 MiB instead of 2 x 16 MiB. The
 * ingest path allocates a few short-lived objects per message; a larger young generation
 * means fewer scavenges and fewer promotions. Measured in interleaved runs
 * (docs/performance.md): +12-20 % messages/s at saturation, and a lower p99 PUBACK latency
 * at 5,000 msgs/s. V8 reads it only at start-up (v8.setFlagsFromString is too late).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32'];

/** The argv for `spawn(process.execPath, edgegwArgv(cliPath, args))`. */
export function edgegwArgv(cliPath: string, args: readonly string[]): string[] {
  return [...NODE_FLAGS, cliPath, ...args];
}
