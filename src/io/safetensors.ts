/**
 * The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header size, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__},
 * then the data section, offsets relative to its start.
 *
 * openSafetensors validates the header and reads single tensors with positioned reads straight
 * into shared memory (never the whole file). writeSafetensors writes atomically (temp + rename);
 * createSafetensorsWriter streams a file tensor by tensor (the header reserved, filled in at the end).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { sharedFloat32, sharedUint8 } from '../tensor/shared.js';
import { DTYPES, FLOAT_DTYPES, type Dtype, bf16ToF32, dtypeBytes, f16ToF32, f64ToF32, isDtype } from './dtype.js';

/** Where one tensor lies in its file. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** absolute position of the first byte in the file. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

export interface SafetensorsFile {
  readonly path: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** the tensor as float32 (F32/F16/BF16/F64 converted), in a SharedArrayBuffer. */
  readFloat32(name: string): Float32Array;
  /** the tensor's raw little-endian bytes, in a SharedArrayBuffer. */
  readBytes(name: string): Uint8Array;
  close(): void;
}

/** A tensor to write: data holds exactly product(shape) × dtype-size bytes, little-endian. */
export interface TensorToWrite {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: ArrayBufferView;
}

/** The format's own limit on the JSON header (the Rust reader refuses larger ones). */
const MAX_HEADER_BYTES = 100_000_000;
/** Largest single read/write and the scratch size for dtype conversion. */
const CHUNK_BYTES = 1 << 24;

if (os.endianness() !== 'LE') throw new Error('intscale reads safetensors only on little-endian hosts');

export function openSafetensors(file: string): SafetensorsFile {
  const name = path.basename(file);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`${file}: file not found`, { file });
    if (code === 'EISDIR') throw new InputError(`${file}: is a directory, expected a .safetensors file`, { file });
    throw new InputError(`${file}: cannot open (${(e as Error).message})`, { file });
  }
  try {
    const header = readHeader(fd, file, name);
    return makeReader(fd, file, name, header);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

interface ParsedHeader {
  metadata: Record<string, string>;
  tensors: Map<string, TensorInfo>;
}

function readHeader(fd: number, file: string, name: string): ParsedHeader {
  const fileSize = fs.fstatSync(fd).size;
  if (fileSize < 8) {
    throw new InputError(`${name}: file is ${fileSize} bytes, too short for a safetensors header (needs at least 8)`, { file });
  }
  const prefix = Buffer.alloc(8);
  readFully(fd, prefix, 0, file);
  const headerSize = prefix.readBigUInt64LE(0);
  if (headerSize > BigInt(MAX_HEADER_BYTES)) {
    throw new InputError(
      `${name}: header size ${headerSize} bytes is absurd (limit ${MAX_HEADER_BYTES}); not a safetensors file?`,
      { file },
    );
  }
  const hlen = Number(headerSize);
  if (8 + hlen > fileSize) {
    throw new InputError(
      `${name}: header size ${hlen} bytes runs past the end of the file (${fileSize} bytes); truncated or not a safetensors file?`,
      { file },
    );
  }
  const hbuf = Buffer.alloc(hlen);
  readFully(fd, hbuf, 8, file);
  let json: unknown;
  try {
    json = JSON.parse(hbuf.toString('utf8'));
  } catch (e) {
    throw new InputError(`${name}: header is not valid JSON (${(e as Error).message})`, { file });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InputError(`${name}: header is not a JSON object`, { file });
  }
  const dataStart = 8 + hlen;
  const dataSize = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new InputError(`${name}: __metadata__ is not an object of strings`, { file });
      }
      for (const [mk, mv] of Object.entries(value as Record<string, unknown>)) {
        if (typeof mv !== 'string') throw new InputError(`${name}: __metadata__ entry "${mk}" is not a string`, { file });
        metadata[mk] = mv;
      }
      continue;
    }
    tensors.set(key, parseEntry(key, value, name, file, dataStart, dataSize));
  }
  refuseOverlaps(tensors, name, file);
  return { metadata, tensors };
}

/** Two tensors sharing bytes of the data section: a corrupt or hostile header (the format lays them end to end). */
function refuseOverlaps(tensors: Map<string, TensorInfo>, name: string, file: string): void {
  const ranges = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.byteOffset - b.byteOffset);
  for (let i = 1; i < ranges.length; i++) {
    const [prev, t] = [ranges[i - 1]!, ranges[i]!];
    if (t.byteOffset < prev.byteOffset + prev.byteLength) {
      throw new InputError(`${name}: tensors "${prev.name}" and "${t.name}" overlap in the data section (corrupt header)`, { file, tensor: t.name });
    }
  }
}

function parseEntry(
  tensor: string, value: unknown, name: string, file: string, dataStart: number, dataSize: number,
): TensorInfo {
  const where = { file, tensor };
  const bad = (what: string) => new InputError(`${name}: tensor "${tensor}" ${what}`, where);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad('has a header entry that is not an object');
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (!isDtype(dtype)) {
    throw bad(`has dtype ${JSON.stringify(dtype)}, which intscale does not read; supported: ${DTYPES.join(' ')}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(`has shape ${JSON.stringify(shape)}, expected an array of non-negative integers`);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
  ) {
    throw bad(`has data_offsets ${JSON.stringify(offsets)}, expected [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  const expected = elements * dtypeBytes(dtype);
  if (expected !== end - begin) {
    throw bad(
      `has shape [${shape.join(', ')}] × ${dtype} = ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin} bytes`,
    );
  }
  if (end > dataSize) {
    throw bad(`has data_offsets [${begin}, ${end}] past the end of the data section (${dataSize} bytes); file truncated?`);
  }
  return { name: tensor, dtype, shape: [...(shape as number[])], byteOffset: dataStart + begin, byteLength: end - begin };
}

function makeReader(fd: number, file: string, name: string, header: ParsedHeader): SafetensorsFile {
  let open = true;
  const info = (tensor: string): TensorInfo => {
    if (!open) throw new Error(`${name}: read of "${tensor}" after close()`);
    const t = header.tensors.get(tensor);
    if (!t) throw new InputError(`${name}: no tensor "${tensor}" in this file`, { file, tensor });
    return t;
  };
  return {
    path: file,
    metadata: header.metadata,
    tensors: header.tensors,
    readFloat32(tensor) {
      const t = info(tensor);
      return readAsFloat32(fd, file, t, name);
    },
    readBytes(tensor) {
      const t = info(tensor);
      const out = sharedUint8(t.byteLength);
      readFully(fd, out, t.byteOffset, file);
      return out;
    },
    close() {
      if (open) fs.closeSync(fd);
      open = false;
    },
  };
}

let scratch: ArrayBuffer | null = null;
function scratchBuffer(): ArrayBuffer {
  scratch ??= new ArrayBuffer(CHUNK_BYTES);
  return scratch;
}

function readAsFloat32(fd: number, file: string, t: TensorInfo, name: string): Float32Array {
  const elementBytes = dtypeBytes(t.dtype);
  const count = t.byteLength / elementBytes;
  const out = sharedFloat32(count);
  switch (t.dtype) {
    case 'F32':
      readFully(fd, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), t.byteOffset, file);
      return out;
    case 'F16':
    case 'BF16':
    case 'F64': {
      const perChunk = CHUNK_BYTES / elementBytes;
      for (let done = 0; done < count; done += perChunk) {
        const n = Math.min(perChunk, count - done);
        const bytes = new Uint8Array(scratchBuffer(), 0, n * elementBytes);
        readFully(fd, bytes, t.byteOffset + done * elementBytes, file);
        if (t.dtype === 'F64') f64ToF32(new Float64Array(bytes.buffer, 0, n), out, done);
        else if (t.dtype === 'F16') f16ToF32(new Uint16Array(bytes.buffer, 0, n), out, done);
        else bf16ToF32(new Uint16Array(bytes.buffer, 0, n), out, done);
      }
      return out;
    }
    default:
      throw new InputError(
        `${name}: tensor "${t.name}" has dtype ${t.dtype}; float32 conversion supports only ${FLOAT_DTYPES.join(' ')}`,
        { file, tensor: t.name },
      );
  }
}

/** Fill dest from the file at position, in chunks; a short file is an InputError. */
function readFully(fd: number, dest: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < dest.byteLength) {
    const len = Math.min(CHUNK_BYTES, dest.byteLength - done);
    const n = fs.readSync(fd, dest, done, len, position + done);
    if (n === 0) {
      throw new InputError(`${file}: unexpected end of file at byte ${position + done}; was it truncated while open?`, { file });
    }
    done += n;
  }
}

/**
 * Write tensors (in the given order) and metadata as one safetensors file. Atomic: the data goes
 * to `${file}.tmp-<pid>` first and is renamed over file only when complete.
 */
export function writeSafetensors(
  file: string, tensors: readonly TensorToWrite[], metadata: Readonly<Record<string, string>> = {},
): void {
  const entries: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    const bytes = checkedTensorBytes(file, t, entries);
    entries[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const writer = createSafetensorsWriter(file, headerJson(entries, metadata).length);
  try {
    for (const t of tensors) writer.write(t);
    writer.finish(metadata);
  } catch (e) {
    writer.abort();
    throw e;
  }
}

/** A safetensors file written one tensor at a time, so a model larger than memory can be written. */
export interface SafetensorsWriter {
  /** appends one tensor to the data section (its bytes may be dropped once this returns). */
  write(tensor: TensorToWrite): void;
  /** writes the header (tensors in the order written, and metadata), syncs, and renames the file into place. */
  finish(metadata?: Readonly<Record<string, string>>): void;
  /** removes the temporary file (after an error). */
  abort(): void;
}

/**
 * Streams a safetensors file: the data section is written from byte 8 + reservedHeaderBytes as
 * tensors come, and the header, known only at the end, goes into the reserved space padded with
 * spaces (the format's own padding; every reader trims it as JSON whitespace). reservedHeaderBytes
 * must bound the final header's JSON; finish() refuses one that does not fit. Atomic like
 * writeSafetensors: `${file}.tmp-<pid>`, renamed when complete.
 */
export function createSafetensorsWriter(file: string, reservedHeaderBytes: number): SafetensorsWriter {
  const reserved = Math.ceil(reservedHeaderBytes / 8) * 8;
  if (reserved > MAX_HEADER_BYTES) throw new InputError(`${file}: a header of ${reserved} bytes is above the format's limit of ${MAX_HEADER_BYTES}`, { file });
  const tmp = `${file}.tmp-${process.pid}`;
  let fd: number | null = fs.openSync(tmp, 'w');
  const entries: Record<string, unknown> = {};
  let offset = 0;
  const position = () => 8 + reserved + offset;
  const close = () => {
    if (fd !== null) fs.closeSync(fd);
    fd = null;
  };
  return {
    write(t) {
      if (fd === null) throw new Error(`${file}: write after finish or abort`);
      const bytes = checkedTensorBytes(file, t, entries);
      writeFully(fd, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), position());
      entries[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
      offset += bytes;
    },
    finish(metadata = {}) {
      if (fd === null) throw new Error(`${file}: finish after finish or abort`);
      const json = headerJson(entries, metadata);
      if (json.length > reserved) {
        throw new Error(`${file}: the header needs ${json.length} bytes but ${reserved} were reserved (a bug in the caller's bound)`);
      }
      const header = Buffer.alloc(8 + reserved, 0x20);
      header.writeBigUInt64LE(BigInt(reserved), 0);
      json.copy(header, 8);
      writeFully(fd, header, 0);
      fs.fsyncSync(fd);
      close();
      fs.renameSync(tmp, file);
    },
    abort() {
      close();
      fs.rmSync(tmp, { force: true });
    },
  };
}

function headerJson(entries: Readonly<Record<string, unknown>>, metadata: Readonly<Record<string, string>>): Buffer {
  return Buffer.from(JSON.stringify({ __metadata__: { ...metadata }, ...entries }), 'utf8');
}

/** The tensor's byte size, after checking its name is new and its data matches shape × dtype. */
function checkedTensorBytes(file: string, t: TensorToWrite, entries: Readonly<Record<string, unknown>>): number {
  if (t.name === '__metadata__' || Object.hasOwn(entries, t.name)) {
    throw new InputError(`${file}: tensor name "${t.name}" is reserved or repeated`, { file, tensor: t.name });
  }
  if (!isDtype(t.dtype)) throw new InputError(`${file}: tensor "${t.name}" has unknown dtype ${String(t.dtype)}`, { file, tensor: t.name });
  const expected = t.shape.reduce((a, b) => a * b, 1) * dtypeBytes(t.dtype);
  if (expected !== t.data.byteLength) {
    throw new InputError(
      `${file}: tensor "${t.name}" has shape [${t.shape.join(', ')}] × ${t.dtype} = ${expected} bytes but its data is ${t.data.byteLength} bytes`,
      { file, tensor: t.name },
    );
  }
  return expected;
}

function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.byteLength) {
    done += fs.writeSync(fd, bytes, done, Math.min(CHUNK_BYTES, bytes.byteLength - done), position + done);
  }
}
