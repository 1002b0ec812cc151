/**
 * The firmware's check of gateway commands (PROTOCOL.md §6): a tagged COSE_Sign1 signed by
 * the gateway's Ed25519 key over the command topic, whose payload is `{1: seq, 2: ts,
 * 3: body, 4: expiry}`. A device drops a command that fails verification, has expired, or
 * repeats a seq. Verification uses @noble/curves, as small firmware would.
 *
 * Pure apart from the caller-supplied `lastSeq`: the firmware persists the accepted seq in
 * flash, so a repeated command is still refused after a reboot.
 */
import { fail, ok, type Result } from '../common/errors.js';
import { decodeSign1, parseCommandPayload, parseTopic, verifySign1Noble, type CommandPayload } from '../protocol/index.js';

export interface AcceptedCommand extends CommandPayload {
  /** The NAME level of `d/D/c/NAME`. */
  readonly name: string;
}

export interface CommandContext {
  readonly deviceId: string;
  readonly gatewayPublicKey: Uint8Array;
  /** Highest command seq accepted so far (0 = none). */
  readonly lastSeq: number;
  readonly nowMs: number;
}

// A command is small; anything bigger than an MQTT payload the gateway itself accepts is not one.
const COMMAND_MAX_BYTES = 16 * 1024;
const utf8 = new TextEncoder();

/**
 * Checks one command in the order: topic is this device's, COSE structure, signature with
 * the gateway key (external_aad = topic), payload shape, seq strictly above `lastSeq`,
 * expiry not passed.
 */
export function checkCommand(topic: string, bytes: Uint8Array, ctx: CommandContext): Result<AcceptedCommand> {
  const parsed = parseTopic(topic);
  if (!parsed.ok) return parsed;
  if (parsed.value.kind !== 'command' || parsed.value.deviceId !== ctx.deviceId) {
    return fail('EDGEGW_TOPIC_INVALID', 'not a command topic of this device');
  }
  const msg = decodeSign1(bytes, { maxBytes: COMMAND_MAX_BYTES });
  if (!msg.ok) return msg;
  // PROTOCOL.md §1: the gateway signing key is Ed25519.
  const sig = verifySign1Noble(msg.value, 'EdDSA', ctx.gatewayPublicKey, utf8.encode(topic));
  if (!sig.ok) return sig;
  const payload = parseCommandPayload(msg.value.payload);
  if (!payload.ok) return payload;
  if (payload.value.seq <= ctx.lastSeq) {
    return fail('EDGEGW_SIM_COMMAND_REPEATED', `command seq ${payload.value.seq} <= ${ctx.lastSeq}`);
  }
  if (payload.value.expiry <= ctx.nowMs) return fail('EDGEGW_SIM_COMMAND_EXPIRED');
  return ok({ ...payload.value, name: parsed.value.name });
}
