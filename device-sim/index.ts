/**
 * The device simulator's public surface: the firmware model and its parts, the fleet
 * runner, its profiles and report, and the demo that puts a whole system together.
 */
export { createDevice, backoffDelay, type Device, type DeviceDeps, type DeviceOptions, type DeviceStats, type DeviceState, type RawOutcome, type TelemetrySchedule, type BackoffOptions } from './firmware.js';
export { fileFlash, memoryFlash, createSeqAllocator, SEQ_BLOCK, type FlashState, type FlashStore, type SeqAllocator } from './flash.js';
export { createRing, type Ring, type Pending } from './ring.js';
export { checkCommand, type AcceptedCommand, type CommandContext } from './commands.js';
export { connectToken, tlsKeyPem, parseBrokerUrl, openConnection, probeConnect, type BrokerAddress, type ConnectionSpec, type ProbeResult, type Throttle, type TransportKind } from './transport.js';
export { parsePlan, sourceAddress } from './plan.js';
export { runFleet, type FleetDeps, type FleetOptions, type FleetTarget, type FleetObserver, type FleetProgress, type FleetPhase, type Registration } from './fleet.js';
export { buildReport, renderReport, diffCounts, type FleetReport, type GatewayCounts, type ProfileTally, type Expectation, type CloudFindings } from './report.js';
export { PROFILES, HOSTILE_PROFILES, MALFORMED_SAMPLES, tamper, CLOCK_SKEW_MS, REPLAY_SKIP, REPLAY_WINDOW, type Profile, type ProfileContext, type TargetFacts } from './profiles/index.js';
export { createObserver, createCloudClient, readGatewayCounts, type CloudAccess, type CloudClient } from './observe.js';
export { createProgressView, type ProgressView } from './progress.js';
export { runDemo, DEMO_GATEWAY_LIMITS, type DemoOptions, type DemoResult } from './demo.js';
