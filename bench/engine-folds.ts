/**
 * The decode engine's fold options as bench flags (cuda-engine-step, cuda-batch-e2e): `--rope-in-attention`,
 * `--fuse-swiglu`, `--norm-in-gemm`, `--quantize-in-tail`, `--quantize-in-gemm`, `--wide-attention`, `--merge-in-attention`, `--overlap-small-ops`, each auto, on, off, or a list of them (on,off)
 * where a bench compares settings.
 */
import { ENGINE_FOLDS, type CudaEngineOptions, type EngineFold } from '../src/backends/cuda/decode-engine.js';
import { BenchArgumentError } from './args.js';

/** Each flag's engine option (ENGINE_FOLDS: how it reads in a log). */
export const FOLDS = {
  'rope-in-attention': 'ropeInAttention',
  'fuse-swiglu': 'fuseSwiGLU',
  'norm-in-gemm': 'normInGemm',
  'quantize-in-tail': 'quantizeInTail',
  'quantize-in-gemm': 'quantizeInGemm',
  'wide-attention': 'wideAttention',
  'merge-in-attention': 'mergeInAttention',
  'overlap-small-ops': 'overlapSmallOps',
} as const satisfies Record<string, EngineFold>;
export type FoldFlag = keyof typeof FOLDS;
export type FoldSetting = boolean | 'auto';
export type FoldVariant = Pick<CudaEngineOptions, EngineFold>;
const FLAGS = Object.keys(FOLDS) as FoldFlag[];

/** parseArgs options for the four flags, each defaulting to `fallback` (none: the engine's own default). */
export function foldFlagOptions(fallback?: Partial<Record<FoldFlag, string>>): Record<FoldFlag, { type: 'string'; default?: string }> {
  return Object.fromEntries(FLAGS.map((f) => [f, fallback?.[f] === undefined ? { type: 'string' } : { type: 'string', default: fallback[f] }])) as Record<FoldFlag, { type: 'string'; default?: string }>;
}

/** `--flag auto|on|off[,…]` as settings; anything else is a BenchArgumentError naming the flag. */
export function foldSettings(flag: FoldFlag, text: string): FoldSetting[] {
  return text.split(',').map((v) => {
    if (v !== 'on' && v !== 'off' && v !== 'auto') throw new BenchArgumentError(`--${flag} takes on, off, auto or a list of them (on,off); got '${text}'`);
    return v === 'auto' ? 'auto' : v === 'on';
  });
}

/** Every pairing of the flags' settings (a flag not given: the engine's default), in flag order. */
export function foldVariants(values: Partial<Record<FoldFlag, string>>): FoldVariant[] {
  return FLAGS.reduce<FoldVariant[]>(
    (acc, f) => (values[f] === undefined ? acc : acc.flatMap((v) => foldSettings(f, values[f]!).map((o) => ({ ...v, [FOLDS[f]]: o })))),
    [{}],
  );
}

/** The settings a variant names, for a log line ('engine defaults' when none). */
export function describeFoldVariant(v: FoldVariant): string {
  const word = (o: FoldSetting): string => (o === 'auto' ? 'auto' : o ? 'on' : 'off');
  const named = FLAGS.filter((f) => v[FOLDS[f]] !== undefined).map((f) => `${ENGINE_FOLDS[FOLDS[f]].label} ${word(v[FOLDS[f]]!)}`);
  return named.length === 0 ? 'engine defaults' : named.join(', ');
}
