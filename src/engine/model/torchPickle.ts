import * as fs from 'node:fs';
import { writeFileAtomic } from '../util/atomicFile';
import { UserInputError } from '../errors';
import { halfToFloat, NamedArray, TensorMap } from './safetensors';
import { crc32 } from '../util/crc32';

/**
 * PyTorch's own checkpoint format, the one `torch.save(state_dict, f)` writes since PyTorch 1.6 and
 * `torch.load(f, weights_only=True)` reads (AdapterHub's `pytorch_adapter.bin`, `pytorch_model_head.bin`,
 * `pytorch_model_adapter_fusion.bin`): an uncompressed zip whose entries share one top folder,
 *   <top>/data.pkl     a pickle (protocol 2) of the dict; each tensor is
 *                      torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks), the
 *                      storage a persistent id ('storage', torch.FloatStorage, key, 'cpu', numel)
 *   <top>/data/<key>   each storage's raw little-endian values
 *   <top>/version      "3\n"
 *
 * The reader is a restricted unpickler: it knows the opcodes and globals a state dict of tensors needs and
 * nothing else. A pickle can name any Python callable; this one never calls any: every global is looked up in
 * a fixed table of what a tensor dict uses (OrderedDict, _rebuild_tensor_v2, the storage classes) and any
 * other is refused with a message naming it.
 */

// ---------------------------------------------------------------------------------------------
// zip (stored entries only: torch.save never compresses)

/** An uncompressed zip; each entry's data starts on a 64-byte boundary, as torch aligns it (padding in an extra field). */
function writeZip(entries: { name: string; data: Uint8Array }[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const crc = crc32(e.data);
    const headerEnd = offset + 30 + name.length;
    // Extra field: id 'FB' (torch's), 2-byte length, padding; at least 4 bytes when present.
    const pad = (64 - ((headerEnd + 4) % 64)) % 64;
    const extra = Buffer.alloc(4 + pad, 'Z'.charCodeAt(0));
    extra.writeUInt16LE(0x4246, 0);
    extra.writeUInt16LE(pad, 2);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt32LE(0, 10); // time, date
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(e.data.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(extra.length, 28);
    parts.push(local, name, extra, Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength));
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(0x0800, 8);
    cd.writeUInt16LE(0, 10);
    cd.writeUInt32LE(0, 12);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(e.data.length, 20);
    cd.writeUInt32LE(e.data.length, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, name);
    offset += 30 + name.length + extra.length + e.data.length;
  }
  const cdSize = central.reduce((s, b) => s + b.length, 0);
  if (offset + cdSize > 0xffffffff) throw new Error('torch .bin writer: over 4 GiB (zip64) is not supported');
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, ...central, end]);
}

/** The entries of a zip, by name (stored entries only; sizes from the central directory, as torch writes data descriptors). */
function readZip(buf: Buffer, file: string): Map<string, Buffer> {
  const fail = (why: string) => new UserInputError(`not a PyTorch checkpoint this tool can read: ${why}`, { file });
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw fail('no zip directory (a truncated file?)');
  let count = buf.readUInt16LE(eocd + 10);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if (cdOffset === 0xffffffff || count === 0xffff) {
    // zip64: the zip64 end record sits before its locator, which sits before the end record.
    const locator = eocd - 20;
    if (locator < 0 || buf.readUInt32LE(locator) !== 0x07064b50) throw fail('a zip64 file without its locator');
    const z64 = Number(buf.readBigUInt64LE(locator + 8));
    count = Number(buf.readBigUInt64LE(z64 + 32));
    cdOffset = Number(buf.readBigUInt64LE(z64 + 48));
  }
  const out = new Map<string, Buffer>();
  let p = cdOffset;
  for (let n = 0; n < count; n++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) throw fail('a damaged zip directory');
    const method = buf.readUInt16LE(p + 10);
    let size = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    let local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    if (size === 0xffffffff || local === 0xffffffff) {
      // zip64 extended information: the 64-bit values of the fields set to 0xffffffff, in order.
      let e = p + 46 + nameLen;
      const extraEnd = e + extraLen;
      while (e + 4 <= extraEnd) {
        const id = buf.readUInt16LE(e);
        const len = buf.readUInt16LE(e + 2);
        if (id === 0x0001) {
          let q = e + 4;
          if (buf.readUInt32LE(p + 24) === 0xffffffff) q += 8; // uncompressed size comes first
          if (size === 0xffffffff) size = Number(buf.readBigUInt64LE(q)), (q += 8);
          if (local === 0xffffffff) local = Number(buf.readBigUInt64LE(q));
        }
        e += 4 + len;
      }
    }
    if (method !== 0) throw fail(`the entry ${name} is compressed (method ${method}); torch.save stores entries uncompressed`);
    if (buf.readUInt32LE(local) !== 0x04034b50) throw fail(`a damaged zip entry ${name}`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    if (start + size > buf.length) throw fail(`the entry ${name} runs past the end of the file (truncated?)`);
    out.set(name, buf.subarray(start, start + size));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// writing

/** Pickle opcodes (Python's pickle.py names). */
const OP = {
  PROTO: 0x80,
  STOP: 0x2e,
  MARK: 0x28,
  GLOBAL: 0x63,
  EMPTY_DICT: 0x7d,
  EMPTY_TUPLE: 0x29,
  EMPTY_LIST: 0x5d,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  REDUCE: 0x52,
  BUILD: 0x62,
  SETITEM: 0x73,
  SETITEMS: 0x75,
  APPEND: 0x61,
  APPENDS: 0x65,
  BINUNICODE: 0x58,
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINSTRING: 0x54,
  SHORT_BINSTRING: 0x55,
  BININT: 0x4a,
  BININT1: 0x4b,
  BININT2: 0x4d,
  LONG1: 0x8a,
  BINFLOAT: 0x47,
  NONE: 0x4e,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  BINPERSID: 0x51,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  MEMOIZE: 0x94,
  BINGET: 0x68,
  LONG_BINGET: 0x6a,
  FRAME: 0x95,
  STACK_GLOBAL: 0x93,
  NEWOBJ: 0x81,
} as const;

class PickleWriter {
  private chunks: number[] = [];
  op(code: number): this {
    this.chunks.push(code);
    return this;
  }
  bytes(b: Uint8Array): this {
    for (const x of b) this.chunks.push(x);
    return this;
  }
  global(module: string, name: string): this {
    return this.op(OP.GLOBAL).bytes(Buffer.from(`${module}\n${name}\n`, 'ascii'));
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return this.op(OP.BINUNICODE).bytes(len).bytes(b);
  }
  int(n: number): this {
    if (!Number.isSafeInteger(n)) throw new Error(`pickle writer: ${n} is not an integer`);
    if (n >= 0 && n < 256) return this.op(OP.BININT1).op(n);
    if (n >= 0 && n < 65536) return this.op(OP.BININT2).op(n & 0xff).op(n >> 8);
    if (n >= -0x80000000 && n <= 0x7fffffff) {
      const b = Buffer.alloc(4);
      b.writeInt32LE(n);
      return this.op(OP.BININT).bytes(b);
    }
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(n));
    return this.op(OP.LONG1).op(8).bytes(b);
  }
  tuple(items: number[]): this {
    if (items.length === 0) return this.op(OP.EMPTY_TUPLE);
    if (items.length <= 3) {
      for (const x of items) this.int(x);
      return this.op([OP.TUPLE1, OP.TUPLE2, OP.TUPLE3][items.length - 1]);
    }
    this.op(OP.MARK);
    for (const x of items) this.int(x);
    return this.op(OP.TUPLE);
  }
  done(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

function contiguousStrides(shape: number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

/**
 * The bytes `torch.save(OrderedDict(tensors))` writes for float32 tensors, in the map's order (`archive` as the
 * top folder, as torch >= 2 names it; older torch used the file's stem, and readers accept any).
 */
export function torchSaveBytes(tensors: TensorMap): Buffer {
  const w = new PickleWriter();
  w.op(OP.PROTO).op(2);
  w.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE).op(OP.REDUCE);
  const storages: Uint8Array[] = [];
  let i = 0;
  for (const [name, arr] of tensors) {
    if (!(arr.data instanceof Float32Array)) throw new Error(`torch .bin writer: ${name} is not a float32 tensor`);
    if (i % 1000 === 0) w.op(OP.MARK); // pickle's batches of SETITEMS
    const key = String(storages.length);
    storages.push(new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength));
    w.str(name);
    w.global('torch._utils', '_rebuild_tensor_v2');
    w.op(OP.MARK);
    // persistent id: ('storage', torch.FloatStorage, key, 'cpu', numel)
    w.op(OP.MARK).str('storage').global('torch', 'FloatStorage').str(key).str('cpu').int(arr.data.length).op(OP.TUPLE).op(OP.BINPERSID);
    w.int(0).tuple(arr.shape).tuple(contiguousStrides(arr.shape)).op(OP.NEWFALSE);
    w.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE).op(OP.REDUCE);
    w.op(OP.TUPLE).op(OP.REDUCE);
    i++;
    if (i % 1000 === 0) w.op(OP.SETITEMS);
  }
  if (i % 1000 !== 0) w.op(OP.SETITEMS);
  w.op(OP.STOP);
  if (!littleEndian()) throw new Error('torch .bin writer: this machine is big-endian');
  return writeZip([
    { name: 'archive/data.pkl', data: w.done() },
    { name: 'archive/byteorder', data: Buffer.from('little') },
    ...storages.map((data, k) => ({ name: `archive/data/${k}`, data })),
    { name: 'archive/version', data: Buffer.from('3\n') },
  ]);
}

function littleEndian(): boolean {
  return new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
}

export function writeTorchBin(file: string, tensors: TensorMap): void {
  writeFileAtomic(file, torchSaveBytes(tensors));
}

// ---------------------------------------------------------------------------------------------
// reading: a restricted unpickler

/** Bytes per element and decoder of each storage class a float state dict can hold (widened to float32). */
const STORAGES: Record<string, { width: number; read: (b: Buffer, i: number) => number }> = {
  FloatStorage: { width: 4, read: (b, i) => b.readFloatLE(i * 4) },
  DoubleStorage: { width: 8, read: (b, i) => b.readDoubleLE(i * 8) },
  HalfStorage: { width: 2, read: (b, i) => halfToFloat(b.readUInt16LE(i * 2)) },
  BFloat16Storage: { width: 2, read: (b, i) => bf16BitsToFloat(b.readUInt16LE(i * 2)) },
};


const bfBuf = new DataView(new ArrayBuffer(4));
function bf16BitsToFloat(h: number): number {
  bfBuf.setUint32(0, h << 16);
  return bfBuf.getFloat32(0);
}

/** What the unpickler builds: plain values, and the few objects a tensor dict is made of. */
type Value =
  | null
  | boolean
  | number
  | string
  | Value[]
  | { kind: 'tuple'; items: Value[] }
  | { kind: 'dict'; entries: Map<string, Value>; ordered: boolean }
  | { kind: 'global'; module: string; name: string }
  | { kind: 'storage'; storageClass: string; key: string; numel: number }
  | { kind: 'tensor'; array: NamedArray }
  | { kind: 'mark' };

/** The only globals a pickle may name, and what calling each means here. */
const ALLOWED_GLOBALS = new Set([
  'collections OrderedDict',
  'torch._utils _rebuild_tensor_v2',
  'torch._utils _rebuild_parameter',
  ...Object.keys(STORAGES).map((s) => `torch ${s}`),
]);

interface Ctx {
  file: string;
  storage(key: string, storageClass: string, numel: number): Buffer;
}

function tupleItems(v: Value, what: string, ctx: Ctx): Value[] {
  if (v && typeof v === 'object' && !Array.isArray(v) && v.kind === 'tuple') return v.items;
  throw refuse(`${what} is not a tuple`, ctx);
}

function refuse(why: string, ctx: Ctx): UserInputError {
  return new UserInputError(`refused to load: ${why}. Only a dict of tensors as torch.save writes it can be read (nothing in the file is run)`, { file: ctx.file });
}

function intOf(v: Value, what: string, ctx: Ctx): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw refuse(`${what} is not an integer`, ctx);
  return v;
}

function rebuildTensor(args: Value[], ctx: Ctx): Value {
  const [storage, offsetV, sizeV, strideV] = args;
  if (!storage || typeof storage !== 'object' || Array.isArray(storage) || storage.kind !== 'storage') throw refuse('a tensor without a storage', ctx);
  const offset = intOf(offsetV, 'a storage offset', ctx);
  const shape = tupleItems(sizeV, 'a tensor size', ctx).map((x) => intOf(x, 'a tensor size', ctx));
  const stride = tupleItems(strideV, 'a tensor stride', ctx).map((x) => intOf(x, 'a tensor stride', ctx));
  if (stride.length !== shape.length) throw refuse('a tensor whose size and stride differ in length', ctx);
  const { read } = STORAGES[storage.storageClass];
  const raw = ctx.storage(storage.key, storage.storageClass, storage.numel);
  const numel = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(numel);
  if (numel > 0) {
    let last = offset;
    for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * stride[d];
    if (offset < 0 || last >= storage.numel || stride.some((s) => s < 0)) throw refuse('a tensor that reaches outside its storage', ctx);
  }
  // Walks the index space in row-major order, following the strides (any view torch.save kept).
  const idx = new Array<number>(shape.length).fill(0);
  let src = offset;
  for (let n = 0; n < numel; n++) {
    data[n] = read(raw, src);
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d]++;
      src += stride[d];
      if (idx[d] < shape[d]) break;
      src -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return { kind: 'tensor', array: { shape, data } };
}

function callGlobal(fn: Value, args: Value, ctx: Ctx): Value {
  if (!fn || typeof fn !== 'object' || Array.isArray(fn) || fn.kind !== 'global') throw refuse('a call of something that is not a known function', ctx);
  const items = tupleItems(args, 'the arguments of a call', ctx);
  const name = `${fn.module}.${fn.name}`;
  switch (name) {
    case 'collections.OrderedDict':
      if (items.length !== 0) throw refuse('an OrderedDict built from arguments', ctx);
      return { kind: 'dict', entries: new Map(), ordered: true };
    case 'torch._utils._rebuild_tensor_v2':
      return rebuildTensor(items, ctx);
    case 'torch._utils._rebuild_parameter': {
      const t = items[0];
      if (!t || typeof t !== 'object' || Array.isArray(t) || t.kind !== 'tensor') throw refuse('a parameter without a tensor', ctx);
      return t;
    }
    default:
      throw refuse(`a call of ${name}`, ctx);
  }
}

/** Runs the pickle program's stack machine, building values only. */
function unpickle(bytes: Buffer, ctx: Ctx): Value {
  let pos = 0;
  const stack: Value[] = [];
  const memo = new Map<number, Value>();
  const MARK: Value = { kind: 'mark' };
  const need = (n: number) => {
    if (pos + n > bytes.length) throw refuse('the pickle ends early', ctx);
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), (pos += 2), bytes.readUInt16LE(pos - 2));
  const u32 = () => (need(4), (pos += 4), bytes.readUInt32LE(pos - 4));
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw refuse('the pickle ends early', ctx);
    const s = bytes.toString('utf8', pos, end);
    pos = end + 1;
    return s;
  };
  const pop = (): Value => {
    if (stack.length === 0) throw refuse('a malformed pickle (stack underflow)', ctx);
    return stack.pop()!;
  };
  const popMark = (): Value[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw refuse('a malformed pickle (no mark)', ctx);
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const top = (): Value => {
    if (stack.length === 0) throw refuse('a malformed pickle (stack underflow)', ctx);
    return stack[stack.length - 1];
  };
  const setItems = (dict: Value, items: Value[]) => {
    if (!dict || typeof dict !== 'object' || Array.isArray(dict) || dict.kind !== 'dict') throw refuse('items set on something that is not a dict', ctx);
    for (let i = 0; i + 1 < items.length; i += 2) {
      const k = items[i];
      if (typeof k !== 'string') throw refuse('a dict key that is not a string', ctx);
      dict.entries.set(k, items[i + 1]);
    }
  };
  const str = (n: number) => {
    need(n);
    pos += n;
    return bytes.toString('utf8', pos - n, pos);
  };
  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case OP.PROTO:
        if (u8() > 5) throw refuse('an unknown pickle protocol', ctx);
        break;
      case OP.FRAME:
        need(8);
        pos += 8;
        break;
      case OP.STOP:
        return pop();
      case OP.MARK:
        stack.push(MARK);
        break;
      case OP.GLOBAL: {
        const module = line();
        const name = line();
        if (!ALLOWED_GLOBALS.has(`${module} ${name}`)) throw refuse(`the pickle names ${module}.${name}, which is not part of a tensor dict`, ctx);
        stack.push({ kind: 'global', module, name });
        break;
      }
      case OP.STACK_GLOBAL: {
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string' || !ALLOWED_GLOBALS.has(`${module} ${name}`)) {
          throw refuse(`the pickle names ${String(module)}.${String(name)}, which is not part of a tensor dict`, ctx);
        }
        stack.push({ kind: 'global', module, name });
        break;
      }
      case OP.EMPTY_DICT:
        stack.push({ kind: 'dict', entries: new Map(), ordered: false });
        break;
      case OP.EMPTY_LIST:
        stack.push([]);
        break;
      case OP.EMPTY_TUPLE:
        stack.push({ kind: 'tuple', items: [] });
        break;
      case OP.TUPLE:
        stack.push({ kind: 'tuple', items: popMark() });
        break;
      case OP.TUPLE1:
      case OP.TUPLE2:
      case OP.TUPLE3: {
        const n = op - OP.TUPLE1 + 1;
        if (stack.length < n) throw refuse('a malformed pickle (stack underflow)', ctx);
        stack.push({ kind: 'tuple', items: stack.splice(stack.length - n) });
        break;
      }
      case OP.REDUCE: {
        const args = pop();
        stack.push(callGlobal(pop(), args, ctx));
        break;
      }
      case OP.NEWOBJ:
        throw refuse('an object built with NEWOBJ', ctx);
      case OP.BUILD: {
        // Only an OrderedDict's instance state (a state_dict's `_metadata`): kept out of the tensors.
        pop();
        const obj = top();
        if (!obj || typeof obj !== 'object' || Array.isArray(obj) || obj.kind !== 'dict') throw refuse('state set on something that is not a dict', ctx);
        break;
      }
      case OP.SETITEM: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case OP.SETITEMS: {
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case OP.APPEND: {
        const v = pop();
        const list = top();
        if (!Array.isArray(list)) throw refuse('append to something that is not a list', ctx);
        list.push(v);
        break;
      }
      case OP.APPENDS: {
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) throw refuse('append to something that is not a list', ctx);
        list.push(...items);
        break;
      }
      case OP.BINUNICODE:
        stack.push(str(u32()));
        break;
      case OP.SHORT_BINUNICODE:
        stack.push(str(u8()));
        break;
      case OP.BINUNICODE8: {
        need(8);
        const n = Number(bytes.readBigUInt64LE(pos));
        pos += 8;
        stack.push(str(n));
        break;
      }
      case OP.SHORT_BINSTRING:
        stack.push(str(u8()));
        break;
      case OP.BINSTRING:
        stack.push(str(u32()));
        break;
      case OP.BININT1:
        stack.push(u8());
        break;
      case OP.BININT2:
        stack.push(u16());
        break;
      case OP.BININT:
        need(4);
        pos += 4;
        stack.push(bytes.readInt32LE(pos - 4));
        break;
      case OP.LONG1: {
        const n = u8();
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[pos + i]);
        if (n > 0 && bytes[pos + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        pos += n;
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw refuse('an integer too large for a tensor size', ctx);
        stack.push(Number(v));
        break;
      }
      case OP.BINFLOAT:
        need(8);
        pos += 8;
        stack.push(bytes.readDoubleBE(pos - 8));
        break;
      case OP.NONE:
        stack.push(null);
        break;
      case OP.NEWTRUE:
        stack.push(true);
        break;
      case OP.NEWFALSE:
        stack.push(false);
        break;
      case OP.BINPERSID: {
        const pid = tupleItems(pop(), 'a persistent id', ctx);
        const [tag, cls, key, , numel] = pid;
        if (tag !== 'storage' || !cls || typeof cls !== 'object' || Array.isArray(cls) || cls.kind !== 'global' || cls.module !== 'torch' || !(cls.name in STORAGES)) {
          throw refuse('a persistent id that is not a float storage', ctx);
        }
        if (typeof key !== 'string') throw refuse('a storage key that is not a string', ctx);
        stack.push({ kind: 'storage', storageClass: cls.name, key, numel: intOf(numel, 'a storage size', ctx) });
        break;
      }
      case OP.BINPUT:
        memo.set(u8(), top());
        break;
      case OP.LONG_BINPUT:
        memo.set(u32(), top());
        break;
      case OP.MEMOIZE:
        memo.set(memo.size, top());
        break;
      case OP.BINGET:
      case OP.LONG_BINGET: {
        const k = op === OP.BINGET ? u8() : u32();
        if (!memo.has(k)) throw refuse('a malformed pickle (unknown memo entry)', ctx);
        stack.push(memo.get(k)!);
        break;
      }
      default:
        throw refuse(`the pickle opcode 0x${op.toString(16)} at byte ${at}, which a tensor dict does not use`, ctx);
    }
  }
}

/** True when the bytes start like a zip (torch.save since 1.6) rather than the legacy pickle stream. */
function isZip(buf: Buffer): boolean {
  return buf.length >= 4 && buf.readUInt32LE(0) === 0x04034b50;
}

/** Reads a `torch.save`d dict of float tensors (float16, bfloat16 and float64 widened or narrowed to float32). */
export function readTorchBin(file: string): TensorMap {
  if (!fs.existsSync(file)) throw new UserInputError('no such file', { file });
  const buf = fs.readFileSync(file);
  if (!isZip(buf)) {
    throw new UserInputError(
      'not a PyTorch zip checkpoint: it is either the legacy format of PyTorch before 1.6 or not a torch.save file; load it in Python and save it again with torch.save (or as safetensors)',
      { file },
    );
  }
  const entries = readZip(buf, file);
  const pkl = [...entries.keys()].find((n) => n.endsWith('/data.pkl') && n.split('/').length === 2);
  if (!pkl) throw new UserInputError('not a PyTorch checkpoint: no <folder>/data.pkl in the zip', { file });
  const top = pkl.slice(0, -'data.pkl'.length);
  const byteorder = entries.get(`${top}byteorder`);
  if (byteorder && byteorder.toString().trim() !== 'little') throw new UserInputError(`a ${byteorder.toString().trim()}-endian checkpoint; only little-endian is supported`, { file });
  const ctx: Ctx = {
    file,
    storage(key, storageClass, numel) {
      const raw = entries.get(`${top}data/${key}`);
      if (!raw) throw refuse(`the storage ${key} is missing from the zip`, ctx);
      if (raw.length < numel * STORAGES[storageClass].width) throw refuse(`the storage ${key} is shorter than its ${numel} elements`, ctx);
      return raw;
    },
  };
  const root = unpickle(entries.get(pkl)!, ctx);
  if (!root || typeof root !== 'object' || Array.isArray(root) || root.kind !== 'dict') throw refuse('the file holds something other than a dict', ctx);
  const out: TensorMap = new Map();
  for (const [name, v] of root.entries) {
    if (!v || typeof v !== 'object' || Array.isArray(v) || v.kind !== 'tensor') throw refuse(`the entry ${name} is not a tensor`, ctx);
    out.set(name, v.array);
  }
  return out;
}
