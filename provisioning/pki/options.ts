/**
 * Options of the local PKI: one schema with defaults and units in the names, unknown keys
 * refused, every problem reported at once (EDGEGW_CONFIG_INVALID), then frozen.
 */
import { z } from 'zod';
import { EdgegwError } from '../../common/index.js';
import { MAX_LEAF_VALIDITY_DAYS, isServerName } from './certs.js';

export const ROOT_VALIDITY_DAYS = 7300;
export const ISSUING_VALIDITY_DAYS = 3650;
/** Names every server certificate carries, so local clients can always reach the broker. */
export const LOOPBACK_NAMES: readonly string[] = ['localhost', '127.0.0.1', '::1'];
/** Most SAN entries in one server certificate, loopback names included. */
const MAX_SERVER_NAMES = 32;
const MAX_EXTRA_NAMES = MAX_SERVER_NAMES - LOOPBACK_NAMES.length;

const OptionsSchema = z
  .strictObject({
    dir: z.string().min(1),
    /** Encrypts the root and issuing CA keys (PKCS#8, PBES2 with AES-256-CBC). */
    passphrase: z.string().min(1).max(1024).optional(),
    /** Host names and IP literals of the broker, in addition to the loopback names. */
    serverNames: z
      .array(z.string().refine(isServerName, 'not a DNS host name or IP literal'))
      .max(MAX_EXTRA_NAMES)
      .default([]),
    /** Default validity of device and client certificates. */
    validityDays: z.number().int().min(1).max(MAX_LEAF_VALIDITY_DAYS).default(365),
    serverValidityDays: z.number().int().min(2).max(MAX_LEAF_VALIDITY_DAYS).default(365),
    /** ensure() renews the server certificate when fewer days than this remain. */
    renewBeforeDays: z.number().int().min(0).max(MAX_LEAF_VALIDITY_DAYS - 1).default(30),
    /** Label in the CA names, e.g. 'edgegw' or 'cloud-sim'. */
    caName: z.string().regex(/^[A-Za-z0-9 _.-]{1,40}$/).default('edgegw'),
    /** nextUpdate of a CRL, counted from its signing. */
    crlValidityDays: z.number().int().min(1).max(365).default(7),
  })
  .refine((o) => o.renewBeforeDays < o.serverValidityDays, {
    // Otherwise every start would renew the certificate it just issued.
    message: 'renewBeforeDays must be less than serverValidityDays',
    path: ['renewBeforeDays'],
  });

export type PkiOptions = z.input<typeof OptionsSchema>;
export type ResolvedPkiOptions = Readonly<z.output<typeof OptionsSchema>>;

export function parseOptions(options: PkiOptions): ResolvedPkiOptions {
  const parsed = OptionsSchema.safeParse(options);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`);
    throw new EdgegwError('EDGEGW_CONFIG_INVALID', `pki options: ${problems.join('; ')}`);
  }
  return Object.freeze(parsed.data);
}

/** The SAN list of a server certificate: the given names, then the loopback names, no repeats. */
export function resolveServerNames(names: readonly string[]): string[] {
  if (!Array.isArray(names) || names.length > MAX_EXTRA_NAMES) {
    throw new EdgegwError('EDGEGW_PKI_BAD_REQUEST', `server names: an array of at most ${MAX_EXTRA_NAMES}`);
  }
  for (const n of names) {
    if (!isServerName(n)) throw new EdgegwError('EDGEGW_PKI_BAD_REQUEST', `not a DNS host name or IP literal: ${String(n)}`);
  }
  return [...new Set([...names, ...LOOPBACK_NAMES])];
}
