/**
 * Round half to even, the rounding of torch.round, numpy.rint and CUDA's __float2int_rn.
 * Every quantizer in intscale rounds with this so CPU, GPU and PyTorch agree bit for bit.
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round rounds .5 up; step back when that landed on an odd integer from an exact half.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
