import * as fs from 'node:fs';
import { writeFileAtomic } from '../util/atomicFile';
import { UserInputError } from '../errors';

/**
 * The safetensors format (github.com/huggingface/safetensors): an 8-byte little-endian header length, a JSON
 * header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the raw little-endian data.
 * Written here rather than taken from npm because the format is this small and the npm packages that claim it
 * are unmaintained placeholders.
 */

export interface NamedArray {
  shape: number[];
  /** Values as float32 (float16 and bfloat16 are widened on read), or int32 for integer tensors. */
  data: Float32Array | Int32Array;
}

export type TensorMap = Map<string, NamedArray>;

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** An IEEE half-precision float's bits as a number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round-to-nearest-even float32 -> float16 bits. */
function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  e = half >> 10;
  return sign | half;
}

function decode(entry: HeaderEntry, bytes: Uint8Array, name: string, file: string): NamedArray {
  const [start, end] = Array.isArray(entry?.data_offsets) ? entry.data_offsets : [NaN, NaN];
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || !Array.isArray(entry.shape)) {
    throw new UserInputError(`tensor ${name}: corrupt header entry (data_offsets ${JSON.stringify(entry?.data_offsets)})`, { file });
  }
  if (end > bytes.length) {
    throw new UserInputError(`truncated: tensor ${name} needs bytes ${start}..${end} of the data, which has only ${bytes.length} (the file was cut short)`, { file });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, end - start);
  const count = entry.shape.reduce((a, b) => a * b, 1);
  const width: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, F64: 8, U8: 1, I8: 1, BOOL: 1 };
  if (!(entry.dtype in width)) throw new UserInputError(`tensor ${name}: unsupported dtype ${entry.dtype}`, { file });
  if (count * width[entry.dtype] !== end - start) {
    throw new UserInputError(`tensor ${name}: ${end - start} bytes do not match shape [${entry.shape}] of ${entry.dtype}`, { file });
  }
  switch (entry.dtype) {
    case 'F32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      return { shape: entry.shape, data: out };
    }
    case 'F64': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      return { shape: entry.shape, data: out };
    }
    case 'F16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      return { shape: entry.shape, data: out };
    }
    case 'BF16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        u32[0] = view.getUint16(i * 2, true) << 16;
        out[i] = f32[0];
      }
      return { shape: entry.shape, data: out };
    }
    case 'I64': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(view.getBigInt64(i * 8, true));
      return { shape: entry.shape, data: out };
    }
    case 'I32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
      return { shape: entry.shape, data: out };
    }
    default: {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = entry.dtype === 'I8' ? view.getInt8(i) : view.getUint8(i);
      return { shape: entry.shape, data: out };
    }
  }
}

export interface SafetensorsFile {
  tensors: TensorMap;
  metadata: Record<string, string>;
}

export function readSafetensors(file: string): SafetensorsFile {
  if (!fs.existsSync(file)) throw new UserInputError('file not found', { file });
  return parseSafetensors(fs.readFileSync(file), file);
}

/** Parses the bytes of a safetensors file; `file` names it in errors. Every tensor's bytes are checked to be there. */
export function parseSafetensors(bytes: Buffer, file: string): SafetensorsFile {
  if (bytes.length === 0) throw new UserInputError('not a safetensors file (empty)', { file });
  if (bytes.length < 8) throw new UserInputError('not a safetensors file (too short)', { file });
  const headerLen = Number(bytes.readBigUInt64LE(0));
  if (headerLen <= 0 || 8 + headerLen > bytes.length) throw new UserInputError('not a safetensors file (bad header length)', { file });
  let header: Record<string, HeaderEntry | Record<string, string>>;
  try {
    header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8'));
  } catch {
    throw new UserInputError('not a safetensors file (header is not JSON)', { file });
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new UserInputError('not a safetensors file (header is not an object)', { file });
  const data = bytes.subarray(8 + headerLen);
  const tensors: TensorMap = new Map();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    tensors.set(name, decode(entry as HeaderEntry, data, name, file));
  }
  return { tensors, metadata };
}

export interface WriteOptions {
  metadata?: Record<string, string>;
  /** Store float tensors as float16 (half the size; used for the shipped built-in model). */
  float16?: boolean;
}

/** Writes tensors (sorted by name, as the Python library does) atomically. */
export function writeSafetensors(file: string, tensors: TensorMap, options: WriteOptions = {}): void {
  writeFileAtomic(file, encodeSafetensors(tensors, options));
}

/** The bytes of a safetensors file holding `tensors`. */
export function encodeSafetensors(tensors: TensorMap, options: WriteOptions = {}): Buffer {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  let offset = 0;
  const parts: { name: string; arr: NamedArray; dtype: string; bytes: number }[] = [];
  for (const name of names) {
    const arr = tensors.get(name)!;
    const isInt = arr.data instanceof Int32Array;
    const dtype = isInt ? 'I32' : options.float16 ? 'F16' : 'F32';
    const bytes = arr.data.length * (dtype === 'F16' ? 2 : 4);
    header[name] = { dtype, shape: arr.shape, data_offsets: [offset, offset + bytes] };
    parts.push({ name, arr, dtype, bytes });
    offset += bytes;
  }
  let headerJson = JSON.stringify(header);
  // Pad the header with spaces to a multiple of 8 bytes, as the reference writer does (aligned data).
  const rawLen = Buffer.byteLength(headerJson);
  headerJson += ' '.repeat((8 - (rawLen % 8)) % 8);
  const headerBytes = Buffer.from(headerJson, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const { arr, dtype } of parts) {
    if (dtype === 'F16') {
      for (let i = 0; i < arr.data.length; i++, pos += 2) out.writeUInt16LE(floatToHalf(arr.data[i]), pos);
    } else if (dtype === 'I32') {
      for (let i = 0; i < arr.data.length; i++, pos += 4) out.writeInt32LE(arr.data[i], pos);
    } else {
      for (let i = 0; i < arr.data.length; i++, pos += 4) out.writeFloatLE(arr.data[i], pos);
    }
  }
  return out;
}
