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
 *
 * --no-allocation-site-pretenuring: V8 watches how many objects of each allocation site survive
 * a scavenge, and from a site whose objects mostly do it allocates the later ones straight in
 * the old generation. At saturation a message's objects are in flight for long enough to
 * survive, so the ingest path's sites (the packet, the decoded COSE_Sign1, the ingest's
 * closures) get tenured, and stay so when the load falls. Their objects then die in the old
 * generation, and the young objects they point to are kept by every scavenge until a full GC
 * frees them: at 10,000 msgs/s, 2.8 MB promoted per scavenge and 5-12 ms scavenge pauses on
 * the main thread. Without pretenuring: 3-4 times less promoted, scavenge pauses on the main
 * thread at half the maximum rate 48-105 ms per 5 s instead of 163-236, and a lower p99 PUBACK
 * latency (docs/performance.md, "Pretenuring off").
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32', '--no-allocation-site-pretenuring'];

/** The argv for `spawn(process.execPath, edgegwArgv(cliPath, args))`. */
export function edgegwArgv(cliPath: string, args: readonly string[]): string[] {
  return [...NODE_FLAGS, cliPath, ...args];
}
