/**
 * Rotary inverse frequencies, as transformers computes them (float32 throughout):
 * invFreq[i] = 1 / theta^(2i / headDim), then rescaled per config.json's rope_scaling.
 * Llama 3 scaling keeps high frequencies, divides low ones by `factor`, and blends between.
 */
import type { RopeScaling } from './config.js';

export function ropeInverseFrequencies(headDim: number, theta: number, scaling: RopeScaling): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / headDim)));
  switch (scaling.kind) {
    case 'none':
      return inv;
    case 'linear':
      return inv.map((f) => f / scaling.factor);
    case 'llama3': {
      const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldLen } = scaling;
      const lowFreqWavelen = oldLen / lowFreqFactor;
      const highFreqWavelen = oldLen / highFreqFactor;
      return inv.map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < highFreqWavelen) return f;
        if (wavelen > lowFreqWavelen) return f / factor;
        const smooth = (oldLen / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        return (1 - smooth) * (f / factor) + smooth * f;
      });
    }
  }
}
