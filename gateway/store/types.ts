/**
 * The named handoffs that cross the store's boundary: a verified message going in
 * (`AcceptedMessage`), a record going out to the relay (`OutboxRecord`), and a security
 * event for the audit trail (`AuditEvent`).
 */
/** A message that passed every check of PROTOCOL.md §3, about to be committed. */
export interface AcceptedMessage {
  readonly deviceId: string;
  readonly kid: Uint8Array;
  readonly seq: number;
  readonly ts: number;
  /** Gateway receive time, ms since the epoch. */
  readonly rxMs: number;
  readonly topic: string;
  /** The original COSE_Sign1 bytes, relayed unchanged so the cloud can verify them. */
  readonly cose: Uint8Array;
}

/** One row of the outbox, as the relay reads it. */
export interface OutboxRecord {
  readonly id: number;
  readonly deviceId: string;
  readonly kid: Uint8Array;
  readonly seq: number;
  readonly ts: number;
  readonly rxMs: number;
  readonly topic: string;
  readonly cose: Uint8Array;
}

export interface AuditEvent {
  readonly tsMs: number;
  /** e.g. 'rejected', 'acl', 'connect_refused', 'revoked', 'outbox_high_water'. */
  readonly kind: string;
  readonly code?: string;
  readonly deviceId?: string;
  readonly address?: string;
  readonly detail?: string;
}

export interface OutboxUsage {
  rows: number;
  bytes: number;
}
