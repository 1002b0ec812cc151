/**
 * Identifiers of the wire contract: the deviceId (PROTOCOL.md §1), which is also the MQTT
 * client id, the certificate CN and a topic segment, and the STREAM, EVENT and command NAME
 * topic levels (PROTOCOL.md §2). Both grammars exclude '/', '+', '#', '$' and NUL, which is
 * what lets topics.ts treat a level that passes them as a plain topic level.
 */
import { EdgegwError } from '../common/errors.js';

// JavaScript's `$` without the m flag matches only at the end of input (no trailing "\n").
const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const TOPIC_NAME = /^[a-z0-9_-]{1,32}$/;

/** PROTOCOL.md §1: `^[A-Za-z0-9_-]{1,64}$`. */
export function isDeviceId(s: unknown): s is string {
  return typeof s === 'string' && DEVICE_ID.test(s);
}

/** Throws EDGEGW_DEVICE_ID_INVALID unless `s` is a deviceId; for configuration and CLI input. */
export function assertDeviceId(s: unknown): asserts s is string {
  if (!isDeviceId(s)) throw new EdgegwError('EDGEGW_DEVICE_ID_INVALID');
}

/** PROTOCOL.md §2: a STREAM, EVENT or command NAME level, `^[a-z0-9_-]{1,32}$`. */
export function isTopicName(s: unknown): s is string {
  return typeof s === 'string' && TOPIC_NAME.test(s);
}

/** The three kinds of name share one grammar; the aliases say which one a caller means. */
export const isStreamName = isTopicName;
export const isEventName = isTopicName;
export const isCommandName = isTopicName;
