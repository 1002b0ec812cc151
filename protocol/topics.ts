/**
 * The MQTT topic tree of PROTOCOL.md §2: parsing a device topic, building one, and the two
 * ACL questions the broker asks (may this device publish here, may it subscribe to this
 * filter). The policy lives here, apart from the broker's transport code.
 *
 * Every level is checked against the grammar of ids.ts, which has no room for '/', '+', '#',
 * '$', NUL or an empty string: that one rule shuts out wildcards in published topics, empty
 * levels ("d//t/x", "d/D/t/x/"), `$SYS` and `$share` prefixes and NUL truncation tricks.
 */
import { EdgegwError, fail, ok, type Result } from '../common/errors.js';
import { assertDeviceId, isDeviceId, isTopicName } from './ids.js';

export type DeviceTopic =
  | { kind: 'telemetry'; deviceId: string; stream: string }
  | { kind: 'event'; deviceId: string; event: string }
  | { kind: 'keyRotation'; deviceId: string }
  | { kind: 'command'; deviceId: string; name: string };

// The longest valid topic is "d/" + 64 + "/t/" + 32 = 101 characters; the longest filter we
// allow is "d/" + 64 + "/c/" + 32 + "/#" = 103. Anything longer is refused before splitting.
const MAX_TOPIC_CHARS = 101;
const MAX_FILTER_CHARS = 103;

/** Parses a topic of PROTOCOL.md §2; anything else is EDGEGW_TOPIC_INVALID. */
export function parseTopic(topic: string): Result<DeviceTopic> {
  if (typeof topic !== 'string' || topic.length > MAX_TOPIC_CHARS) return fail('EDGEGW_TOPIC_INVALID', 'not a string of at most 101 characters');
  const levels = topic.split('/');
  const [root, deviceId, kind, name] = levels;
  if (root !== 'd' || !isDeviceId(deviceId)) return fail('EDGEGW_TOPIC_INVALID', 'topic does not start with d/<deviceId>');
  if (levels.length === 3 && kind === 'k') return ok({ kind: 'keyRotation', deviceId });
  if (levels.length !== 4 || !isTopicName(name)) return fail('EDGEGW_TOPIC_INVALID', 'expected d/<deviceId>/k or d/<deviceId>/{t,e,c}/<name>');
  switch (kind) {
    case 't':
      return ok({ kind: 'telemetry', deviceId, stream: name });
    case 'e':
      return ok({ kind: 'event', deviceId, event: name });
    case 'c':
      return ok({ kind: 'command', deviceId, name });
    default:
      return fail('EDGEGW_TOPIC_INVALID', 'unknown topic kind');
  }
}

// Builders take values the caller already holds as valid; a bad one is a bug, so it throws.
function checked(deviceId: string, name?: string): void {
  assertDeviceId(deviceId);
  if (name !== undefined && !isTopicName(name)) throw new EdgegwError('EDGEGW_TOPIC_INVALID', 'topic name must match ^[a-z0-9_-]{1,32}$');
}

export function telemetryTopic(deviceId: string, stream: string): string {
  checked(deviceId, stream);
  return `d/${deviceId}/t/${stream}`;
}

export function eventTopic(deviceId: string, event: string): string {
  checked(deviceId, event);
  return `d/${deviceId}/e/${event}`;
}

export function keyTopic(deviceId: string): string {
  checked(deviceId);
  return `d/${deviceId}/k`;
}

export function commandTopic(deviceId: string, name: string): string {
  checked(deviceId, name);
  return `d/${deviceId}/c/${name}`;
}

/** PROTOCOL.md §2: a device may publish only to its own t/, e/ and k topics. */
export function mayPublish(deviceId: string, topic: string): boolean {
  return mayPublishParsed(deviceId, parseTopic(topic));
}

/** mayPublish for a topic the caller has parsed already. */
export function mayPublishParsed(deviceId: string, parsed: Result<DeviceTopic>): boolean {
  if (!isDeviceId(deviceId)) return false;
  return parsed.ok && parsed.value.kind !== 'command' && parsed.value.deviceId === deviceId;
}

/**
 * PROTOCOL.md §2: a device may subscribe only to `d/D/c/#` or a filter under it. Allowed:
 * `d/D/c/#`, `d/D/c/+`, `d/D/c/NAME`, and either of the last two followed by `/#`. Wildcards
 * appear only after `d/D/c/` and only as whole levels ([MQTT-4.7.1-2], [MQTT-4.7.1-3]), so
 * every topic such a filter can match lies in D's command subtree.
 */
export function maySubscribe(deviceId: string, filter: string): boolean {
  if (!isDeviceId(deviceId) || typeof filter !== 'string' || filter.length > MAX_FILTER_CHARS) return false;
  const levels = filter.split('/');
  if (levels[0] !== 'd' || levels[1] !== deviceId || levels[2] !== 'c') return false;
  const rest = levels.slice(3);
  if (rest.length === 1) return rest[0] === '#' || rest[0] === '+' || isTopicName(rest[0]);
  if (rest.length === 2) return (rest[0] === '+' || isTopicName(rest[0])) && rest[1] === '#';
  return false;
}
