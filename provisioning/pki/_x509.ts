/**
 * The one place that sets up @peculiar/x509: the library needs reflect-metadata loaded before
 * it and a WebCrypto provider. Every other file of this folder takes `x509` and `subtle` from
 * here, so the setup cannot be forgotten or done twice differently.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// Node's WebCrypto implements Ed25519 and ECDSA P-256, the two key types of PROTOCOL.md §1.
// The cast bridges Node's webcrypto type and the DOM `Crypto` the library is typed against.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
export const subtle = webcrypto.subtle;
export type CryptoKey = webcrypto.CryptoKey;
