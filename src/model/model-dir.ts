/**
 * A Hugging Face model directory: config.json, the safetensors weights, the optional
 * generation_config.json and tokenizer.json, each validated with errors that say what to fix.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import type { ModelConfig } from './config.js';
import { loadGenerationConfig, type GenerationConfig } from '../io/generation-config.js';
import { parseHfConfig } from './hf-config.js';
import { TOKENIZER_FILE } from '../io/tokenizer.js';
import { INDEX_FILE, SINGLE_FILE, listSafetensors, noSafetensorsError, openWeights, type WeightSource } from '../io/weight-source.js';

export interface ModelDir {
  readonly dir: string;
  readonly config: ModelConfig;
  /** the raw config.json, for fields ModelConfig does not carry (e.g. quantization settings). */
  readonly rawConfig: Readonly<Record<string, unknown>>;
  readonly weights: WeightSource;
  readonly generation: GenerationConfig | null;
  /** tokenizer.json when present (load it with loadTokenizer(dir)). */
  readonly tokenizerPath: string | null;
}

export const CONFIG_FILE = 'config.json';

export function openModelDir(dir: string): ModelDir {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new InputError(`${dir}: model directory not found`, { file: dir });
  }
  if (!stat.isDirectory()) {
    throw new InputError(`${dir}: is a file, expected a model directory (with config.json and *.safetensors)`, { file: dir });
  }
  const configPath = path.join(dir, CONFIG_FILE);
  if (!fs.existsSync(configPath)) {
    throw new InputError(`${dir}: no config.json; expected a Hugging Face model directory (config.json, *.safetensors, tokenizer.json)`, {
      file: configPath,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  } catch (e) {
    throw new InputError(`${configPath}: not valid JSON (${(e as Error).message})`, { file: configPath });
  }
  const config = parseHfConfig(raw, configPath);
  const hasWeights =
    fs.existsSync(path.join(dir, INDEX_FILE)) || fs.existsSync(path.join(dir, SINGLE_FILE)) || listSafetensors(dir).length > 0;
  if (!hasWeights) throw noSafetensorsError(dir);
  const generation = loadGenerationConfig(dir);
  const weights = openWeights(dir);
  const tokenizerPath = path.join(dir, TOKENIZER_FILE);
  return {
    dir,
    config,
    rawConfig: raw as Record<string, unknown>,
    weights,
    generation,
    tokenizerPath: fs.existsSync(tokenizerPath) ? tokenizerPath : null,
  };
}
