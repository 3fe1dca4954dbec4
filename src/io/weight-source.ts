/**
 * One view over a checkpoint's weights, whether a single model.safetensors, a sharded checkpoint
 * (model.safetensors.index.json + shards), or a directory of .safetensors files without an index.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import type { Dtype } from './dtype.js';
import { openSafetensors, type SafetensorsFile } from './safetensors.js';

export interface WeightSource {
  /** the files the weights come from (base names), in the order searched. */
  readonly files: readonly string[];
  /** __metadata__ of every file merged (later files win on a repeated key). */
  readonly metadata: Readonly<Record<string, string>>;
  has(name: string): boolean;
  names(): string[];
  shapeOf(name: string): readonly number[];
  dtypeOf(name: string): Dtype;
  /** the tensor as float32 in shared memory; with expectedShape, a mismatch is an InputError. */
  float32(name: string, expectedShape?: readonly number[]): Float32Array;
  /** the raw bytes (I8/U8/I32 tensors of quantized checkpoints) in shared memory. */
  bytes(name: string): Uint8Array;
  /** the tensors never read through float32() or bytes() so far, in checkpoint order. */
  unread(): string[];
  close(): void;
}

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** Open the weights in dir (see the header comment for the layouts understood). */
export function openWeights(dir: string): WeightSource {
  const indexPath = path.join(dir, INDEX_FILE);
  if (fs.existsSync(indexPath)) return fromIndex(dir, indexPath);
  if (fs.existsSync(path.join(dir, SINGLE_FILE))) return fromFiles([path.join(dir, SINGLE_FILE)], null);
  const found = listSafetensors(dir);
  if (found.length === 0) throw noSafetensorsError(dir);
  return fromFiles(found.map((f) => path.join(dir, f)), null);
}

/** The .safetensors files in dir, sorted by name. */
export function listSafetensors(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort();
}

export function noSafetensorsError(dir: string): InputError {
  const legacy = fs.existsSync(dir)
    ? fs.readdirSync(dir).filter((f) => /\.(bin|pt|pth|ckpt)$/.test(f) || f.endsWith('.bin.index.json'))
    : [];
  const found = legacy.length > 0 ? ` (found ${legacy.slice(0, 3).join(', ')}${legacy.length > 3 ? ', …' : ''})` : '';
  return new InputError(
    `${dir}: no .safetensors weights${found}. PyTorch .bin/.pt checkpoints are not supported; convert them with ` +
      `Python: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out_dir, safe_serialization=True)`,
    { file: dir },
  );
}

function fromIndex(dir: string, indexPath: string): WeightSource {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new InputError(`${INDEX_FILE}: not valid JSON (${(e as Error).message})`, { file: indexPath });
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
    throw new InputError(`${INDEX_FILE}: has no "weight_map" object`, { file: indexPath });
  }
  const map = weightMap as Record<string, unknown>;
  const shards: string[] = [];
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\')) {
      throw new InputError(`${INDEX_FILE}: tensor "${tensor}" maps to ${JSON.stringify(shard)}, expected a file name`, { file: indexPath, tensor });
    }
    if (!shards.includes(shard)) shards.push(shard);
  }
  for (const shard of shards) {
    if (!fs.existsSync(path.join(dir, shard))) {
      const example = Object.keys(map).find((t) => map[t] === shard)!;
      throw new InputError(
        `${INDEX_FILE}: references shard "${shard}" (e.g. for tensor "${example}") but ${path.join(dir, shard)} does not exist`,
        { file: indexPath, tensor: example },
      );
    }
  }
  return fromFiles(shards.map((s) => path.join(dir, s)), map as Record<string, string>);
}

/** Open files; location comes from weightMap when given, else from the files' own headers. */
function fromFiles(paths: readonly string[], weightMap: Record<string, string> | null): WeightSource {
  const opened: SafetensorsFile[] = [];
  try {
    for (const p of paths) opened.push(openSafetensors(p));
  } catch (e) {
    for (const f of opened) f.close();
    throw e;
  }
  const byBase = new Map(opened.map((f) => [path.basename(f.path), f]));
  const location = new Map<string, SafetensorsFile>();
  try {
    if (weightMap) {
      for (const [tensor, shard] of Object.entries(weightMap)) {
        const f = byBase.get(shard)!;
        if (!f.tensors.has(tensor)) {
          throw new InputError(`${INDEX_FILE}: maps tensor "${tensor}" to ${shard}, which does not contain it`, { file: f.path, tensor });
        }
        location.set(tensor, f);
      }
    } else {
      for (const f of opened) {
        for (const tensor of f.tensors.keys()) {
          const other = location.get(tensor);
          if (other) {
            throw new InputError(
              `tensor "${tensor}" appears in both ${path.basename(other.path)} and ${path.basename(f.path)}`,
              { file: f.path, tensor },
            );
          }
          location.set(tensor, f);
        }
      }
    }
  } catch (e) {
    for (const f of opened) f.close();
    throw e;
  }
  const files = opened.map((f) => path.basename(f.path));
  const metadata: Record<string, string> = Object.assign({}, ...opened.map((f) => f.metadata));
  const searched = weightMap ? `${INDEX_FILE} (${files.join(', ')})` : files.join(', ');
  const find = (name: string): SafetensorsFile => {
    const f = location.get(name);
    if (!f) throw new InputError(`tensor "${name}" not found in ${searched}`, { file: opened[0]?.path, tensor: name });
    return f;
  };
  const read = new Set<string>();
  const reading = (name: string): SafetensorsFile => {
    const f = find(name);
    read.add(name);
    return f;
  };
  return {
    files,
    metadata,
    has: (name) => location.has(name),
    names: () => [...location.keys()],
    shapeOf: (name) => find(name).tensors.get(name)!.shape,
    dtypeOf: (name) => find(name).tensors.get(name)!.dtype,
    float32(name, expectedShape) {
      const f = reading(name);
      const shape = f.tensors.get(name)!.shape;
      if (expectedShape && !sameShape(shape, expectedShape)) {
        throw new InputError(
          `${path.basename(f.path)}: tensor "${name}" has shape [${shape.join(', ')}] but the model expects [${expectedShape.join(', ')}]`,
          { file: f.path, tensor: name },
        );
      }
      return f.readFloat32(name);
    },
    bytes: (name) => reading(name).readBytes(name),
    unread: () => [...location.keys()].filter((name) => !read.has(name)),
    close() {
      for (const f of opened) f.close();
    },
  };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
