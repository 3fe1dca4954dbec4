/**
 * loadModel(dir, { backend }): the library's way to load a model: model/load.ts's loadModelOn with
 * the backend chosen here, once (default: the CPU backend), so nothing below backends/ knows which.
 */
import { loadModelOn, type LoadedModel, type ModelLoadOptions } from '../model/load.js';
import type { Backend } from '../model/backend.js';
import { cpuBackend } from './cpu/cpu-backend.js';

export type { LoadedModel } from '../model/load.js';

export interface LoadOptions<T = Float32Array> extends ModelLoadOptions {
  /** where the model runs (default: the CPU backend). */
  readonly backend?: Backend<T>;
}

export function loadModel(dir: string, options?: LoadOptions): LoadedModel;
export function loadModel<T>(dir: string, options: LoadOptions<T> & { readonly backend: Backend<T> }): LoadedModel<T>;
export function loadModel<T>(dir: string, options: LoadOptions<T> = {}): LoadedModel<T> {
  return loadModelOn(dir, options.backend ?? (cpuBackend as unknown as Backend<T>), options);
}
