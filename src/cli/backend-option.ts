/**
 * `--backend cpu|cuda` for the commands that run a model. The CUDA backend (and koffi with it) is
 * imported only when asked for; no driver or GPU becomes an InputError naming the reason.
 */
import { Option } from 'commander';
import type { Backend } from '../model/backend.js';
import { cpuBackend } from '../backends/cpu/cpu-backend.js';
import { InputError } from '../errors.js';

export type BackendName = 'cpu' | 'cuda';

export const backendOption = (): Option =>
  new Option('--backend <name>', 'where the model runs: cpu, or cuda (an NVIDIA GPU)')
    .choices(['cpu', 'cuda'])
    .default('cpu');

export interface OpenedBackend {
  readonly backend: Backend<unknown>;
  /** One line on where the linear layers ran (empty for the CPU). */
  summary(): string;
  close(): void;
}

export async function openBackend(name: BackendName): Promise<OpenedBackend> {
  if (name === 'cpu') return { backend: cpuBackend as Backend<unknown>, summary: () => '', close: () => {} };
  const { createCudaBackend } = await import('../backends/cuda/cuda-backend.js');
  const { CudaUnavailableError } = await import('../backends/cuda/libs.js');
  let backend: ReturnType<typeof createCudaBackend>;
  try {
    backend = createCudaBackend();
  } catch (e) {
    if (e instanceof CudaUnavailableError) throw new InputError(`--backend cuda: ${e.message}`);
    throw e;
  }
  return {
    backend,
    summary: () => {
      const p = backend.placements();
      const gpu = Object.entries(p.gpu).filter(([, n]) => n > 0).map(([kind, n]) => `${n} ${kind.toUpperCase()}`).join(', ');
      const cpu = p.cpu.map((c) => `${c.layers} (${c.reason})`).join('; ');
      return `cuda (${backend.ctx.info.name}): linear layers on the GPU: ${gpu || 'none'}; on the CPU: ${cpu || 'none'}`;
    },
    close: () => backend.dispose(),
  };
}
