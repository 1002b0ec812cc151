// Helpers for the known-answer tests: where the shared vectors live and how their JSON
// encodes keys and bytes. The vectors sit beside the repo as ../shared (CI clones the repo
// into another folder with shared/ next to it), so the path is relative to this file.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const VECTORS_DIR = fileURLToPath(new URL('../../../shared/vectors/', import.meta.url));

export function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

export function b64url(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64url'));
}

export function readJson<T = any>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** Every *.json file under dir, as paths relative to dir, sorted. */
export function listJson(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.json')) out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** A JWK-ish key from cose-wg/Examples: base64url fields or their *_hex twins. */
export interface ExampleKey {
  kty: string;
  crv?: string;
  x?: string;
  y?: string;
  d?: string;
  k?: string;
  x_hex?: string;
  y_hex?: string;
  d_hex?: string;
  k_hex?: string;
}

export function keyField(key: ExampleKey, name: 'x' | 'y' | 'd' | 'k'): Uint8Array {
  const b = key[name];
  if (b !== undefined) return b64url(b);
  const h = key[`${name}_hex`];
  if (h !== undefined) return hex(h);
  throw new Error(`key has no ${name}`);
}

/** PROTOCOL.md §1 raw public key of an example key. */
export function rawPublicKey(key: ExampleKey): Uint8Array {
  if (key.kty === 'OKP') return keyField(key, 'x');
  const out = new Uint8Array(65);
  out[0] = 4;
  out.set(keyField(key, 'x'), 1);
  out.set(keyField(key, 'y'), 33);
  return out;
}
