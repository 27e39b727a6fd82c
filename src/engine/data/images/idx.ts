import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { UserInputError } from '../../errors';

/**
 * IDX files, the format of MNIST and Fashion-MNIST (yann.lecun.com/exdb/mnist): two zero bytes, a type byte, the
 * number of dimensions, each dimension as a big-endian 32-bit integer, then the values, big-endian. Files may be
 * gzipped (as distributed); gzip is recognised by its magic bytes, not by the name.
 */

export interface IdxArray {
  /** Dimensions, outermost first: [N] for labels, [N, H, W] (or [N, H, W, C]) for images. */
  shape: number[];
  /** Values widened to float64 (unsigned bytes stay 0..255). */
  data: Float64Array;
}

const TYPES: Record<number, { name: string; bytes: number; read: (b: Buffer, o: number) => number }> = {
  0x08: { name: 'unsigned byte', bytes: 1, read: (b, o) => b.readUInt8(o) },
  0x09: { name: 'signed byte', bytes: 1, read: (b, o) => b.readInt8(o) },
  0x0b: { name: 'short', bytes: 2, read: (b, o) => b.readInt16BE(o) },
  0x0c: { name: 'int', bytes: 4, read: (b, o) => b.readInt32BE(o) },
  0x0d: { name: 'float', bytes: 4, read: (b, o) => b.readFloatBE(o) },
  0x0e: { name: 'double', bytes: 8, read: (b, o) => b.readDoubleBE(o) },
};

export function readIdx(file: string): IdxArray {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new UserInputError(`cannot read the IDX file: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (err as Error).message}`, { file });
  }
  return parseIdx(bytes, file);
}

/** Parses IDX bytes (gzipped or not); `file` names the file in errors. */
export function parseIdx(raw: Buffer, file: string): IdxArray {
  let bytes = raw;
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      bytes = zlib.gunzipSync(raw);
    } catch (err) {
      throw new UserInputError(`not a readable gzip file (${(err as Error).message}); a truncated download?`, { file });
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new UserInputError('not an IDX file (it must start with two zero bytes, a type byte and the number of dimensions)', { file });
  const type = TYPES[bytes[2]];
  if (!type) throw new UserInputError(`not an IDX file: unknown value type 0x${bytes[2].toString(16).padStart(2, '0')}`, { file });
  const rank = bytes[3];
  if (rank === 0) throw new UserInputError('IDX file with zero dimensions', { file });
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) throw new UserInputError(`IDX header cut short: ${rank} dimensions need ${headerBytes} bytes, the file has ${bytes.length}`, { file });
  const shape = [...Array(rank).keys()].map((i) => bytes.readUInt32BE(4 + 4 * i));
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = headerBytes + count * type.bytes;
  if (bytes.length !== expected) {
    throw new UserInputError(
      `IDX file of ${bytes.length} bytes, but its header (${shape.join(' x ')} values of type ${type.name}) needs ${expected}: ${bytes.length < expected ? 'truncated' : 'trailing bytes'}`,
      { file },
    );
  }
  const data = new Float64Array(count);
  if (type.bytes === 1 && bytes[2] === 0x08) for (let i = 0; i < count; i++) data[i] = bytes[headerBytes + i];
  else for (let i = 0; i < count; i++) data[i] = type.read(bytes, headerBytes + i * type.bytes);
  return { shape, data };
}

/** IDX bytes of unsigned-byte values (for tests and the examples' conversion scripts). */
export function encodeIdxUint8(shape: number[], values: ArrayLike<number>): Buffer {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header[2] = 0x08;
  header[3] = shape.length;
  shape.forEach((n, i) => header.writeUInt32BE(n, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(Uint8Array.from(values))]);
}
