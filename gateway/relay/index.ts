/**
 * The uplink to the cloud (PROTOCOL.md §8, issue 4): batches from the outbox over HTTPS with
 * mutual TLS, or over the MQTT bridge when the upstream URL is `mqtts://`. See docs/relay.md.
 */
export { createRelay, retryBackoff, type Relay, type RelayDeps, type RelayStats, type BreakerState } from './relay.js';
export { DEFAULT_RELAY_OPTIONS, parseRelayOptions, checkUpstream, type RelayOptions, type RelayOptionsInput } from './options.js';
export { encodeBatch, batchId, type Batch } from './wire.js';
export { parseRetryAfter } from './outcome.js';
