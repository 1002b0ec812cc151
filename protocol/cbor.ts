/**
 * CBOR (RFC 8949) for the wire contract: a deterministic encoder (§4.2.1: preferred
 * serialisation, definite lengths, map keys sorted by their encoded bytes) and a strict,
 * bounded decoder for untrusted input.
 *
 * Why not cbor-x on this path: it tags Uint8Array as tag 64 unless told otherwise (which
 * silently changes what gets signed), it keeps map insertion order instead of sorting keys,
 * and its decoder sizes arrays from the header before it knows the bytes are there. This
 * decoder never allocates more than the input can justify: every declared length is checked
 * against the bytes remaining before anything is built. cbor-x is kept as an independent
 * cross-check in the property tests.
 */
import { EdgegwError } from '../common/errors.js';

/** A CBOR tag and its content (major type 6). */
export class Tagged {
  constructor(
    readonly tag: number,
    readonly value: unknown,
  ) {}
}

/**
 * A float as read with `{ floats: 'wrapped' }`. A JavaScript number cannot tell 1.0 from 1, so
 * a parser that wants an integer (PROTOCOL.md's uint fields, COSE labels and algs) would
 * otherwise take an integral float for one. Encoded, it stays a float (the shortest width
 * that keeps its value), so a decoded value re-encodes as it was read.
 */
export class CborFloat {
  constructor(readonly value: number) {}
  valueOf(): number {
    return this.value;
  }
  toJSON(): number {
    return this.value;
  }
}

export interface DecodeLimits {
  /** Largest input accepted, in bytes. */
  maxBytes: number;
  /** Deepest nesting of arrays, maps and tags. */
  maxDepth: number;
  /** Most data items in the whole input. */
  maxItems: number;
}

export const DEFAULT_DECODE_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxBytes: 64 * 1024,
  maxDepth: 16,
  maxItems: 8192,
});

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** Limits, and how floats are returned: as numbers (the default) or as CborFloat. */
export interface DecodeOptions extends Partial<DecodeLimits> {
  floats?: 'number' | 'wrapped';
}

class Reader {
  pos = 0;
  items = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly view: DataView,
    readonly limits: DecodeLimits,
    readonly wrapFloats: boolean,
  ) {}
}

function malformed(detail: string): EdgegwError {
  return new EdgegwError('EDGEGW_CBOR_MALFORMED', `malformed CBOR: ${detail}`);
}

function need(r: Reader, n: number): void {
  if (n > r.buf.length - r.pos) throw malformed('truncated');
}

/** Reads the argument of an initial byte; returns -1 for indefinite length (ai 31). */
function readArgument(r: Reader, ai: number): number | bigint {
  if (ai < 24) return ai;
  switch (ai) {
    case 24: {
      need(r, 1);
      return r.buf[r.pos++]!;
    }
    case 25: {
      need(r, 2);
      const v = r.view.getUint16(r.pos);
      r.pos += 2;
      return v;
    }
    case 26: {
      need(r, 4);
      const v = r.view.getUint32(r.pos);
      r.pos += 4;
      return v;
    }
    case 27: {
      need(r, 8);
      const v = r.view.getBigUint64(r.pos);
      r.pos += 8;
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    case 31:
      return -1;
    default:
      throw malformed(`reserved additional information ${ai}`);
  }
}

/** A length that must fit in the remaining input; anything larger cannot be honest. */
function readLength(r: Reader, ai: number, minBytesPerUnit: number): number {
  const len = readArgument(r, ai);
  if (typeof len === 'bigint' || len * minBytesPerUnit > r.buf.length - r.pos) throw malformed('length exceeds input');
  return len;
}

function countItem(r: Reader): void {
  if (++r.items > r.limits.maxItems) throw new EdgegwError('EDGEGW_CBOR_LIMIT', 'too many CBOR data items');
}

function readChunks(r: Reader, major: number, depth: number): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    need(r, 1);
    const ib = r.buf[r.pos]!;
    if (ib === 0xff) {
      r.pos++;
      break;
    }
    if (ib >> 5 !== major || (ib & 31) === 31) throw malformed('bad chunk in indefinite-length string');
    const chunk = readItem(r, depth + 1) as Uint8Array | string;
    const bytes = typeof chunk === 'string' ? utf8Encoder.encode(chunk) : chunk;
    chunks.push(bytes);
    total += bytes.length;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

function decodeHalf(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  let val: number;
  if (exp === 0) val = mant * 2 ** -24;
  else if (exp !== 31) val = (mant + 1024) * 2 ** (exp - 25);
  else val = mant === 0 ? Infinity : NaN;
  return h & 0x8000 ? -val : val;
}

function readItem(r: Reader, depth: number): unknown {
  if (depth > r.limits.maxDepth) throw new EdgegwError('EDGEGW_CBOR_LIMIT', 'CBOR nesting too deep');
  countItem(r);
  need(r, 1);
  const ib = r.buf[r.pos++]!;
  const major = ib >> 5;
  const ai = ib & 31;
  switch (major) {
    case 0: {
      if (ai === 31) throw malformed('indefinite length on an integer');
      return readArgument(r, ai);
    }
    case 1: {
      if (ai === 31) throw malformed('indefinite length on an integer');
      const n = readArgument(r, ai);
      if (typeof n === 'bigint') return -1n - n;
      const v = -1 - n;
      return Number.isSafeInteger(v) ? v : -1n - BigInt(n);
    }
    case 2:
    case 3: {
      let bytes: Uint8Array;
      if (ai === 31) bytes = readChunks(r, major, depth);
      else {
        const len = readLength(r, ai, 1);
        bytes = r.buf.subarray(r.pos, r.pos + len);
        r.pos += len;
      }
      if (major === 2) return bytes;
      try {
        return utf8.decode(bytes);
      } catch (err) {
        throw new EdgegwError('EDGEGW_CBOR_MALFORMED', 'malformed CBOR: text string is not valid UTF-8', { cause: err });
      }
    }
    case 4: {
      const out: unknown[] = [];
      if (ai === 31) {
        for (;;) {
          need(r, 1);
          if (r.buf[r.pos] === 0xff) {
            r.pos++;
            return out;
          }
          out.push(readItem(r, depth + 1));
        }
      }
      const len = readLength(r, ai, 1);
      for (let i = 0; i < len; i++) out.push(readItem(r, depth + 1));
      return out;
    }
    case 5: {
      const out = new Map<unknown, unknown>();
      // Float keys read as CborFloat are distinct objects: their duplicates are found by value.
      let floatKeys: Set<string> | undefined;
      const put = (): void => {
        const key = readItem(r, depth + 1);
        if (key instanceof CborFloat) {
          const id = Object.is(key.value, -0) ? '-0' : String(key.value);
          floatKeys ??= new Set();
          if (floatKeys.has(id)) throw malformed('duplicate map key');
          floatKeys.add(id);
        } else {
          if (key !== null && typeof key === 'object') throw malformed('map key must be an integer, string or simple value');
          if (out.has(key)) throw malformed('duplicate map key');
        }
        out.set(key, readItem(r, depth + 1));
      };
      if (ai === 31) {
        for (;;) {
          need(r, 1);
          if (r.buf[r.pos] === 0xff) {
            r.pos++;
            return out;
          }
          put();
        }
      }
      const len = readLength(r, ai, 2);
      for (let i = 0; i < len; i++) put();
      return out;
    }
    case 6: {
      if (ai === 31) throw malformed('indefinite length on a tag');
      const tag = readArgument(r, ai);
      if (typeof tag === 'bigint') throw malformed('tag number too large');
      return new Tagged(tag, readItem(r, depth + 1));
    }
    default: {
      // major 7: simple values and floats
      switch (ai) {
        case 20:
          return false;
        case 21:
          return true;
        case 22:
          return null;
        case 23:
          return undefined;
        case 25: {
          need(r, 2);
          const v = decodeHalf(r.view.getUint16(r.pos));
          r.pos += 2;
          return r.wrapFloats ? new CborFloat(v) : v;
        }
        case 26: {
          need(r, 4);
          const v = r.view.getFloat32(r.pos);
          r.pos += 4;
          return r.wrapFloats ? new CborFloat(v) : v;
        }
        case 27: {
          need(r, 8);
          const v = r.view.getFloat64(r.pos);
          r.pos += 8;
          return r.wrapFloats ? new CborFloat(v) : v;
        }
        case 31:
          throw malformed('unexpected break');
        default:
          throw malformed(`unsupported simple value ${ai}`);
      }
    }
  }
}

/**
 * Decodes exactly one CBOR data item that spans the whole input. Throws only
 * `EdgegwError` with code EDGEGW_CBOR_MALFORMED or EDGEGW_CBOR_LIMIT.
 * Byte strings are returned as views into `bytes`: do not mutate the input afterwards.
 */
export function decode(bytes: Uint8Array, limits: DecodeOptions = {}): unknown {
  // Field by field with ??, so that `{ maxDepth: undefined }` keeps the default instead of lifting the limit.
  const lim: DecodeLimits =
    limits === DEFAULT_DECODE_LIMITS
      ? DEFAULT_DECODE_LIMITS
      : {
          maxBytes: limits.maxBytes ?? DEFAULT_DECODE_LIMITS.maxBytes,
          maxDepth: limits.maxDepth ?? DEFAULT_DECODE_LIMITS.maxDepth,
          maxItems: limits.maxItems ?? DEFAULT_DECODE_LIMITS.maxItems,
        };
  if (!(bytes instanceof Uint8Array)) throw malformed('input is not a byte array');
  if (bytes.length > lim.maxBytes) throw new EdgegwError('EDGEGW_CBOR_LIMIT', `CBOR input of ${bytes.length} bytes exceeds ${lim.maxBytes}`);
  if (bytes.length === 0) throw malformed('empty input');
  const r = new Reader(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), lim, limits.floats === 'wrapped');
  const value = readItem(r, 0);
  if (r.pos !== bytes.length) throw malformed(`${bytes.length - r.pos} trailing bytes`);
  return value;
}

// ---------------------------------------------------------------------------------------
// Deterministic encoder (RFC 8949 §4.2.1)

class Writer {
  buf = new Uint8Array(256);
  view = new DataView(this.buf.buffer);
  len = 0;

  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  head(major: number, n: number | bigint): void {
    const m = major << 5;
    if (typeof n === 'bigint') {
      if (n > 0xffffffffffffffffn) throw new EdgegwError('EDGEGW_CBOR_UNSUPPORTED', 'integer exceeds 64 bits');
      if (n <= BigInt(Number.MAX_SAFE_INTEGER)) return this.head(major, Number(n));
      this.ensure(9);
      this.buf[this.len++] = m | 27;
      this.view.setBigUint64(this.len, n);
      this.len += 8;
      return;
    }
    this.ensure(9);
    if (n < 24) this.buf[this.len++] = m | n;
    else if (n < 0x100) {
      this.buf[this.len++] = m | 24;
      this.buf[this.len++] = n;
    } else if (n < 0x10000) {
      this.buf[this.len++] = m | 25;
      this.view.setUint16(this.len, n);
      this.len += 2;
    } else if (n < 0x100000000) {
      this.buf[this.len++] = m | 26;
      this.view.setUint32(this.len, n);
      this.len += 4;
    } else {
      this.buf[this.len++] = m | 27;
      this.view.setBigUint64(this.len, BigInt(n));
      this.len += 8;
    }
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

const f32 = new Float32Array(1);

function encodeFloat(w: Writer, v: number): void {
  // Preferred serialisation: the shortest of half, single, double that keeps the value.
  if (Number.isNaN(v)) {
    w.byte(0xf9);
    w.byte(0x7e);
    w.byte(0x00);
    return;
  }
  const half = toHalf(v);
  if (half !== undefined) {
    w.ensure(3);
    w.buf[w.len++] = 0xf9;
    w.view.setUint16(w.len, half);
    w.len += 2;
    return;
  }
  f32[0] = v;
  if (f32[0] === v) {
    w.ensure(5);
    w.buf[w.len++] = 0xfa;
    w.view.setFloat32(w.len, v);
    w.len += 4;
    return;
  }
  w.ensure(9);
  w.buf[w.len++] = 0xfb;
  w.view.setFloat64(w.len, v);
  w.len += 8;
}

/** The half-precision bit pattern of v when it is exact, else undefined. */
function toHalf(v: number): number | undefined {
  if (v === Infinity) return 0x7c00;
  if (v === -Infinity) return 0xfc00;
  if (Object.is(v, -0)) return 0x8000;
  if (v === 0) return 0;
  const sign = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  for (let exp = 1; exp < 31; exp++) {
    const mant = a / 2 ** (exp - 25) - 1024;
    if (mant >= 0 && mant < 1024 && Number.isInteger(mant)) return sign | (exp << 10) | mant;
  }
  const sub = a / 2 ** -24;
  if (sub < 1024 && Number.isInteger(sub)) return sign | sub;
  return undefined;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function encodeInto(w: Writer, v: unknown, depth: number): void {
  if (depth > 64) throw new EdgegwError('EDGEGW_CBOR_UNSUPPORTED', 'value nested too deeply to encode');
  switch (typeof v) {
    case 'number':
      // -0 is a float: as an integer it would lose its sign (RFC 8949 Appendix A: -0.0 is 0xf98000).
      if (Object.is(v, -0)) encodeFloat(w, v);
      else if (Number.isSafeInteger(v)) {
        if (v >= 0) w.head(0, v);
        else w.head(1, -1 - v);
      } else if (Number.isInteger(v) && Math.abs(v) < 2 ** 64) {
        encodeInto(w, BigInt(v), depth);
      } else encodeFloat(w, v);
      return;
    case 'bigint':
      if (v >= 0n) w.head(0, v);
      else w.head(1, -1n - v);
      return;
    case 'string': {
      const b = utf8Encoder.encode(v);
      w.head(3, b.length);
      w.bytes(b);
      return;
    }
    case 'boolean':
      w.byte(v ? 0xf5 : 0xf4);
      return;
    case 'undefined':
      w.byte(0xf7);
      return;
    case 'object': {
      if (v === null) {
        w.byte(0xf6);
        return;
      }
      if (v instanceof Uint8Array) {
        w.head(2, v.length);
        w.bytes(v);
        return;
      }
      if (Array.isArray(v)) {
        w.head(4, v.length);
        for (const item of v) encodeInto(w, item, depth + 1);
        return;
      }
      if (v instanceof Tagged) {
        w.head(6, v.tag);
        encodeInto(w, v.value, depth + 1);
        return;
      }
      if (v instanceof CborFloat) {
        encodeFloat(w, v.value);
        return;
      }
      // Only a Map or a plain object is a map: anything else (a Date, an ArrayBuffer, another
      // typed array) would silently become the map of its enumerable properties.
      const proto: unknown = Object.getPrototypeOf(v);
      if (!(v instanceof Map) && proto !== Object.prototype && proto !== null) {
        throw new EdgegwError('EDGEGW_CBOR_UNSUPPORTED', `cannot encode a ${(v as object).constructor?.name ?? 'non-plain object'}`);
      }
      const entries: [unknown, unknown][] = v instanceof Map ? [...v.entries()] : Object.entries(v);
      const encoded = entries.map(([k, val]) => {
        const kw = new Writer();
        encodeInto(kw, k, depth + 1);
        return { key: kw.result(), val };
      });
      encoded.sort((a, b) => compareBytes(a.key, b.key));
      w.head(5, encoded.length);
      for (let i = 0; i < encoded.length; i++) {
        const e = encoded[i]!;
        if (i > 0 && compareBytes(encoded[i - 1]!.key, e.key) === 0) {
          throw new EdgegwError('EDGEGW_CBOR_UNSUPPORTED', 'duplicate map key');
        }
        w.bytes(e.key);
        encodeInto(w, e.val, depth + 1);
      }
      return;
    }
    default:
      throw new EdgegwError('EDGEGW_CBOR_UNSUPPORTED', `cannot encode a ${typeof v}`);
  }
}

/** Encodes a value as deterministic CBOR. Maps may be `Map`s or plain objects. */
export function encode(value: unknown): Uint8Array {
  const w = new Writer();
  encodeInto(w, value, 0);
  return w.result();
}

// ---------------------------------------------------------------------------------------
// Diagnostic notation (RFC 8949 §8), for documentation and tools

/**
 * The diagnostic notation of a decoded value. JavaScript numbers do not remember whether the
 * wire held an integer or a float, so an integral float prints as an integer ("1", not "1.0").
 */
export function diagnose(value: unknown): string {
  switch (typeof value) {
    case 'number':
      return Object.is(value, -0) ? '-0.0' : String(value);
    case 'bigint':
    case 'boolean':
      return String(value);
    case 'string':
      return JSON.stringify(value);
    case 'undefined':
      return 'undefined';
    default:
      if (value === null) return 'null';
      if (value instanceof Uint8Array) return `h'${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}'`;
      if (Array.isArray(value)) return `[${value.map(diagnose).join(', ')}]`;
      if (value instanceof Tagged) return `${value.tag}(${diagnose(value.value)})`;
      if (value instanceof CborFloat) return Number.isInteger(value.value) && !Object.is(value.value, -0) ? value.value.toFixed(1) : diagnose(value.value);
      if (value instanceof Map) return `{${[...value].map(([k, v]) => `${diagnose(k)}: ${diagnose(v)}`).join(', ')}}`;
      if (typeof value === 'object') return diagnose(new Map(Object.entries(value)));
      throw new EdgegwError('EDGEGW_CBOR_UNSUPPORTED', `no diagnostic notation for a ${typeof value}`);
  }
}
