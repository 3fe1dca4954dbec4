/**
 * Kernel registry: kernel id → row kernel. The main thread and every worker import the same
 * registrations (./kernels.ts), so a job only names its kernel by id.
 */
import type { KernelArgs, RowKernel } from './types.js';

const kernels = new Map<string, RowKernel>();

/** Registers a row kernel under an id (throws if the id is taken by another function). */
export function registerKernel<A extends KernelArgs>(id: string, kernel: RowKernel<A>): void {
  const existing = kernels.get(id);
  if (existing !== undefined && existing !== (kernel as unknown as RowKernel)) {
    throw new Error(`kernel id '${id}' is already registered`);
  }
  kernels.set(id, kernel as unknown as RowKernel);
}

/** The kernel registered under id; throws for an unknown id. */
export function getKernel(id: string): RowKernel {
  const kernel = kernels.get(id);
  if (kernel === undefined) throw new Error(`unknown kernel id '${id}' (register it in src/backends/cpu/pool/kernels.ts)`);
  return kernel;
}

export function hasKernel(id: string): boolean {
  return kernels.has(id);
}
